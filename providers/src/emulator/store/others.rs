//! The small kinds: placement groups, SSH keys and uploaded certificates.

use super::super::errors::ApiError;
use super::super::wire::{CreateCertificate, CreatePlacementGroup, CreateSshKey, Update};
use super::{Certificate, Kind, PlacementGroup, SshKey, Store, check_name, check_unique, get, update_common};

/// A made-up but stable fingerprint (FNV-1a over the text), in the colon-separated hex of MD5
/// fingerprints: computing a real one would need a base64 decoder and MD5 for no client-visible gain.
fn fingerprint(text: &str, bytes: usize) -> String {
    let mut out = Vec::with_capacity(bytes);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for round in 0..bytes.div_ceil(8) {
        for b in text.bytes().chain(std::iter::once(u8::try_from(round).unwrap_or(0))) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        out.extend_from_slice(&h.to_be_bytes());
    }
    out.truncate(bytes);
    out.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

impl Store {
    pub(crate) fn create_placement_group(&mut self, req: CreatePlacementGroup, now: i64) -> Result<u64, ApiError> {
        check_name(&req.name)?;
        if req.kind != "spread" {
            return Err(ApiError::invalid_field("type", "type must be spread"));
        }
        check_unique(self.placement_groups.values(), &req.name, None)?;
        let common = self.common(req.name, req.labels, now)?;
        let id = common.id;
        self.placement_groups.insert(id, PlacementGroup { common });
        Ok(id)
    }

    pub(crate) fn update_placement_group(&mut self, id: u64, update: &Update) -> Result<(), ApiError> {
        update_common(&mut self.placement_groups, Kind::PlacementGroup, id, update, |o| &mut o.common).map(|_| ())
    }

    pub(crate) fn delete_placement_group(&mut self, id: u64) -> Result<(), ApiError> {
        get(&self.placement_groups, Kind::PlacementGroup, id)?;
        if self.servers.values().any(|s| s.placement_group == Some(id)) {
            return Err(ApiError::new(
                super::super::errors::Code::ResourceInUse,
                "the placement group still has servers",
            ));
        }
        self.placement_groups.remove(&id);
        Ok(())
    }

    pub(crate) fn create_ssh_key(&mut self, req: CreateSshKey, now: i64) -> Result<u64, ApiError> {
        check_name(&req.name)?;
        check_unique(self.ssh_keys.values(), &req.name, None)?;
        let mut parts = req.public_key.split_whitespace();
        let algorithm = parts.next().unwrap_or("");
        let known = algorithm.starts_with("ssh-") || algorithm.starts_with("ecdsa-") || algorithm.starts_with("sk-");
        if !known || parts.next().is_none() {
            return Err(ApiError::invalid_field("public_key", "not an OpenSSH public key"));
        }
        let fingerprint = fingerprint(&req.public_key, 16);
        if self.ssh_keys.values().any(|k| k.fingerprint == fingerprint) {
            return Err(ApiError::not_unique("public_key", &fingerprint));
        }
        let common = self.common(req.name, req.labels, now)?;
        let id = common.id;
        self.ssh_keys.insert(id, SshKey { common, public_key: req.public_key, fingerprint });
        Ok(id)
    }

    pub(crate) fn update_ssh_key(&mut self, id: u64, update: &Update) -> Result<(), ApiError> {
        update_common(&mut self.ssh_keys, Kind::SshKey, id, update, |o| &mut o.common).map(|_| ())
    }

    pub(crate) fn delete_ssh_key(&mut self, id: u64) -> Result<(), ApiError> {
        get(&self.ssh_keys, Kind::SshKey, id)?;
        self.ssh_keys.remove(&id);
        Ok(())
    }

    /// Uploaded certificates only: the PEM texts are checked for their markers, not parsed, so domain names
    /// and validity are not read from the certificate (validity is a year from upload).
    pub(crate) fn create_certificate(&mut self, req: CreateCertificate, now: i64) -> Result<u64, ApiError> {
        check_name(&req.name)?;
        check_unique(self.certificates.values(), &req.name, None)?;
        if req.kind.as_deref().is_some_and(|k| k != "uploaded") {
            return Err(ApiError::invalid_field("type", "the emulator supports uploaded certificates only"));
        }
        let certificate = req
            .certificate
            .filter(|c| c.contains("-----BEGIN CERTIFICATE-----"))
            .ok_or_else(|| ApiError::invalid_field("certificate", "a PEM certificate is required"))?;
        if !req.private_key.as_deref().is_some_and(|k| k.contains("PRIVATE KEY-----")) {
            return Err(ApiError::invalid_field("private_key", "a PEM private key is required"));
        }
        let _ = req.domain_names;
        let common = self.common(req.name, req.labels, now)?;
        let id = common.id;
        let fingerprint = fingerprint(&certificate, 32);
        self.certificates.insert(
            id,
            Certificate {
                common,
                certificate,
                fingerprint,
                not_valid_before: now,
                not_valid_after: now + 365 * 24 * 3600 * 1000,
            },
        );
        Ok(id)
    }

    pub(crate) fn update_certificate(&mut self, id: u64, update: &Update) -> Result<(), ApiError> {
        update_common(&mut self.certificates, Kind::Certificate, id, update, |o| &mut o.common).map(|_| ())
    }

    pub(crate) fn delete_certificate(&mut self, id: u64) -> Result<(), ApiError> {
        get(&self.certificates, Kind::Certificate, id)?;
        if self
            .load_balancers
            .values()
            .any(|lb| lb.services.iter().any(|s| s.http.as_ref().is_some_and(|h| h.certificates.contains(&id))))
        {
            return Err(ApiError::new(super::super::errors::Code::ResourceInUse, "the certificate is in use"));
        }
        self.certificates.remove(&id);
        Ok(())
    }
}
