//! What a state must hold to be acted on, checked on every read: a state that fails is refused
//! with the addresses it concerns, never planned against. Each check stands for a way a damaged or
//! hand-edited state would turn terrace against the cloud:
//! - two addresses that record one object (same kind, same id): the plan would delete or change
//!   the real object for the other's sake;
//! - a recorded kind that is not the one its address names: every plan would replace or reattach it;
//! - a cycle among the recorded dependencies: destroy could not order its deletes;
//! - a serial at its largest value: the next write could not raise it.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::State;

/// What is wrong with `state`, one sentence each; empty when nothing is.
pub fn problems(state: &State) -> Vec<String> {
    let mut problems = Vec::new();
    if state.serial == u64::MAX {
        problems
            .push(format!("its serial is {}, the largest there is, so no later write could follow it", state.serial));
    }
    let mut objects: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for (address, resource) in &state.resources {
        if let Some(named) = kind_of(address)
            && named != resource.kind
        {
            problems.push(format!("`{address}` is recorded as a {}, but its address names a {named}", resource.kind));
        }
        if let Some(id) = resource.id.as_deref().filter(|id| *id != crate::model::GENERATED_ID) {
            objects.entry((resource.kind.as_str(), id)).or_default().push(address);
        }
    }
    for ((kind, id), addresses) in objects.into_iter().filter(|(_, a)| a.len() > 1) {
        let named: Vec<String> = addresses.iter().map(|a| format!("`{a}`")).collect();
        problems.push(format!(
            "{} record the same {kind} (id {id}): a plan would act on one object for the other's sake",
            named.join(" and ")
        ));
    }
    problems.extend(cycles(state).into_iter().map(|cycle| {
        let path: Vec<String> = cycle.iter().map(|a| format!("`{a}`")).collect();
        format!("its dependencies go round in a cycle: {}", path.join(" -> "))
    }));
    problems
}

/// The kind an address names: the type of its last `kind.name` pair (`postgres.main.server.replica[0]`
/// is a server). `None` for an address of another shape, which the planner refuses on its own.
fn kind_of(address: &str) -> Option<&str> {
    let segments: Vec<&str> = address.split('.').collect();
    if segments.len() < 2 || !segments.len().is_multiple_of(2) {
        return None;
    }
    Some(segments[segments.len() - 2])
}

/// Cycles among the dependencies between recorded resources, each as its path back to its start
/// (`a -> b -> a`). An iterative depth-first search, so a long chain cannot exhaust the stack.
fn cycles(state: &State) -> Vec<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    let mut marks: BTreeMap<&str, Mark> = BTreeMap::new();
    let mut found = Vec::new();
    let mut reported: BTreeSet<Vec<String>> = BTreeSet::new();
    for start in state.resources.keys() {
        if marks.contains_key(start.as_str()) {
            continue;
        }
        // The path from `start`, each with the dependencies still to visit.
        let mut path: Vec<(&str, std::slice::Iter<'_, String>)> = Vec::new();
        marks.insert(start, Mark::Open);
        path.push((start, state.resources[start].dependencies.iter()));
        while let Some((_, next)) = path.last_mut() {
            match next.next() {
                Some(dep) if state.resources.contains_key(dep) => match marks.get(dep.as_str()) {
                    None => {
                        marks.insert(dep, Mark::Open);
                        path.push((dep, state.resources[dep].dependencies.iter()));
                    }
                    Some(Mark::Open) => {
                        let from = path.iter().position(|(a, _)| *a == dep).unwrap_or(0);
                        let mut cycle: Vec<String> = path[from..].iter().map(|(a, _)| (*a).to_owned()).collect();
                        cycle.push(dep.clone());
                        if reported.insert(cycle.clone()) {
                            found.push(cycle);
                        }
                    }
                    Some(Mark::Done) => {}
                },
                Some(_) => {}
                None => {
                    if let Some((done, _)) = path.pop() {
                        marks.insert(done, Mark::Done);
                    }
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ResourceState;

    fn resource(kind: &str, id: Option<&str>, deps: &[&str]) -> ResourceState {
        let mut r = ResourceState::new(kind);
        r.id = id.map(str::to_owned);
        r.dependencies = deps.iter().map(|d| (*d).to_owned()).collect();
        r
    }

    #[test]
    fn a_sound_state_has_no_problems_and_each_damage_is_named() {
        let mut state = State::new(Some("s".into()));
        state.resources.insert("server.app".into(), resource("server", Some("42"), &["network.private"]));
        state.resources.insert("network.private".into(), resource("network", Some("42"), &[]));
        state
            .resources
            .insert("postgres.main.server.replica[0]".into(), resource("server", Some("7"), &["server.app"]));
        state.resources.insert("postgres.main.secret.password".into(), resource("secret", Some("generated"), &[]));
        state.resources.insert("postgres.main.secret.replication".into(), resource("secret", Some("generated"), &[]));
        assert_eq!(problems(&state), Vec::<String>::new(), "one id in two kinds is two objects");

        let mut copied = state.clone();
        copied.resources.insert("server.other".into(), resource("server", Some("42"), &[]));
        assert_eq!(
            problems(&copied),
            ["`server.app` and `server.other` record the same server (id 42): a plan would act on one object for \
              the other's sake"]
        );

        let mut spaceship = state.clone();
        spaceship.resources.get_mut("server.app").expect("app").kind = "spaceship".into();
        assert_eq!(problems(&spaceship), ["`server.app` is recorded as a spaceship, but its address names a server"]);

        let mut cycle = state.clone();
        cycle.resources.get_mut("network.private").expect("net").dependencies = vec!["server.app".into()];
        assert_eq!(
            problems(&cycle),
            ["its dependencies go round in a cycle: `network.private` -> `server.app` -> `network.private`"]
        );

        let mut last = state.clone();
        last.serial = u64::MAX;
        assert_eq!(problems(&last).len(), 1);
        assert!(problems(&last)[0].contains("the largest there is"));
    }

    #[test]
    fn a_long_chain_is_checked_without_recursion() {
        let mut state = State::new(None);
        for i in 0..200_000 {
            let deps = if i == 0 { Vec::new() } else { vec![format!("server.s{}", i - 1)] };
            let mut r = ResourceState::new("server");
            r.dependencies = deps;
            state.resources.insert(format!("server.s{i}"), r);
        }
        assert!(problems(&state).is_empty());
    }
}
