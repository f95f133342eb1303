//! `terrace graph`: the resource graph as Graphviz DOT or JSON.

use serde::Serialize;

use crate::addr::Address;
use crate::kind::Kind;
use crate::model::Compiled;

#[derive(Serialize)]
struct JsonGraph<'a> {
    stack: &'a str,
    phase: &'a str,
    nodes: Vec<JsonNode<'a>>,
    edges: Vec<JsonEdge<'a>>,
}

#[derive(Serialize)]
struct JsonNode<'a> {
    address: &'a Address,
    kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    composite: Option<&'a Address>,
}

#[derive(Serialize)]
struct JsonEdge<'a> {
    from: &'a Address,
    to: &'a Address,
}

/// Nodes in dependency order; an edge goes from a resource to what it depends on.
pub fn json(compiled: &Compiled) -> String {
    let order = compiled.resources.topological_order().unwrap_or_default();
    let nodes = order
        .iter()
        .filter_map(|a| compiled.resource(a))
        .map(|r| JsonNode { address: &r.address, kind: r.kind, composite: r.composite.as_ref() })
        .collect();
    let edges = order
        .iter()
        .flat_map(|from| compiled.resources.dependencies(from).into_iter().map(move |to| JsonEdge { from, to }))
        .collect();
    super::json(&JsonGraph { stack: &compiled.stack, phase: &compiled.phase.name, nodes, edges })
}

/// DOT with one cluster per composite.
pub fn dot(compiled: &Compiled) -> String {
    let mut out = format!(
        "digraph \"{}/{}\" {{\n  rankdir = \"RL\";\n  node [shape = box, fontname = \"monospace\"];\n",
        compiled.stack, compiled.phase.name
    );
    for composite in &compiled.composites {
        out.push_str(&format!(
            "  subgraph \"cluster_{}\" {{\n    label = \"{}\";\n",
            composite.address, composite.address
        ));
        for member in &composite.members {
            out.push_str(&format!("    \"{member}\";\n"));
        }
        out.push_str("  }\n");
    }
    for (address, resource) in compiled.resources.iter() {
        if resource.composite.is_none() {
            out.push_str(&format!("  \"{address}\";\n"));
        }
    }
    for (address, _) in compiled.resources.iter() {
        for dependency in compiled.resources.dependencies(address) {
            out.push_str(&format!("  \"{address}\" -> \"{dependency}\";\n"));
        }
    }
    out.push_str("}\n");
    out
}
