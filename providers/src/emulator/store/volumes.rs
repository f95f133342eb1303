//! Volumes: 10..10240 GB, growing only, attached to at most one server in the same location, at most 16
//! per server, deleted only when detached and unprotected.

use super::super::errors::{ApiError, Code};
use super::super::wire::{AttachVolume, ChangeProtection, CreateVolume, ResizeVolume, Update, decode};
use super::servers::MAX_VOLUMES_PER_SERVER;
use super::{
    Kind, Started, Store, Transition, Volume, VolumeStatus, apply_protection, check_deletable, check_name,
    check_unique, get, get_mut, update_common,
};

const MIN_SIZE: i64 = 10;
const MAX_SIZE: i64 = 10_240;

fn check_size(size: i64) -> Result<u32, ApiError> {
    if (MIN_SIZE..=MAX_SIZE).contains(&size) {
        // In range, so it fits.
        Ok(u32::try_from(size).unwrap_or(u32::MAX))
    } else {
        Err(ApiError::invalid_field("size", &format!("size must be between {MIN_SIZE} and {MAX_SIZE} GB")))
    }
}

impl Store {
    /// A volume can join a server in its location that has fewer than 16 volumes.
    fn check_attachable(&self, volume_location: &str, server: u64) -> Result<(), ApiError> {
        let s = get(&self.servers, Kind::Server, server)?;
        if s.location != volume_location {
            return Err(ApiError::invalid_field(
                "server",
                &format!("server is in {}, the volume in {volume_location}: they must share a location", s.location),
            ));
        }
        if self.volumes.values().filter(|v| v.server == Some(server)).count() >= MAX_VOLUMES_PER_SERVER {
            return Err(ApiError::new(Code::ResourceLimitExceeded, "a server can have at most 16 volumes"));
        }
        Ok(())
    }

    pub(crate) fn create_volume(&mut self, req: CreateVolume, now: i64) -> Result<(u64, Started), ApiError> {
        check_name(&req.name)?;
        let size = check_size(req.size)?;
        check_unique(self.volumes.values(), &req.name, None)?;
        if let Some(f) = &req.format
            && f != "ext4"
            && f != "xfs"
        {
            return Err(ApiError::invalid_field("format", "format must be ext4 or xfs"));
        }
        let location = match (&req.location, req.server) {
            (_, Some(server)) => {
                let s = get(&self.servers, Kind::Server, server)?;
                if req.location.as_ref().is_some_and(|l| *l != s.location) {
                    return Err(ApiError::invalid_field("location", "volume and server must share a location"));
                }
                s.location.clone()
            }
            (Some(l), None) => self.location(l, "location")?.name.clone(),
            (None, None) => return Err(ApiError::invalid_field("location", "give a location or a server")),
        };
        if let Some(server) = req.server {
            self.check_attachable(&location, server)?;
            self.check_unlocked(Kind::Server, server, now)?;
        }
        let common = self.common(req.name, req.labels, now)?;
        let id = common.id;
        let action = self.start_action("create_volume", vec![(Kind::Volume, id)], now);
        self.volumes.insert(
            id,
            Volume {
                common,
                size,
                location,
                server: None,
                format: req.format,
                status: VolumeStatus::Creating,
                transition: Some(Transition { action, to: VolumeStatus::Available, back: VolumeStatus::Available }),
            },
        );
        let mut next_actions = Vec::new();
        if let Some(server) = req.server {
            next_actions.push(self.start_action(
                "attach_volume",
                vec![(Kind::Volume, id), (Kind::Server, server)],
                now,
            ));
            if let Some(v) = self.volumes.get_mut(&id) {
                v.server = Some(server);
            }
        }
        Ok((id, Started { action: Some(action), next_actions, root_password: None }))
    }

    pub(crate) fn update_volume(&mut self, id: u64, update: &Update) -> Result<(), ApiError> {
        update_common(&mut self.volumes, Kind::Volume, id, update, |o| &mut o.common).map(|_| ())
    }

    pub(crate) fn delete_volume(&mut self, id: u64, now: i64) -> Result<(), ApiError> {
        let volume = get(&self.volumes, Kind::Volume, id)?;
        check_deletable(&volume.common, Kind::Volume)?;
        if volume.server.is_some() {
            return Err(ApiError::new(Code::ResourceInUse, format!("volume {id} is attached: detach it first")));
        }
        self.check_unlocked(Kind::Volume, id, now)?;
        self.volumes.remove(&id);
        Ok(())
    }

    pub(crate) fn volume_action(
        &mut self,
        id: u64,
        command: &str,
        body: &serde_json::Value,
        now: i64,
    ) -> Result<Started, ApiError> {
        let volume = get(&self.volumes, Kind::Volume, id)?.clone();
        self.check_unlocked(Kind::Volume, id, now)?;
        let action = match command {
            "attach" => {
                let req: AttachVolume = decode(body)?;
                if volume.server.is_some() {
                    return Err(ApiError::invalid_field("server", "volume is already attached to a server"));
                }
                self.check_attachable(&volume.location, req.server)?;
                self.check_unlocked(Kind::Server, req.server, now)?;
                get_mut(&mut self.volumes, Kind::Volume, id)?.server = Some(req.server);
                self.start_action("attach_volume", vec![(Kind::Volume, id), (Kind::Server, req.server)], now)
            }
            "detach" => {
                let Some(server) = volume.server else {
                    return Err(ApiError::invalid_field("server", "volume is not attached"));
                };
                get_mut(&mut self.volumes, Kind::Volume, id)?.server = None;
                self.start_action("detach_volume", vec![(Kind::Volume, id), (Kind::Server, server)], now)
            }
            "resize" => {
                let req: ResizeVolume = decode(body)?;
                let size = check_size(req.size)?;
                if size < volume.size {
                    return Err(ApiError::invalid_field("size", "volumes can only grow"));
                }
                get_mut(&mut self.volumes, Kind::Volume, id)?.size = size;
                self.start_action("resize_volume", vec![(Kind::Volume, id)], now)
            }
            "change_protection" => {
                let req: ChangeProtection = decode(body)?;
                apply_protection(&mut get_mut(&mut self.volumes, Kind::Volume, id)?.common, &req)?;
                self.start_action("change_protection", vec![(Kind::Volume, id)], now)
            }
            _ => return Err(ApiError::not_found("action", 0)),
        };
        Ok(Started { action: Some(action), ..Started::default() })
    }
}
