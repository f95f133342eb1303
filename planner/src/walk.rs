//! The parallel walk of a [`Dag`] (Terraform's `dag/walk.go`): a node starts once everything it
//! depends on is done, at most `parallelism` at a time; a node whose dependency failed is skipped,
//! and after the first failure (or when asked to stop) no new node starts while the ones in flight
//! finish. It knows nothing of Hetzner: the work is a closure.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::task::JoinSet;

use crate::graph::Dag;

/// How one node ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Failed,
    /// Something it depends on failed.
    Skipped,
    /// The walk stopped (a failure elsewhere, or a stop request) before it could start.
    NotStarted,
}

/// Walks `dag`, running `work` on each node. `stop` may be set from outside (Ctrl-C); the walk
/// sets it on the first failure. Returns every node's outcome.
pub async fn walk<K, V, F, Fut>(
    dag: &Dag<K, V>,
    parallelism: usize,
    stop: Arc<AtomicBool>,
    work: F,
) -> BTreeMap<K, Outcome>
where
    K: Ord + Clone + Send + 'static,
    F: Fn(K) -> Fut,
    Fut: Future<Output = bool> + Send + 'static,
{
    let parallelism = parallelism.max(1);
    let mut waiting: BTreeMap<K, usize> = dag.iter().map(|(k, _)| (k.clone(), dag.dependencies(k).len())).collect();
    let mut ready: Vec<K> = waiting.iter().filter(|(_, n)| **n == 0).map(|(k, _)| k.clone()).collect();
    // Smallest key first, so a walk with parallelism 1 is deterministic.
    ready.sort();
    ready.reverse();
    let mut outcomes: BTreeMap<K, Outcome> = BTreeMap::new();
    let mut running: JoinSet<(K, bool)> = JoinSet::new();
    loop {
        while running.len() < parallelism && !stop.load(Ordering::SeqCst) {
            let Some(key) = ready.pop() else { break };
            let future = work(key.clone());
            running.spawn(async move { (key, future.await) });
        }
        let Some(joined) = running.join_next().await else { break };
        let (key, ok) = match joined {
            Ok(result) => result,
            // A panicking task is a failure of that node; its key is lost, so stop everything.
            Err(_) => {
                stop.store(true, Ordering::SeqCst);
                continue;
            }
        };
        if ok {
            for dependent in dag.dependents(&key) {
                if let Some(count) = waiting.get_mut(dependent) {
                    *count -= 1;
                    if *count == 0 {
                        ready.push(dependent.clone());
                        ready.sort();
                        ready.reverse();
                    }
                }
            }
            outcomes.insert(key, Outcome::Done);
        } else {
            stop.store(true, Ordering::SeqCst);
            skip_dependents(dag, &key, &mut outcomes);
            outcomes.insert(key, Outcome::Failed);
        }
    }
    for (key, _) in dag.iter() {
        outcomes.entry(key.clone()).or_insert(Outcome::NotStarted);
    }
    outcomes
}

fn skip_dependents<K: Ord + Clone, V>(dag: &Dag<K, V>, failed: &K, outcomes: &mut BTreeMap<K, Outcome>) {
    let mut queue: Vec<&K> = dag.dependents(failed);
    while let Some(key) = queue.pop() {
        if !outcomes.contains_key(key) {
            outcomes.insert(key.clone(), Outcome::Skipped);
            queue.extend(dag.dependents(key));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn chain() -> Dag<u32, ()> {
        // 1 <- 2 <- 3, and 4 alone; 5 depends on 1 and 4.
        let mut dag = Dag::new();
        for n in 1..=5 {
            dag.add(n, ());
        }
        dag.depend(&2, &1);
        dag.depend(&3, &2);
        dag.depend(&5, &1);
        dag.depend(&5, &4);
        dag
    }

    #[tokio::test]
    async fn dependencies_run_first_and_a_failure_skips_its_dependents() {
        let order = Arc::new(Mutex::new(Vec::new()));
        let seen = order.clone();
        let outcomes = walk(&chain(), 1, Arc::new(AtomicBool::new(false)), move |n| {
            let seen = seen.clone();
            async move {
                seen.lock().map(|mut s| s.push(n)).ok();
                n != 2
            }
        })
        .await;
        assert_eq!(*order.lock().unwrap_or_else(|e| e.into_inner()), vec![1, 2]);
        assert_eq!(outcomes[&1], Outcome::Done);
        assert_eq!(outcomes[&2], Outcome::Failed);
        assert_eq!(outcomes[&3], Outcome::Skipped);
        // Independent work does not start after a failure.
        assert_eq!(outcomes[&4], Outcome::NotStarted);
    }

    #[tokio::test]
    async fn independent_nodes_run_in_parallel_up_to_the_limit() {
        let mut dag: Dag<u32, ()> = Dag::new();
        for n in 0..6 {
            dag.add(n, ());
        }
        let live = Arc::new(Mutex::new((0usize, 0usize)));
        let probe = live.clone();
        let outcomes = walk(&dag, 3, Arc::new(AtomicBool::new(false)), move |_| {
            let probe = probe.clone();
            async move {
                probe
                    .lock()
                    .map(|mut p| {
                        p.0 += 1;
                        p.1 = p.1.max(p.0);
                    })
                    .ok();
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                probe.lock().map(|mut p| p.0 -= 1).ok();
                true
            }
        })
        .await;
        assert!(outcomes.values().all(|o| *o == Outcome::Done));
        assert_eq!(live.lock().unwrap_or_else(|e| e.into_inner()).1, 3, "at most and at least 3 at once");
    }

    #[tokio::test]
    async fn a_stop_request_starts_nothing_new() {
        let stop = Arc::new(AtomicBool::new(true));
        let outcomes = walk(&chain(), 4, stop, |_| async { true }).await;
        assert!(outcomes.values().all(|o| *o == Outcome::NotStarted));
    }
}
