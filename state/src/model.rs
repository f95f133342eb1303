//! The in-memory model of recorded state: what the planner diffs against and the executor updates.
//! It has no serde derives on purpose: the file layout lives in `format`, so the model can change
//! without changing the contract, and the contract only changes through a new `format_version`.

use std::collections::BTreeMap;

/// Everything terrace recorded about one stack.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// A UUID v4 fixed when the state is created; a state of another lineage is another stack's
    /// history, and a backend refuses to overwrite one with the other.
    pub lineage: String,
    /// Increases with every write; a backend refuses a write whose serial is not above the stored
    /// one, which catches two runs working from the same old state.
    pub serial: u64,
    /// The stack's name, when the stack declares one.
    pub stack: Option<String>,
    /// The last phase applied.
    pub phase: Option<String>,
    /// Resources by address, e.g. `postgres.main.server.replica[0]`.
    pub resources: BTreeMap<String, ResourceState>,
    /// The stack's outputs by name, as of the last apply.
    pub outputs: BTreeMap<String, OutputState>,
    /// Data migrations under way or kept, by the address of the service they move (e.g.
    /// `postgres.main`): the planner's own record (its step, what it keeps), opaque to this crate.
    pub migrations: BTreeMap<String, serde_json::Value>,
}

/// One object terrace manages.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResourceState {
    /// The block kind: `server`, `volume`, `network`, ...
    pub kind: String,
    /// Hetzner's id as a string (`"4711"`), or a bucket's name; `None` while unknown, e.g. when an
    /// interrupted create was recorded before the API answered.
    pub id: Option<String>,
    /// The attributes as last read from or sent to the API.
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// Addresses this resource depends on, sorted; deletes run in the reverse order.
    pub dependencies: Vec<String>,
    /// The composite this resource was expanded from, e.g. `postgres.main`.
    pub composite: Option<String>,
    /// Attribute paths (`user_data`, `labels.secret`) whose values are secret: kept in state so
    /// a later plan can diff them, never printed.
    pub sensitive_attributes: Vec<String>,
}

/// One output value of the stack.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputState {
    pub value: serde_json::Value,
    /// A sensitive output is kept in state but never printed.
    pub sensitive: bool,
}

impl State {
    /// A state for a stack that has none yet: a fresh lineage, serial 0, nothing recorded.
    pub fn new(stack: Option<String>) -> State {
        State {
            lineage: uuid::Uuid::new_v4().to_string(),
            serial: 0,
            stack,
            phase: None,
            resources: BTreeMap::new(),
            outputs: BTreeMap::new(),
            migrations: BTreeMap::new(),
        }
    }

    /// Raises the serial by one, as every write of a changed state must.
    pub fn increment_serial(&mut self) {
        self.serial += 1;
    }
}

/// The id of what terrace makes itself, with no object in the cloud (secrets, key pairs, the
/// configuration on a host): shared by all of them, so never two addresses for one object.
pub const GENERATED_ID: &str = "generated";

impl ResourceState {
    /// A resource of `kind` with nothing known about it yet.
    pub fn new(kind: impl Into<String>) -> ResourceState {
        ResourceState { kind: kind.into(), ..ResourceState::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_state_has_a_fresh_v4_lineage_and_serial_zero() {
        let a = State::new(Some("seed".to_owned()));
        let b = State::new(None);
        assert_ne!(a.lineage, b.lineage);
        let uuid = uuid::Uuid::parse_str(&a.lineage).expect("the lineage is a UUID");
        assert_eq!(uuid.get_version_num(), 4);
        assert_eq!(a.serial, 0);
        assert_eq!(a.stack.as_deref(), Some("seed"));
        assert!(a.resources.is_empty() && a.outputs.is_empty() && a.phase.is_none());
    }
}
