//! Each controller's desired state read from its reflector's cache (pure),
//! and the passes that write it through [`crate::sync`]: the profile and
//! policy controllers keep a [`crate::sync::StoreCache`], so a change of one
//! object is one read-modify-write, and the store is listed in full only on
//! a resync (start, watch loss).

use std::collections::BTreeMap;

use calico_api::Resource;
use calico_api::k8s;
use calico_datastore::{Client, ClientError};

use crate::convert::{self, ConvertError, Pod};
use crate::reflector::{Change, Key};
use crate::sync::{self, PolicyStore, ProfileStore, Stats};

type Cache = BTreeMap<Key, serde_json::Value>;

fn labels(o: &serde_json::Value) -> BTreeMap<String, String> {
    serde_json::from_value(o["metadata"]["labels"].clone()).unwrap_or_default()
}

fn str_at<'a>(o: &'a serde_json::Value, p: &str) -> &'a str {
    o.pointer(p).and_then(|v| v.as_str()).unwrap_or("")
}

/// The `kns.` profiles of the cached Namespaces.
pub fn namespace_profiles(cache: &Cache) -> Vec<Resource> {
    cache
        .values()
        .map(|o| convert::namespace_profile(str_at(o, "/metadata/name"), &labels(o)))
        .collect()
}

/// The `ksa.` profiles of the cached ServiceAccounts.
pub fn service_account_profiles(cache: &Cache) -> Vec<Resource> {
    cache
        .values()
        .map(|o| {
            convert::service_account_profile(
                str_at(o, "/metadata/namespace"),
                str_at(o, "/metadata/name"),
                &labels(o),
            )
        })
        .collect()
}

/// The cached NetworkPolicies as stored documents; those Calico cannot
/// store are returned apart (logged, not written).
pub fn network_policies(cache: &Cache) -> (Vec<k8s::NetworkPolicy>, Vec<ConvertError>) {
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for o in cache.values() {
        match convert::network_policy(o) {
            Ok(p) => good.push(p),
            Err(e) => bad.push(e),
        }
    }
    (good, bad)
}

/// A cached Pod as the workloadendpoint controller sees it.
pub fn pod(o: &serde_json::Value) -> Pod {
    let sa = str_at(o, "/spec/serviceAccountName");
    let node = str_at(o, "/spec/nodeName");
    Pod {
        node: (!node.is_empty()).then(|| node.to_string()),
        namespace: str_at(o, "/metadata/namespace").to_string(),
        name: str_at(o, "/metadata/name").to_string(),
        labels: labels(o),
        service_account: (!sa.is_empty()).then(|| sa.to_string()),
    }
}

/// The workloadendpoint pass for `changes`: every pod on a resync, else the
/// pods changed (deleted pods are the node controller's).
pub fn endpoint_pass(
    client: &Client,
    cache: &Cache,
    changes: &[Change],
) -> Result<Stats, ClientError> {
    let pods: Vec<Pod> = if changes.contains(&Change::Resync) {
        cache.values().map(pod).collect()
    } else {
        changes
            .iter()
            .filter_map(|c| match c {
                Change::Upsert(k) => cache.get(k).map(pod),
                _ => None,
            })
            .collect()
    };
    if pods.is_empty() {
        return Ok(Stats::default());
    }
    sync::sync_endpoint_labels(client, &pods)
}

/// Which Kubernetes objects a profile controller mirrors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileSource {
    /// Namespaces → `kns.<ns>`.
    Namespace,
    /// ServiceAccounts → `ksa.<ns>.<sa>`.
    ServiceAccount,
}

impl ProfileSource {
    /// The profile name prefix it owns.
    pub fn prefix(self) -> &'static str {
        match self {
            ProfileSource::Namespace => convert::NAMESPACE_PROFILE_PREFIX,
            ProfileSource::ServiceAccount => convert::SERVICE_ACCOUNT_PROFILE_PREFIX,
        }
    }

    /// The profile name of the object `key`.
    pub fn name(self, key: &Key) -> String {
        match self {
            ProfileSource::Namespace => convert::namespace_profile_name(&key.1),
            ProfileSource::ServiceAccount => convert::service_account_profile_name(&key.0, &key.1),
        }
    }

    /// The profiles of every cached object.
    pub fn desired(self, cache: &Cache) -> Vec<Resource> {
        match self {
            ProfileSource::Namespace => namespace_profiles(cache),
            ProfileSource::ServiceAccount => service_account_profiles(cache),
        }
    }

    fn profile(self, o: &serde_json::Value) -> Resource {
        match self {
            ProfileSource::Namespace => {
                convert::namespace_profile(str_at(o, "/metadata/name"), &labels(o))
            }
            ProfileSource::ServiceAccount => convert::service_account_profile(
                str_at(o, "/metadata/namespace"),
                str_at(o, "/metadata/name"),
                &labels(o),
            ),
        }
    }
}

/// The namespace or serviceaccount controller: profiles from its cache.
#[derive(Debug)]
pub struct ProfileController {
    source: ProfileSource,
    store: ProfileStore,
}

impl ProfileController {
    /// A controller of `source`'s profiles (nothing read yet).
    pub fn new(source: ProfileSource) -> ProfileController {
        ProfileController {
            source,
            store: ProfileStore::new(source.prefix()),
        }
    }

    /// Writes what `changes` changed: everything (a full list of the store)
    /// on a resync or after a store error, else only the objects named.
    pub fn on_change(
        &mut self,
        client: &Client,
        cache: &Cache,
        changes: &[Change],
    ) -> Result<Stats, ClientError> {
        let source = self.source;
        incremental(
            &mut self.store,
            client,
            changes,
            || source.desired(cache),
            |k| (source.name(k), cache.get(k).map(|o| source.profile(o))),
        )
    }
}

/// One pass of a caching controller: a resync (or a first pass) writes
/// `full()`; otherwise each changed key `k` becomes `one(k)` (its document's
/// key and what it should be, `None` when gone).
fn incremental<D: sync::OwnedDoc>(
    store: &mut sync::StoreCache<D>,
    client: &Client,
    changes: &[Change],
    full: impl FnOnce() -> Vec<D>,
    one: impl Fn(&Key) -> (D::Key, Option<D>),
) -> Result<Stats, ClientError> {
    if changes.contains(&Change::Resync) || !store.is_primed() {
        return store.resync(client, full());
    }
    let mut stats = Stats::default();
    for c in changes {
        let (key, want) = match c {
            Change::Upsert(k) => one(k),
            Change::Delete(k) => (one(k).0, None),
            Change::Resync => continue,
        };
        stats += store.apply(client, &key, want)?;
    }
    Ok(stats)
}

/// The policy controller: mirrored NetworkPolicies from its cache.
#[derive(Debug)]
pub struct PolicyController {
    store: PolicyStore,
}

impl Default for PolicyController {
    fn default() -> Self {
        PolicyController {
            store: PolicyStore::new(""),
        }
    }
}

impl PolicyController {
    /// Writes what `changes` changed (see [`ProfileController::on_change`]);
    /// a policy Calico cannot store is logged and not written (a stored
    /// earlier version of it is removed).
    pub fn on_change(
        &mut self,
        client: &Client,
        cache: &Cache,
        changes: &[Change],
    ) -> Result<Stats, ClientError> {
        incremental(
            &mut self.store,
            client,
            changes,
            || {
                let (good, bad) = network_policies(cache);
                for e in bad {
                    log::warn!("{e}");
                }
                good
            },
            |k| match cache.get(k).map(convert::network_policy) {
                Some(Ok(p)) => (k.clone(), Some(p)),
                Some(Err(e)) => {
                    log::warn!("{e}");
                    (k.clone(), None)
                }
                None => (k.clone(), None),
            },
        )
    }
}
