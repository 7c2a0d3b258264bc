//! The node controller's pass: a Kubernetes Node gone → its Calico Node,
//! its workload endpoints, its addresses and its block affinities removed;
//! addresses of pods gone for the grace period released (IPAM GC).
//!
//! Invariants:
//! - with `dry_run`, nothing is written: what would be done is logged and
//!   returned (Calico logs a dry run before it first releases anything);
//! - addresses are released by handle through `calico-ipam` (its
//!   compare-and-swap writes), affinities and empty blocks of nodes that no
//!   longer exist by [`calico_ipam::Ipam::release_orphan_blocks`];
//! - deletes carry the resourceVersion read, so a node re-registering at the
//!   same moment is not removed under it.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use calico_api::{Kind, Resource};
use calico_datastore::{Client, ClientError};
use calico_ipam::{Ipam, IpamError};

use crate::ipamgc::{self, LeakTracker, Reason};

/// Errors of a node pass.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The store failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// IPAM failed.
    #[error(transparent)]
    Ipam(#[from] IpamError),
}

/// What a node pass did (or, on a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeReport {
    /// Calico Nodes removed.
    pub nodes: Vec<String>,
    /// Workload endpoints removed (namespace/name).
    pub endpoints: Vec<String>,
    /// Handles released.
    pub handles: Vec<String>,
    /// Blocks whose affinity was removed.
    pub blocks: Vec<String>,
}

/// The node controller's state between passes.
#[derive(Debug)]
pub struct NodeController {
    tracker: LeakTracker,
    /// How long a pod's address may be unused before it is released.
    pub grace: Duration,
}

impl NodeController {
    /// A controller releasing pod addresses after `grace`.
    pub fn new(grace: Duration) -> NodeController {
        NodeController {
            tracker: LeakTracker::default(),
            grace,
        }
    }

    /// One pass given the Kubernetes `nodes` and `pods` (namespace, name).
    pub fn pass(
        &mut self,
        client: &Client,
        k8s_nodes: &BTreeSet<String>,
        k8s_pods: &BTreeSet<(String, String)>,
        now: Instant,
        dry_run: bool,
    ) -> Result<NodeReport, NodeError> {
        let ipam = Ipam::new(client.store().clone());
        let mut report = NodeReport::default();
        // Endpoints of gone nodes, then the nodes.
        let (weps, _) = client.list(Kind::WorkloadEndpoint, None)?;
        for w in weps {
            let Resource::WorkloadEndpoint(o) = &w else {
                continue;
            };
            if o.spec.orchestrator != "k8s" || k8s_nodes.contains(&o.spec.node) {
                continue;
            }
            let name = format!(
                "{}/{}",
                o.metadata.namespace.as_deref().unwrap_or(""),
                o.metadata.name
            );
            if dry_run {
                log::info!("dry run: would delete workload endpoint {name} of a deleted node");
            } else if !delete(client, &w)? {
                continue;
            }
            report.endpoints.push(name);
        }
        let (nodes, _) = client.list(Kind::Node, None)?;
        for n in nodes {
            let name = n.metadata().name.clone();
            if k8s_nodes.contains(&name) {
                continue;
            }
            if dry_run {
                log::info!("dry run: would delete node {name}, gone from Kubernetes");
            } else if !delete(client, &n)? {
                continue;
            }
            report.nodes.push(name);
        }
        // Leaked addresses.
        let allocs = ipamgc::allocations(&ipam.blocks()?);
        let mut handles = BTreeSet::new();
        for (a, why) in self
            .tracker
            .pass(&allocs, k8s_nodes, k8s_pods, now, self.grace)
        {
            let Some(h) = a.handle else { continue };
            let why = match why {
                Reason::NodeGone => "its node is gone",
                Reason::PodGone => "its pod is gone",
            };
            if dry_run {
                log::info!("dry run: would release {} (handle {h}): {why}", a.ip);
            } else {
                log::info!("releasing {} (handle {h}): {why}", a.ip);
            }
            handles.insert(h);
        }
        for h in handles {
            if !dry_run {
                ipam.release_by_handle(&h)?;
            }
            report.handles.push(h);
        }
        if !dry_run {
            report.blocks = ipam
                .release_orphan_blocks()?
                .iter()
                .map(ToString::to_string)
                .collect();
        }
        Ok(report)
    }
}

/// Deletes `r` at the version read; false when it changed meanwhile.
fn delete(client: &Client, r: &Resource) -> Result<bool, ClientError> {
    match client.delete(&r.key(), r.metadata().resource_version.as_deref()) {
        Ok(_) => Ok(true),
        Err(ClientError::Conflict { .. }) | Err(ClientError::NotFound(_)) => Ok(false),
        Err(e) => Err(e),
    }
}
