//! Reconcile a desired set of documents against the Calico store.
//!
//! Invariants:
//! - only what differs is written: re-running with the same desired state
//!   writes nothing;
//! - every update and delete carries the resourceVersion just read, so a
//!   concurrent writer makes it fail with a conflict (counted, retried by the
//!   next resync) instead of being overwritten;
//! - a controller deletes only what it owns: profiles with its name prefix,
//!   Kubernetes NetworkPolicies (all of which the policy controller owns).

use std::collections::{BTreeMap, HashMap};

use calico_api::k8s;
use calico_api::{Document, DocumentKey, Kind, Resource};
use calico_datastore::client::WriteOp;
use calico_datastore::{Client, ClientError};

use crate::convert::{self, Pod};

/// What a reconcile pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Documents created.
    pub created: usize,
    /// Documents updated.
    pub updated: usize,
    /// Documents deleted.
    pub deleted: usize,
    /// Writes refused because the document changed since it was read.
    pub conflicts: usize,
}

impl Stats {
    /// Whether the pass wrote anything.
    pub fn wrote(&self) -> bool {
        self.created + self.updated + self.deleted > 0
    }
}

fn count_conflict<T>(r: Result<T, ClientError>, stats: &mut Stats) -> Result<bool, ClientError> {
    match r {
        Ok(_) => Ok(true),
        Err(ClientError::Conflict { .. })
        | Err(ClientError::AlreadyExists(_))
        | Err(ClientError::NotFound(_)) => {
            stats.conflicts += 1;
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

fn profile_spec_eq(a: &Resource, b: &Resource) -> bool {
    match (a, b) {
        (Resource::Profile(a), Resource::Profile(b)) => a.spec == b.spec,
        _ => false,
    }
}

/// Makes the profiles whose names start with `prefix` exactly `desired`
/// (each a Profile named with that prefix).
pub fn sync_profiles(
    client: &Client,
    prefix: &str,
    desired: Vec<Resource>,
) -> Result<Stats, ClientError> {
    let mut stats = Stats::default();
    let (actual, _) = client.list(Kind::Profile, None)?;
    let mut actual: HashMap<String, Resource> = actual
        .into_iter()
        .filter(|r| r.metadata().name.starts_with(prefix))
        .map(|r| (r.metadata().name.clone(), r))
        .collect();
    for mut want in desired {
        match actual.remove(&want.metadata().name) {
            None => {
                if count_conflict(client.create(want), &mut stats)? {
                    stats.created += 1;
                }
            }
            Some(have) => {
                let have = Client::prepare(have.clone()).unwrap_or(have);
                let want_p = Client::prepare(want.clone())?;
                if profile_spec_eq(&have, &want_p) {
                    continue;
                }
                want.metadata_mut().resource_version = have.metadata().resource_version.clone();
                if count_conflict(client.update(want), &mut stats)? {
                    stats.updated += 1;
                }
            }
        }
    }
    for (_, stale) in actual {
        let key = stale.key();
        let rv = stale.metadata().resource_version.clone();
        if count_conflict(client.delete(&key, rv.as_deref()), &mut stats)? {
            stats.deleted += 1;
        }
    }
    Ok(stats)
}

/// Makes the stored Kubernetes NetworkPolicies exactly `desired`.
pub fn sync_network_policies(
    client: &Client,
    desired: Vec<k8s::NetworkPolicy>,
) -> Result<Stats, ClientError> {
    let mut stats = Stats::default();
    let (actual, _) = client.list_k8s_network_policies(None)?;
    let key = |p: &k8s::NetworkPolicy| (p.namespace().to_string(), p.metadata.name.clone());
    let mut actual: BTreeMap<_, _> = actual.into_iter().map(|p| (key(&p), p)).collect();
    for want in desired {
        let want = match Client::prepare_document(Document::KubernetesNetworkPolicy(want)) {
            Ok(Document::KubernetesNetworkPolicy(p)) => p,
            Ok(_) => continue,
            Err(e) => return Err(e),
        };
        let mut doc = want.clone();
        let exists = match actual.remove(&key(&want)) {
            Some(have) => {
                let mut cmp = have.clone();
                cmp.metadata.resource_version = None;
                cmp.metadata.uid = None;
                cmp.metadata.creation_timestamp = None;
                if cmp == want {
                    continue;
                }
                doc.metadata.resource_version = have.metadata.resource_version.clone();
                true
            }
            None => false,
        };
        let op = if exists {
            WriteOp::Replace
        } else {
            WriteOp::Create
        };
        match client.write_prepared(op, vec![Document::KubernetesNetworkPolicy(doc)]) {
            Ok(_) if exists => stats.updated += 1,
            Ok(_) => stats.created += 1,
            Err((_, e)) => {
                count_conflict::<()>(Err(e), &mut stats)?;
            }
        }
    }
    for (_, stale) in actual {
        let k: DocumentKey = Document::KubernetesNetworkPolicy(stale.clone()).key();
        let rv = stale.metadata.resource_version.clone();
        if count_conflict(client.delete_document(&k, rv.as_deref()), &mut stats)? {
            stats.deleted += 1;
        }
    }
    Ok(stats)
}

/// Sets the labels of every Kubernetes WorkloadEndpoint whose pod is in
/// `pods` to that pod's labels; endpoints of pods not given are left alone
/// (their pod may not have been seen yet). Only labels change.
pub fn sync_endpoint_labels(client: &Client, pods: &[Pod]) -> Result<Stats, ClientError> {
    let mut stats = Stats::default();
    let by_key: HashMap<(&str, &str), &Pod> = pods
        .iter()
        .map(|p| ((p.namespace.as_str(), p.name.as_str()), p))
        .collect();
    // One namespace named: read only its endpoints.
    let only = match pods {
        [p, rest @ ..] if rest.iter().all(|q| q.namespace == p.namespace) => {
            Some(p.namespace.as_str())
        }
        _ => None,
    };
    let (weps, _) = client.list(Kind::WorkloadEndpoint, only)?;
    for wep in weps {
        let Some((ns, pod)) = convert::endpoint_pod(&wep) else {
            continue;
        };
        let Some(p) = by_key.get(&(ns.as_str(), pod.as_str())) else {
            continue;
        };
        if let Some(new) = convert::relabel_endpoint(&wep, p)
            && count_conflict(client.update(new), &mut stats)?
        {
            stats.updated += 1;
        }
    }
    Ok(stats)
}
