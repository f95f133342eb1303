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
