//! A small directed acyclic graph over petgraph that knows nothing of Hetzner: nodes keyed by an
//! ordered key, a deterministic topological order (ties broken by key), and cycles reported as
//! paths. Edges point from a node to what it depends on.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};

#[derive(Debug, Clone)]
pub struct Dag<K: Ord + Clone, V> {
    graph: DiGraph<V, ()>,
    index: BTreeMap<K, NodeIndex>,
    keys: Vec<K>,
}

impl<K: Ord + Clone, V> Default for Dag<K, V> {
    fn default() -> Self {
        Self { graph: DiGraph::new(), index: BTreeMap::new(), keys: Vec::new() }
    }
}

impl<K: Ord + Clone, V> Dag<K, V> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a node; returns false (and keeps the first) when the key exists.
    pub fn add(&mut self, key: K, value: V) -> bool {
        if self.index.contains_key(&key) {
            return false;
        }
        let node = self.graph.add_node(value);
        self.index.insert(key.clone(), node);
        self.keys.push(key);
        true
    }

    /// `from` depends on `to`. Unknown keys and self-edges are ignored; duplicates are kept once.
    pub fn depend(&mut self, from: &K, to: &K) {
        if let (Some(&a), Some(&b)) = (self.index.get(from), self.index.get(to))
            && a != b
            && self.graph.find_edge(a, b).is_none()
        {
            self.graph.add_edge(a, b, ());
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn contains(&self, key: &K) -> bool {
        self.index.contains_key(key)
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.index.get(key).map(|&node| &self.graph[node])
    }

    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let node = *self.index.get(key)?;
        Some(&mut self.graph[node])
    }

    /// Nodes in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.index.iter().map(|(key, &node)| (key, &self.graph[node]))
    }

    /// What `key` depends on, in key order.
    pub fn dependencies(&self, key: &K) -> Vec<&K> {
        self.neighbours(key, Direction::Outgoing)
    }

    /// What depends on `key`, in key order.
    pub fn dependents(&self, key: &K) -> Vec<&K> {
        self.neighbours(key, Direction::Incoming)
    }

    fn neighbours(&self, key: &K, direction: Direction) -> Vec<&K> {
        let Some(&node) = self.index.get(key) else {
            return Vec::new();
        };
        let mut keys: Vec<&K> = self.graph.neighbors_directed(node, direction).map(|n| &self.keys[n.index()]).collect();
        keys.sort();
        keys
    }

    /// Dependencies first; among nodes that are ready together, the smallest key first. On a
    /// cycle, returns every cycle found, each as a path that starts and ends at the same key.
    pub fn topological_order(&self) -> Result<Vec<&K>, Vec<Vec<K>>> {
        let mut waiting: Vec<usize> =
            self.graph.node_indices().map(|n| self.graph.neighbors_directed(n, Direction::Outgoing).count()).collect();
        let mut ready: BinaryHeap<Reverse<(&K, usize)>> = waiting
            .iter()
            .enumerate()
            .filter(|(_, count)| **count == 0)
            .map(|(n, _)| Reverse((&self.keys[n], n)))
            .collect();
        let mut order = Vec::with_capacity(self.keys.len());
        while let Some(Reverse((key, n))) = ready.pop() {
            order.push(key);
            for dependent in self.graph.neighbors_directed(NodeIndex::new(n), Direction::Incoming) {
                let slot = &mut waiting[dependent.index()];
                *slot -= 1;
                if *slot == 0 {
                    ready.push(Reverse((&self.keys[dependent.index()], dependent.index())));
                }
            }
        }
        if order.len() == self.keys.len() { Ok(order) } else { Err(self.cycles()) }
    }

    /// Each strongly connected component with a cycle, as one concrete cycle through its smallest key.
    pub fn cycles(&self) -> Vec<Vec<K>> {
        let mut found = Vec::new();
        for component in petgraph::algo::tarjan_scc(&self.graph) {
            if component.len() < 2 {
                continue;
            }
            let members: std::collections::BTreeSet<NodeIndex> = component.iter().copied().collect();
            let Some(&start) = component.iter().min_by_key(|n| &self.keys[n.index()]) else {
                continue;
            };
            if let Some(path) = self.path_back(start, &members) {
                found.push(path.into_iter().map(|n| self.keys[n.index()].clone()).collect());
            }
        }
        found.sort();
        found
    }

    /// A shortest path from `start` back to itself inside `members` (breadth first, smallest keys first).
    fn path_back(&self, start: NodeIndex, members: &std::collections::BTreeSet<NodeIndex>) -> Option<Vec<NodeIndex>> {
        let mut previous: BTreeMap<NodeIndex, NodeIndex> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        while let Some(node) = queue.pop_front() {
            let mut next: Vec<NodeIndex> =
                self.graph.neighbors_directed(node, Direction::Outgoing).filter(|n| members.contains(n)).collect();
            next.sort_by_key(|n| &self.keys[n.index()]);
            for neighbour in next {
                if neighbour == start {
                    let mut chain = Vec::new();
                    let mut at = node;
                    while at != start {
                        chain.push(at);
                        at = previous[&at];
                    }
                    chain.reverse();
                    let mut path = vec![start];
                    path.extend(chain);
                    path.push(start);
                    return Some(path);
                }
                if let std::collections::btree_map::Entry::Vacant(slot) = previous.entry(neighbour) {
                    slot.insert(node);
                    queue.push_back(neighbour);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dag(edges: &[(&'static str, &'static str)], nodes: &[&'static str]) -> Dag<&'static str, ()> {
        let mut dag = Dag::new();
        for node in nodes {
            dag.add(*node, ());
        }
        for (from, to) in edges {
            dag.depend(from, to);
        }
        dag
    }

    #[test]
    fn order_puts_dependencies_first_and_breaks_ties_by_key() {
        let dag = dag(&[("c", "a"), ("b", "a"), ("d", "c")], &["d", "c", "b", "a", "e"]);
        let order: Vec<&str> = dag.topological_order().expect("acyclic").into_iter().copied().collect();
        assert_eq!(order, ["a", "b", "c", "d", "e"]);
    }

    #[test]
    fn cycles_are_reported_as_paths() {
        let dag = dag(&[("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")], &["a", "b", "c", "d"]);
        let cycles = dag.topological_order().expect_err("cyclic");
        assert_eq!(cycles, vec![vec!["a", "b", "c", "a"]]);
    }
}
