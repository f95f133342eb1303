//! The compiled phase: primitive resources in a dependency graph, the composites they came from,
//! and the outputs. This is what the validator checks, the planner diffs and the renderers show.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::addr::Address;
use crate::diag::Span;
use crate::graph::Dag;
use crate::kind::Kind;
use crate::value::Value;

/// Terraform's `lifecycle` block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Lifecycle {
    pub prevent_destroy: bool,
    pub create_before_destroy: bool,
    pub ignore_changes: Vec<String>,
}

/// Where a resource was written, for diagnostics.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub block: Option<Span>,
    /// Spans of attributes by path (`size`, `subnet[0].ip_range`). A list, not a map: it is only
    /// searched when a diagnostic is made, and building it is on the hot path.
    pub attrs: Vec<(String, Span)>,
}

impl Origin {
    /// The attribute's span, or the block's when the attribute was not written.
    pub fn attr(&self, path: &str) -> Option<Span> {
        self.written(path).or_else(|| self.block.clone())
    }

    /// The attribute's span, if it was written.
    pub fn written(&self, path: &str) -> Option<Span> {
        self.attrs.iter().find(|(p, _)| p == path).map(|(_, span)| span.clone())
    }
}

/// One Hetzner object to exist.
#[derive(Debug, Clone)]
pub struct Resource {
    pub address: Address,
    pub kind: Kind,
    /// Configured and defaulted attributes; nested blocks as lists of objects (`subnet`, `service`).
    pub attrs: BTreeMap<String, Value>,
    /// The composite this resource is part of (`postgres.main`).
    pub composite: Option<Address>,
    pub lifecycle: Lifecycle,
    pub origin: Origin,
}

impl Resource {
    pub fn attr(&self, name: &str) -> Option<&Value> {
        self.attrs.get(name).filter(|value| !matches!(value, Value::Null))
    }

    pub fn str_attr(&self, name: &str) -> Option<&str> {
        self.attr(name).and_then(Value::as_str)
    }

    pub fn bool_attr(&self, name: &str) -> bool {
        self.attr(name).and_then(Value::as_bool).unwrap_or(false)
    }

    pub fn ref_attr(&self, name: &str) -> Option<&Address> {
        self.attr(name).and_then(Value::as_ref).map(|reference| &reference.address)
    }

    /// Nested blocks written under `name` (`subnet`, `service`), as objects.
    pub fn blocks(&self, name: &str) -> Vec<&BTreeMap<String, Value>> {
        match self.attrs.get(name) {
            Some(Value::List(items)) => items.iter().filter_map(Value::as_map).collect(),
            Some(Value::Map(map)) => vec![map],
            _ => Vec::new(),
        }
    }
}

/// A composite (`postgres`, `redis`) and the primitives it expanded to.
#[derive(Debug, Clone, Serialize)]
pub struct Composite {
    pub address: Address,
    pub kind: Kind,
    /// The composite's own settings, as written and defaulted.
    pub attrs: BTreeMap<String, Value>,
    pub members: Vec<Address>,
    /// Attributes other blocks can read (`primary_private_ip`).
    #[serde(skip)]
    pub exports: BTreeMap<String, Value>,
    /// How the composite maps onto Hetzner primitives, in a sentence: shown in plans.
    pub summary: String,
    /// How each of its servers takes connections, for the reachability check.
    #[serde(skip)]
    pub endpoints: Vec<Endpoint>,
    /// The servers written in `clients`: consumers that must reach the service, on its network or
    /// over the public internet. Without `clients`, the servers on its network are its consumers.
    #[serde(skip)]
    pub clients: Vec<Address>,
    /// The private network the service is on.
    #[serde(skip)]
    pub network: Option<Address>,
}

/// One server of a service as its consumers meet it: the ports it serves, the addresses it listens
/// on, and whom its own rules admit (pg_hba.conf and PgBouncer's, which the renderers write from
/// the same settings).
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub server: Address,
    /// `primary`, `replica[0]`.
    pub role: String,
    /// The ports and what serves each: (5432, "PostgreSQL"), (6432, "PgBouncer"), (6379, "Redis").
    pub ports: Vec<(u16, &'static str)>,
    pub listen: Listen,
    /// Whom the service's own access rules let in; `None` for a service without such rules
    /// (Redis asks every client for its password and nothing else).
    pub admits: Option<Vec<Admission>>,
    /// For a replica: its primary's server, and whether it replicates over the public internet.
    pub replicates_from: Option<(Address, bool)>,
}

/// The addresses a service listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// Every address of the server (`*`, `0.0.0.0`): its private and its public interface.
    Everywhere,
    /// Only the loopback address, and the docker0 bridge when its containers are clients.
    Local { docker: bool },
}

/// One line of a service's access rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Admission {
    pub source: Source,
    /// Admitted only over TLS (`hostssl`).
    pub tls_only: bool,
    /// A replication line (the `replication` pseudo-database), not the application's.
    pub replication: bool,
}

/// Where a connection comes from, as the access rules name it.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// The server itself (127.0.0.1, the Unix socket).
    Local,
    /// The server's Docker containers (172.16.0.0/12).
    Docker,
    /// An address range written as such (a network's range).
    Cidr(String),
    /// The public IPv4 of this server, as a /32.
    PublicIp(Address),
}

#[derive(Debug, Clone, Serialize)]
pub struct Output {
    pub name: String,
    pub value: Value,
    pub sensitive: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// What the phase block says about the phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PhaseInfo {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extends: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_monthly: Option<f64>,
}

/// A phase compiled to primitives.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub stack: String,
    pub phase: PhaseInfo,
    pub resources: Dag<Address, Resource>,
    pub composites: Vec<Composite>,
    pub outputs: Vec<Output>,
}

impl Compiled {
    pub fn resource(&self, address: &Address) -> Option<&Resource> {
        self.resources.get(address)
    }

    pub fn composite(&self, address: &Address) -> Option<&Composite> {
        self.composites.iter().find(|composite| &composite.address == address)
    }
}
