//! The compiler: a phase of a stack becomes a graph of primitive resources. It merges the phase
//! with the phases it extends, evaluates variables, locals and blocks in dependency order, expands
//! `count` and the composites, and links resources by the references between them. Every problem
//! found is reported; a phase with errors yields no graph.

mod backups;
mod block;
pub use block::MAX_SERVICE_SERVERS;
pub use merge::MAX_PHASE_CHAIN;
mod composite;
mod configure;
mod merge;
pub mod shard;
#[cfg(test)]
mod tests;
mod types;

use std::collections::{BTreeMap, BTreeSet};

use terrace_providers::pricing::Catalog;

use crate::addr::Address;
use crate::diag::{Diagnostic, Diagnostics, Span};
use crate::graph::Dag;
use crate::kind::Kind;
use crate::lang::eval::{Evaluator, ObjectEntry, Root, Scope, roots};
use crate::lang::{Expression, Stack};
use crate::model::{Compiled, Composite, Output, PhaseInfo, Resource};
use crate::value::Value;

pub use merge::Merged;

/// Values for variables given on the command line (`--var k=v`) and in `TERRACE_VAR_k`.
#[derive(Debug, Clone, Default)]
pub struct VarInputs {
    /// `--var`: an undeclared name is an error.
    pub cli: BTreeMap<String, String>,
    /// `TERRACE_VAR_*`: an undeclared name is ignored, as Terraform does with `TF_VAR_*`.
    pub env: BTreeMap<String, String>,
}

/// A node of the definition graph: what must be evaluated before what.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Node {
    Local(String),
    Object(Kind, String),
    Output(String),
}

impl std::fmt::Display for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Node::Local(name) => write!(f, "local.{name}"),
            Node::Object(kind, name) => write!(f, "{kind}.{name}"),
            Node::Output(name) => write!(f, "output.{name}"),
        }
    }
}

/// Compiles `phase` of `stack`. Diagnostics include warnings even when compilation succeeds.
pub fn compile(stack: &Stack, phase: &str, inputs: &VarInputs, catalog: &Catalog) -> (Option<Compiled>, Diagnostics) {
    let mut diags = Diagnostics::default();
    let Some(merged) = merge::merge(stack, phase, &mut diags) else {
        return (None, diags);
    };
    let vars = variables(&merged, inputs, &mut diags);
    let mut state = State {
        stack: &stack.name,
        catalog,
        vars,
        locals: BTreeMap::new(),
        objects: BTreeMap::new(),
        resources: Vec::new(),
        composites: Vec::new(),
        outputs: Vec::new(),
        deps: BTreeMap::new(),
        kept: BTreeSet::new(),
        diags,
    };
    for block in merged.blocks.values() {
        state.objects.insert(
            (block.def.kind, block.def.name.clone()),
            ObjectEntry { count: None, instances: Vec::new(), failed: false },
        );
    }

    // The definition graph orders evaluation; its cycles are errors printed as the cycle.
    let mut graph: Dag<Node, Option<Span>> = Dag::new();
    for local in merged.locals.values() {
        graph.add(Node::Local(local.name.clone()), Some(local.span.clone()));
    }
    for block in merged.blocks.values() {
        graph.add(Node::Object(block.def.kind, block.def.name.clone()), Some(block.def.span.clone()));
    }
    for output in merged.outputs.values() {
        graph.add(Node::Output(output.name.clone()), Some(output.span.clone()));
    }
    let mut edges = Vec::new();
    for local in merged.locals.values() {
        edges.push((Node::Local(local.name.clone()), expr_roots(&local.expr)));
    }
    for block in merged.blocks.values() {
        edges.push((Node::Object(block.def.kind, block.def.name.clone()), body_roots(&block.def.body)));
    }
    for output in merged.outputs.values() {
        edges.push((Node::Output(output.name.clone()), output.value.as_ref().map(expr_roots).unwrap_or_default()));
    }
    for (from, targets) in &edges {
        for root in targets {
            let to = match root {
                Root::Var(_) => continue,
                Root::Local(name) => Node::Local(name.clone()),
                Root::Object(kind, name, reads) => {
                    // The compiler keeps a block's attribute values for reading only where
                    // something reads them: a composite reads its network's and host's.
                    let composite = matches!(from, Node::Object(k, _) if k.is_composite());
                    // Networks are kept always: a composite reads the range of its host's network
                    // and of its clients' networks, which it does not name itself.
                    if *reads || composite || *kind == Kind::Network {
                        state.kept.insert((*kind, name.clone()));
                    }
                    Node::Object(*kind, name.clone())
                }
            };
            graph.depend(from, &to);
        }
    }
    let order: Vec<Node> = match graph.topological_order() {
        Ok(order) => order.into_iter().cloned().collect(),
        Err(cycles) => {
            for cycle in cycles {
                let span = cycle.first().and_then(|node| graph.get(node).cloned().flatten());
                state.diags.push(cycle_error(&cycle, span, cycle_hint(&cycle)));
            }
            return (None, state.diags);
        }
    };

    for node in order {
        match node {
            Node::Local(name) => {
                if let Some(local) = merged.locals.get(&name) {
                    let value = state.evaluate(local.span.file, &local.expr);
                    // A failed local is unknown, so that one mistake is reported once.
                    state.locals.insert(name, value.unwrap_or(Value::Unknown));
                }
            }
            Node::Object(kind, name) => {
                if let Some(block) = merged.blocks.get(&(kind, name)) {
                    state.block(block);
                }
            }
            Node::Output(name) => {
                if let Some(output) = merged.outputs.get(&name) {
                    state.output(output);
                }
            }
        }
    }
    let State { resources, composites, outputs, mut deps, mut diags, .. } = state;

    let mut dag: Dag<Address, Resource> = Dag::new();
    let mut members: BTreeMap<Address, Vec<Address>> = BTreeMap::new();
    for composite in &composites {
        members.insert(composite.address.clone(), composite.members.clone());
    }
    let mut resources = resources;
    backups::estimate(&composites, &mut resources);
    let mut edges = Vec::new();
    for resource in resources {
        let address = resource.address.clone();
        if let Some(existing) = dag.get(&address) {
            let first = existing.origin.block.clone();
            diags.push(
                Diagnostic::error(format!("duplicate address `{address}`")).at(resource.origin.block.clone()).hint(
                    format!(
                        "another block already defines it{}",
                        first.map_or(String::new(), |_| " (see above)".into())
                    ),
                ),
            );
            continue;
        }
        let mut targets = BTreeSet::new();
        for reference in resource.attrs.values().flat_map(|value| value.references()) {
            targets.insert(reference.address.clone());
        }
        targets.extend(deps.remove(&address).unwrap_or_default());
        edges.push((address.clone(), targets));
        dag.add(address, resource);
    }
    for (from, targets) in edges {
        for target in targets {
            match members.get(&target) {
                Some(parts) => {
                    for part in parts {
                        if !part.is_within(&from) && !from.is_within(&target) {
                            dag.depend(&from, part);
                        }
                    }
                }
                None => dag.depend(&from, &target),
            }
        }
    }
    if let Err(cycles) = dag.topological_order() {
        for cycle in cycles {
            let span = cycle.first().and_then(|a| dag.get(a)).and_then(|r| r.origin.block.clone());
            let hint = "break the cycle: one of these resources must not refer to the next";
            diags.push(cycle_error(&cycle, span, hint.to_owned()));
        }
    }
    if diags.has_errors() {
        return (None, diags);
    }
    let compiled = Compiled {
        stack: stack.name.clone(),
        phase: PhaseInfo {
            name: merged.phase.name.clone(),
            extends: merged.phase.extends.as_ref().map(|(name, _)| name.clone()),
            users: merged.phase.users.clone(),
            description: merged.phase.description.clone(),
            budget_monthly: merged.phase.budget_monthly,
        },
        resources: dag,
        composites,
        outputs,
    };
    (Some(compiled), diags)
}

/// A cycle of the definition or the resource graph, printed as the cycle.
fn cycle_error<K: std::fmt::Display>(cycle: &[K], span: Option<Span>, hint: String) -> Diagnostic {
    let path: Vec<String> = cycle.iter().map(ToString::to_string).collect();
    Diagnostic::error(format!("dependency cycle: {}", path.join(" -> ")))
        .at(span)
        .label("this refers, through the others, back to itself")
        .hint(hint)
}

/// What to do about a cycle, by what it is made of.
fn cycle_hint(cycle: &[Node]) -> String {
    let has = |kind: Kind| cycle.iter().any(|node| matches!(node, Node::Object(k, _) if *k == kind));
    if cycle.iter().all(|node| matches!(node, Node::Local(_))) {
        "a local cannot be computed from itself: one of these must not refer to the next".into()
    } else if has(Kind::Firewall) && has(Kind::Server) {
        "attach a firewall either with its `apply_to` or with the server's `firewalls`, not both".into()
    } else {
        "break the cycle: one of these must not refer to the next".into()
    }
}

fn expr_roots(expr: &Expression) -> Vec<Root> {
    let mut found = Vec::new();
    roots(expr, &mut found);
    found.into_iter().map(|(root, _)| root).collect()
}

fn body_roots(body: &crate::lang::Body) -> Vec<Root> {
    let mut found = Vec::new();
    for attr in body.attributes() {
        roots(&attr.value, &mut found);
    }
    for block in body.blocks() {
        found.extend(body_roots(&block.body).into_iter().map(|root| (root, None)));
    }
    found.into_iter().map(|(root, _)| root).collect()
}

/// Variable values: `--var` over `TERRACE_VAR_*` over the default.
fn variables(merged: &Merged, inputs: &VarInputs, diags: &mut Diagnostics) -> BTreeMap<String, Value> {
    let mut values = BTreeMap::new();
    for name in inputs.cli.keys() {
        if !merged.variables.contains_key(name) {
            let hint = crate::schema::suggest(name, merged.variables.keys().map(String::as_str))
                .map(|s| format!("did you mean `{s}`?"))
                .unwrap_or_else(|| format!("declare it with `variable \"{name}\" {{ }}`"));
            diags.push(Diagnostic::error(format!("--var {name}: no variable `{name}` is declared")).hint(hint));
        }
    }
    let empty = BTreeMap::new();
    let objects = BTreeMap::new();
    for var in merged.variables.values() {
        let default = var.default.as_ref().and_then(|expr| {
            let scope =
                Scope { file: var.span.file, vars: &empty, locals: &empty, objects: &objects, count_index: None };
            let mut found = Vec::new();
            roots(expr, &mut found);
            if !found.is_empty() {
                diags.push(
                    Diagnostic::error(format!("the default of variable `{}` refers to other values", var.name))
                        .at(Some(var.span.clone()))
                        .hint("a default is a fixed value; compute derived values in `locals`"),
                );
                return None;
            }
            Evaluator::new(&scope, diags).eval(expr).ok()
        });
        let given = inputs.cli.get(&var.name).or_else(|| inputs.env.get(&var.name));
        let value = match (given, default) {
            (Some(text), default) => parse_input(text, default.as_ref()),
            (None, Some(default)) => default,
            (None, None) => {
                diags.push(
                    Diagnostic::error(format!("variable `{}` has no value", var.name))
                        .at(Some(var.span.clone()))
                        .hint(format!("give it a default, or pass --var {0}=... or TERRACE_VAR_{0}=...", var.name)),
                );
                Value::Unknown
            }
        };
        let value = if var.sensitive { Value::Sensitive(Box::new(value)) } else { value };
        values.insert(var.name.clone(), value);
    }
    values
}

/// A value from the command line takes the type of the default (number, bool), else it is a string.
fn parse_input(text: &str, default: Option<&Value>) -> Value {
    match default {
        Some(Value::Number(_)) => text.parse().map(Value::Number).unwrap_or_else(|_| Value::str(text)),
        Some(Value::Bool(_)) => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::str(text),
        },
        _ => Value::str(text),
    }
}

/// Everything the evaluation loop builds up.
struct State<'a> {
    stack: &'a str,
    catalog: &'a Catalog,
    vars: BTreeMap<String, Value>,
    locals: BTreeMap<String, Value>,
    objects: BTreeMap<(Kind, String), ObjectEntry>,
    resources: Vec<Resource>,
    composites: Vec<Composite>,
    outputs: Vec<Output>,
    /// Dependencies found while evaluating each resource (also through strings and `depends_on`).
    deps: BTreeMap<Address, BTreeSet<Address>>,
    /// Blocks whose attribute values are read (see `Root::Object`): only these are kept in `objects`.
    kept: BTreeSet<(Kind, String)>,
    diags: Diagnostics,
}

impl State<'_> {
    /// Evaluates an expression outside any counted block.
    fn evaluate(&mut self, file: usize, expr: &Expression) -> crate::lang::eval::Eval {
        let scope = Scope { file, vars: &self.vars, locals: &self.locals, objects: &self.objects, count_index: None };
        Evaluator::new(&scope, &mut self.diags).eval(expr)
    }

    fn output(&mut self, output: &crate::lang::OutputDef) {
        let Some(expr) = &output.value else { return };
        let value = self.evaluate(output.span.file, expr);
        if let Ok(value) = value {
            if value.holds_sensitive() && !output.sensitive {
                self.diags.push(
                    Diagnostic::error(format!("output `{}` holds a sensitive value", output.name))
                        .at(Some(output.span.clone()))
                        .hint("add `sensitive = true` to the output: its value is then shown only on request"),
                );
                return;
            }
            let value = if output.sensitive { Value::Sensitive(Box::new(value)) } else { value };
            self.outputs.push(Output {
                name: output.name.clone(),
                value,
                sensitive: output.sensitive,
                description: output.description.clone(),
            });
        }
    }
}
