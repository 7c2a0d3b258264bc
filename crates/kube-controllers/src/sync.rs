//! Reconcile a desired set of documents against the Calico store.
//!
//! Invariants:
//! - only what differs is written: re-running with the same desired state
//!   writes nothing;
//! - every update and delete carries the resourceVersion just read, so a
//!   concurrent writer makes it fail with a conflict (counted, retried by the
//!   next resync) instead of being overwritten;
//! - a controller deletes only what it owns: profiles with its name prefix,
//!   Kubernetes NetworkPolicies (all of which the policy controller owns);
//! - a controller keeps what it last read or wrote ([`StoreCache`]): one
//!   change of one object is one read-modify-write of one document, and the
//!   store's full list is read only at start and after a watch loss.

use std::collections::{BTreeMap, HashMap};

use calico_api::k8s;
use calico_api::{Document, DocumentKey, Kind, Resource};
use calico_datastore::client::{BATCH, WriteOp};
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

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.created += o.created;
        self.updated += o.updated;
        self.deleted += o.deleted;
        self.conflicts += o.conflicts;
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

/// A kind of document a controller owns in the store: how it is listed,
/// read, compared and written. Implemented for Profiles ([`Resource`]) and
/// mirrored Kubernetes NetworkPolicies.
pub trait OwnedDoc: Clone {
    /// What identifies one document.
    type Key: Ord + Clone + std::fmt::Debug;
    /// Its key.
    fn key(&self) -> Self::Key;
    /// Every owned document (for Profiles: those named with `prefix`).
    fn list(client: &Client, prefix: &str) -> Result<Vec<Self>, ClientError>;
    /// One document as stored now, if any.
    fn get(client: &Client, key: &Self::Key) -> Result<Option<Self>, ClientError>;
    /// The document with the defaults the store adds.
    fn prepare(self) -> Result<Self, ClientError>;
    /// Whether stored `have` already says what prepared `want` says.
    fn same(have: &Self, want: &Self) -> bool;
    /// Creates `want` (when `have` is `None`) or replaces `have` with it at
    /// `have`'s resourceVersion; the stored result.
    fn write(client: &Client, want: Self, have: Option<&Self>) -> Result<Self, ClientError>;
    /// Deletes `have` at its resourceVersion.
    fn delete(client: &Client, have: &Self) -> Result<(), ClientError>;
}

impl OwnedDoc for Resource {
    type Key = String;
    fn key(&self) -> String {
        self.metadata().name.clone()
    }
    fn list(client: &Client, prefix: &str) -> Result<Vec<Resource>, ClientError> {
        let (all, _) = client.list(Kind::Profile, None)?;
        Ok(all
            .into_iter()
            .filter(|r| r.metadata().name.starts_with(prefix))
            .collect())
    }
    fn get(client: &Client, key: &String) -> Result<Option<Resource>, ClientError> {
        let k = calico_api::ResourceKey {
            kind: Kind::Profile,
            namespace: None,
            name: key.clone(),
        };
        absent_is_none(client.get(&k))
    }
    fn prepare(self) -> Result<Resource, ClientError> {
        Client::prepare(self)
    }
    fn same(have: &Resource, want: &Resource) -> bool {
        let have = Client::prepare(have.clone()).unwrap_or_else(|_| have.clone());
        match (&have, want) {
            (Resource::Profile(a), Resource::Profile(b)) => a.spec == b.spec,
            _ => false,
        }
    }
    fn write(
        client: &Client,
        mut want: Resource,
        have: Option<&Resource>,
    ) -> Result<Resource, ClientError> {
        match have {
            None => client.create(want),
            Some(h) => {
                want.metadata_mut().resource_version = h.metadata().resource_version.clone();
                client.update(want)
            }
        }
    }
    fn delete(client: &Client, have: &Resource) -> Result<(), ClientError> {
        let rv = have.metadata().resource_version.clone();
        client.delete(&have.key(), rv.as_deref()).map(|_| ())
    }
}

impl OwnedDoc for k8s::NetworkPolicy {
    type Key = (String, String);
    fn key(&self) -> (String, String) {
        (self.namespace().to_string(), self.metadata.name.clone())
    }
    fn list(client: &Client, _prefix: &str) -> Result<Vec<Self>, ClientError> {
        Ok(client.list_k8s_network_policies(None)?.0)
    }
    fn get(client: &Client, key: &(String, String)) -> Result<Option<Self>, ClientError> {
        let mut probe = k8s::NetworkPolicy::default();
        probe.metadata.namespace = Some(key.0.clone());
        probe.metadata.name = key.1.clone();
        let k: DocumentKey = Document::KubernetesNetworkPolicy(probe).key();
        Ok(match absent_is_none(client.get_document(&k))? {
            Some(Document::KubernetesNetworkPolicy(p)) => Some(p),
            _ => None,
        })
    }
    fn prepare(self) -> Result<Self, ClientError> {
        match Client::prepare_document(Document::KubernetesNetworkPolicy(self.clone()))? {
            Document::KubernetesNetworkPolicy(p) => Ok(p),
            _ => Ok(self),
        }
    }
    fn same(have: &Self, want: &Self) -> bool {
        let mut cmp = have.clone();
        cmp.metadata.resource_version = None;
        cmp.metadata.uid = None;
        cmp.metadata.creation_timestamp = None;
        &cmp == want
    }
    fn write(client: &Client, mut want: Self, have: Option<&Self>) -> Result<Self, ClientError> {
        let op = match have {
            Some(h) => {
                want.metadata.resource_version = h.metadata.resource_version.clone();
                WriteOp::Replace
            }
            None => WriteOp::Create,
        };
        match client.write_prepared(op, vec![Document::KubernetesNetworkPolicy(want.clone())]) {
            Ok(mut out) => match out.pop() {
                Some(Document::KubernetesNetworkPolicy(p)) => Ok(p),
                _ => Ok(want),
            },
            Err((_, e)) => Err(e),
        }
    }
    fn delete(client: &Client, have: &Self) -> Result<(), ClientError> {
        let k: DocumentKey = Document::KubernetesNetworkPolicy(have.clone()).key();
        let rv = have.metadata.resource_version.clone();
        client.delete_document(&k, rv.as_deref()).map(|_| ())
    }
}

fn absent_is_none<T>(r: Result<T, ClientError>) -> Result<Option<T>, ClientError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(ClientError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// What a controller last read or wrote of the documents it owns, so that
/// one change costs one read-modify-write: the full list of the store is
/// read only on [`StoreCache::resync`] (at start and after a watch loss)
/// or when the cache was [`StoreCache::forget`]-ten.
///
/// Invariants: a write is a compare-and-swap at the cached resourceVersion;
/// when it conflicts (another writer), that one document is read again and
/// the write tried once more; an error of the store forgets the cache, so
/// the next pass starts from a full list.
#[derive(Debug)]
pub struct StoreCache<D: OwnedDoc> {
    prefix: String,
    known: Option<BTreeMap<D::Key, D>>,
}

/// The profiles of one name prefix (`kns.`, `ksa.`).
pub type ProfileStore = StoreCache<Resource>;
/// The mirrored Kubernetes NetworkPolicies.
pub type PolicyStore = StoreCache<k8s::NetworkPolicy>;

impl<D: OwnedDoc> StoreCache<D> {
    /// An empty cache of the documents named with `prefix` (profiles; the
    /// policy store ignores it).
    pub fn new(prefix: &str) -> StoreCache<D> {
        StoreCache {
            prefix: prefix.to_string(),
            known: None,
        }
    }

    /// Whether a full list has been read since the start or the last
    /// [`StoreCache::forget`].
    pub fn is_primed(&self) -> bool {
        self.known.is_some()
    }

    /// Drops what is cached: the next pass reads the full list.
    pub fn forget(&mut self) {
        self.known = None;
    }

    fn known(&mut self, client: &Client) -> Result<&mut BTreeMap<D::Key, D>, ClientError> {
        if self.known.is_none() {
            let all = D::list(client, &self.prefix)?;
            self.known = Some(all.into_iter().map(|d| (d.key(), d)).collect());
        }
        Ok(self.known.get_or_insert_with(BTreeMap::new))
    }

    /// Reads the full list, then makes the owned documents exactly
    /// `desired`: creates, updates and deletes only what differs.
    pub fn resync(&mut self, client: &Client, desired: Vec<D>) -> Result<Stats, ClientError> {
        self.forget();
        let mut stats = Stats::default();
        let mut stale: std::collections::BTreeSet<D::Key> =
            self.known(client)?.keys().cloned().collect();
        for want in desired {
            let key = want.key();
            stale.remove(&key);
            stats += self.apply(client, &key, Some(want))?;
        }
        for key in stale {
            stats += self.apply(client, &key, None)?;
        }
        Ok(stats)
    }

    /// Makes the one document `key` be `want` (`None`: absent), from what is
    /// cached: at most one write when nothing raced it.
    pub fn apply(
        &mut self,
        client: &Client,
        key: &D::Key,
        want: Option<D>,
    ) -> Result<Stats, ClientError> {
        let r = self.one(client, key, want);
        if r.is_err() {
            self.forget();
        }
        r
    }

    fn one(
        &mut self,
        client: &Client,
        key: &D::Key,
        want: Option<D>,
    ) -> Result<Stats, ClientError> {
        let mut stats = Stats::default();
        let want = want.map(D::prepare).transpose()?;
        for attempt in 0..2 {
            let known = self.known(client)?;
            let have = known.get(key).cloned();
            let res = match (&have, &want) {
                (None, None) => return Ok(stats),
                (Some(h), Some(w)) if D::same(h, w) => return Ok(stats),
                (h, Some(w)) => D::write(client, w.clone(), h.as_ref()).map(|stored| {
                    if h.is_some() {
                        stats.updated += 1;
                    } else {
                        stats.created += 1;
                    }
                    known.insert(key.clone(), stored);
                }),
                (Some(h), None) => D::delete(client, h).map(|()| {
                    stats.deleted += 1;
                    known.remove(key);
                }),
            };
            match res {
                Ok(()) => return Ok(stats),
                Err(e) if is_race(&e) => {
                    // Someone else wrote it: read that one again.
                    match D::get(client, key)? {
                        Some(now) => known.insert(key.clone(), now),
                        None => known.remove(key),
                    };
                    if attempt == 1 {
                        stats.conflicts += 1;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(stats)
    }
}

fn is_race(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Conflict { .. } | ClientError::AlreadyExists(_) | ClientError::NotFound(_)
    )
}

/// Makes the profiles whose names start with `prefix` exactly `desired`
/// (each a Profile named with that prefix): one full pass, no cache kept.
pub fn sync_profiles(
    client: &Client,
    prefix: &str,
    desired: Vec<Resource>,
) -> Result<Stats, ClientError> {
    ProfileStore::new(prefix).resync(client, desired)
}

/// Makes the stored Kubernetes NetworkPolicies exactly `desired`: one full
/// pass, no cache kept.
pub fn sync_network_policies(
    client: &Client,
    desired: Vec<k8s::NetworkPolicy>,
) -> Result<Stats, ClientError> {
    PolicyStore::new("").resync(client, desired)
}

/// Up to this many pods, their endpoints are read by name, not listed.
const FEW_PODS: usize = 32;

/// Sets the labels of every Kubernetes WorkloadEndpoint whose pod is in
/// `pods` to that pod's labels; endpoints of pods not given are left alone
/// (their pod may not have been seen yet). Only labels change.
pub fn sync_endpoint_labels(client: &Client, pods: &[Pod]) -> Result<Stats, ClientError> {
    let mut stats = Stats::default();
    let by_key: HashMap<(&str, &str), &Pod> = pods
        .iter()
        .map(|p| ((p.namespace.as_str(), p.name.as_str()), p))
        .collect();
    // A few scheduled pods (a watch event): only their own endpoints, by
    // name prefix, whatever the size of their namespace. Otherwise one
    // namespace named: only its endpoints; else all.
    let weps = if pods.len() <= FEW_PODS && pods.iter().all(|p| p.node.is_some()) {
        let mut weps = Vec::new();
        for p in pods {
            let node = p.node.as_deref().unwrap_or_default();
            weps.extend(client.list_named(
                Kind::WorkloadEndpoint,
                Some(&p.namespace),
                &convert::endpoint_name_prefix(node, &p.name),
            )?);
        }
        weps
    } else {
        let only = match pods {
            [p, rest @ ..] if rest.iter().all(|q| q.namespace == p.namespace) => {
                Some(p.namespace.as_str())
            }
            _ => None,
        };
        client.list(Kind::WorkloadEndpoint, only)?.0
    };
    let mut relabelled = weps.iter().filter_map(|wep| {
        let (ns, pod) = convert::endpoint_pod(wep)?;
        let p = by_key.get(&(ns.as_str(), pod.as_str()))?;
        convert::relabel_endpoint(wep, p)
    });
    // Each at the resourceVersion listed, many to a transaction; a few
    // transactions' worth at a time, so no second copy of every endpoint.
    loop {
        let chunk: Vec<Resource> = relabelled.by_ref().take(10 * BATCH).collect();
        if chunk.is_empty() {
            break;
        }
        for r in client.update_batch(chunk) {
            if count_conflict(r, &mut stats)? {
                stats.updated += 1;
            }
        }
    }
    Ok(stats)
}
