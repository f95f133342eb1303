//! The kinds of blocks a phase can declare: Hetzner primitives and terrace's composites.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A block kind. Primitives map one to one to Hetzner objects (buckets to Object Storage);
/// composites (`postgres`, `redis`) compile into primitives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Bucket,
    Certificate,
    Firewall,
    FloatingIp,
    LoadBalancer,
    Network,
    PlacementGroup,
    Postgres,
    PrimaryIp,
    Redis,
    Server,
    SshKey,
    Volume,
}

impl Kind {
    pub const ALL: [Kind; 13] = [
        Kind::Bucket,
        Kind::Certificate,
        Kind::Firewall,
        Kind::FloatingIp,
        Kind::LoadBalancer,
        Kind::Network,
        Kind::PlacementGroup,
        Kind::Postgres,
        Kind::PrimaryIp,
        Kind::Redis,
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
            Kind::LoadBalancer => "load_balancer",
            Kind::Network => "network",
            Kind::PlacementGroup => "placement_group",
            Kind::Postgres => "postgres",
            Kind::PrimaryIp => "primary_ip",
            Kind::Redis => "redis",
            Kind::Server => "server",
            Kind::SshKey => "ssh_key",
            Kind::Volume => "volume",
        }
    }

    /// Composites expand into primitives and have no Hetzner object of their own.
    pub fn is_composite(self) -> bool {
        matches!(self, Kind::Postgres | Kind::Redis)
    }

    /// Kinds whose loss destroys data: deleting or replacing them is data loss.
    pub fn holds_data(self) -> bool {
        matches!(self, Kind::Volume | Kind::Bucket)
    }
}

impl PartialOrd for Kind {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Kind {
    /// Alphabetical by name, so that sorted addresses read like a sorted list of strings.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
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
        Kind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or(())
    }
}
