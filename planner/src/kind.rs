//! The kinds of blocks a phase can declare: Hetzner primitives and terrace's composites.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A block kind. Primitives map one to one to Hetzner objects (buckets to Object Storage);
/// composites (`postgres`, `redis`) compile into primitives.
/// The variants are declared in alphabetical order of their names, so the derived order sorts
/// addresses like strings (a test checks it) without comparing strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Bucket,
    Certificate,
    Firewall,
    FloatingIp,
    /// What terrace configures on a service's server over SSH (files, packages, reloads); no
    /// Hetzner object. Made by the `postgres` and `redis` composites, never written in a phase.
    Host,
    /// An SSH key pair generated at apply and kept in state (Terraform's `tls_private_key`): a
    /// server's host key, or terrace's login key of a service; no Hetzner object.
    Keypair,
    LoadBalancer,
    Network,
    PlacementGroup,
    Postgres,
    PrimaryIp,
    Redis,
    /// A generated secret (a password), kept in state; no Hetzner object (Terraform's
    /// `random_password`).
    Secret,
    Server,
    SshKey,
    Volume,
}

impl Kind {
    pub const ALL: [Kind; 16] = [
        Kind::Bucket,
        Kind::Certificate,
        Kind::Firewall,
        Kind::FloatingIp,
        Kind::Host,
        Kind::Keypair,
        Kind::LoadBalancer,
        Kind::Network,
        Kind::PlacementGroup,
        Kind::Postgres,
        Kind::PrimaryIp,
        Kind::Redis,
        Kind::Secret,
        Kind::Server,
        Kind::SshKey,
        Kind::Volume,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Bucket => "bucket",
            Kind::Certificate => "certificate",
            Kind::Firewall => "firewall",
            Kind::FloatingIp => "floating_ip",
            Kind::Host => "host",
            Kind::Keypair => "keypair",
            Kind::LoadBalancer => "load_balancer",
            Kind::Network => "network",
            Kind::PlacementGroup => "placement_group",
            Kind::Postgres => "postgres",
            Kind::PrimaryIp => "primary_ip",
            Kind::Redis => "redis",
            Kind::Secret => "secret",
            Kind::Server => "server",
            Kind::SshKey => "ssh_key",
            Kind::Volume => "volume",
        }
    }

    /// Composites expand into primitives and have no Hetzner object of their own.
    pub fn is_composite(self) -> bool {
        matches!(self, Kind::Postgres | Kind::Redis)
    }

    /// terrace's own kinds, made at apply and kept in state: no Hetzner object, no price, and not
    /// counted among the cloud resources of a phase.
    pub fn is_terrace_own(self) -> bool {
        matches!(self, Kind::Secret | Kind::Keypair | Kind::Host)
    }

    /// Kinds that only the composites make: a phase file cannot declare them.
    pub fn is_internal(self) -> bool {
        matches!(self, Kind::Host)
    }

    /// Kinds whose loss destroys data: deleting or replacing them is data loss.
    pub fn holds_data(self) -> bool {
        matches!(self, Kind::Volume | Kind::Bucket)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Kind::ALL.into_iter().find(|kind| kind.as_str() == text).ok_or(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_of_kinds_is_alphabetical() {
        let mut by_name = Kind::ALL;
        by_name.sort_by_key(|kind| kind.as_str());
        assert_eq!(by_name, Kind::ALL);
        let mut by_order = Kind::ALL;
        by_order.sort();
        assert_eq!(by_order, Kind::ALL);
        for kind in Kind::ALL {
            assert_eq!(kind.as_str().parse::<Kind>(), Ok(kind));
        }
    }
}
