//! Which IPAM allocations are leaked, without I/O (the node controller's
//! garbage collection, as Calico's calico-kube-controllers does it).
//!
//! Invariants:
//! - an allocation on a node Kubernetes no longer has is leaked at once
//!   (the node is gone, so are its pods);
//! - an allocation naming a pod (`namespace`/`pod` attributes, written by
//!   the CNI plugin) that Kubernetes no longer has is leaked only after it
//!   has been seen so for a whole grace period without a break: a pod being
//!   created has its address before the API shows it;
//! - allocations without a pod attribute and on live nodes (tunnel
//!   addresses, other orchestrators) are never leaked here.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use calico_ipam::Block;
use calico_ipam::block::ATTR_NODE;

/// One allocated address and what its attributes say.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Allocation {
    /// The address.
    pub ip: IpAddr,
    /// Its handle, if any.
    pub handle: Option<String>,
    /// The node it was allocated for (attribute, else the block's affinity).
    pub node: Option<String>,
    /// The pod's namespace and name, when a pod's.
    pub pod: Option<(String, String)>,
}

/// The allocations of `blocks`.
pub fn allocations(blocks: &[Block]) -> Vec<Allocation> {
    let mut out = Vec::new();
    for b in blocks {
        for (ip, a) in b.allocated() {
            let node = a
                .secondary
                .get(ATTR_NODE)
                .cloned()
                .or_else(|| b.affine_node().map(str::to_string));
            let pod = match (a.secondary.get("namespace"), a.secondary.get("pod")) {
                (Some(ns), Some(p)) => Some((ns.clone(), p.clone())),
                _ => None,
            };
            out.push(Allocation {
                ip,
                handle: a.handle_id.clone(),
                node,
                pod,
            });
        }
    }
    out
}

/// Why an allocation is leaked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Its node is gone.
    NodeGone,
    /// Its pod has been gone for the grace period.
    PodGone,
}

/// Tracks, across passes, since when each allocation's pod has been missing.
#[derive(Debug, Default)]
pub struct LeakTracker {
    since: BTreeMap<IpAddr, Instant>,
}

impl LeakTracker {
    /// The leaked allocations given the current Kubernetes `nodes` and
    /// `pods`, at `now`, with `grace` for missing pods. Suspects that are
    /// no longer suspect are forgotten.
    pub fn pass(
        &mut self,
        allocs: &[Allocation],
        nodes: &BTreeSet<String>,
        pods: &BTreeSet<(String, String)>,
        now: Instant,
        grace: Duration,
    ) -> Vec<(Allocation, Reason)> {
        let mut out = Vec::new();
        let mut suspects = BTreeMap::new();
        for a in allocs {
            if let Some(n) = &a.node
                && !nodes.contains(n)
            {
                out.push((a.clone(), Reason::NodeGone));
                continue;
            }
            let Some(p) = &a.pod else { continue };
            if pods.contains(p) {
                continue;
            }
            let since = self.since.get(&a.ip).copied().unwrap_or(now);
            suspects.insert(a.ip, since);
            if now.duration_since(since) >= grace {
                out.push((a.clone(), Reason::PodGone));
            }
        }
        self.since = suspects;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn alloc(i: u8, node: &str, pod: Option<&str>) -> Allocation {
        Allocation {
            ip: IpAddr::from([10, 0, 0, i]),
            handle: Some(format!("k8s-pod-network.c{i}")),
            node: Some(node.into()),
            pod: pod.map(|p| ("ns".to_string(), p.to_string())),
        }
    }

    #[test]
    fn node_gone_at_once_pod_gone_after_grace() {
        let nodes: BTreeSet<String> = ["n1".to_string()].into();
        let pods: BTreeSet<(String, String)> = [("ns".to_string(), "live".to_string())].into();
        let allocs = vec![
            alloc(1, "n1", Some("live")),
            alloc(2, "n1", Some("dead")),
            alloc(3, "n2", Some("x")),
            alloc(4, "n1", None),
        ];
        let mut t = LeakTracker::default();
        let t0 = Instant::now();
        let g = Duration::from_secs(300);
        let out = t.pass(&allocs, &nodes, &pods, t0, g);
        assert_eq!(out, vec![(allocs[2].clone(), Reason::NodeGone)]);
        let out = t.pass(&allocs, &nodes, &pods, t0 + Duration::from_secs(299), g);
        assert_eq!(out.len(), 1);
        let out = t.pass(&allocs, &nodes, &pods, t0 + g, g);
        assert_eq!(out.len(), 2);
        assert!(out.contains(&(allocs[1].clone(), Reason::PodGone)));
    }

    #[test]
    fn pod_reappearing_restarts_the_grace() {
        let nodes: BTreeSet<String> = ["n1".to_string()].into();
        let none = BTreeSet::new();
        let back: BTreeSet<(String, String)> = [("ns".to_string(), "p".to_string())].into();
        let allocs = vec![alloc(1, "n1", Some("p"))];
        let mut t = LeakTracker::default();
        let t0 = Instant::now();
        let g = Duration::from_secs(10);
        assert!(t.pass(&allocs, &nodes, &none, t0, g).is_empty());
        assert!(t.pass(&allocs, &nodes, &back, t0 + g, g).is_empty());
        assert!(t.pass(&allocs, &nodes, &none, t0 + g, g).is_empty());
        assert_eq!(t.pass(&allocs, &nodes, &none, t0 + g + g, g).len(), 1);
    }

    proptest! {
        /// Nothing on a live node whose pod is live is ever leaked, and
        /// nothing without a pod on a live node is.
        #[test]
        fn live_allocations_never_leaked(
            spec in proptest::collection::vec((0u8..4, proptest::option::of(0u8..4)), 0..30),
            steps in 1usize..5,
        ) {
            let nodes: BTreeSet<String> = ["n0".to_string(), "n1".to_string()].into();
            let pods: BTreeSet<(String, String)> =
                [("ns".to_string(), "p0".to_string()), ("ns".to_string(), "p1".to_string())].into();
            let allocs: Vec<Allocation> = spec.iter().enumerate()
                .map(|(i, (n, p))| alloc(i as u8, &format!("n{n}"), p.map(|p| format!("p{p}")).as_deref()))
                .collect();
            let mut t = LeakTracker::default();
            let t0 = Instant::now();
            for s in 0..steps {
                let out = t.pass(&allocs, &nodes, &pods, t0 + Duration::from_secs(s as u64 * 100), Duration::from_secs(100));
                for (a, r) in out {
                    let node_live = a.node.as_ref().is_some_and(|n| nodes.contains(n));
                    prop_assert!(!node_live || a.pod.as_ref().is_some_and(|p| !pods.contains(p)));
                    prop_assert_eq!(r == Reason::NodeGone, !node_live);
                }
            }
        }
    }
}
