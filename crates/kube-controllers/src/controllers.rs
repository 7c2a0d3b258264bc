//! Each controller's desired state read from its reflector's cache (pure),
//! and the pass that writes it through [`crate::sync`].

use std::collections::BTreeMap;

use calico_api::Resource;
use calico_api::k8s;
use calico_datastore::{Client, ClientError};

use crate::convert::{self, ConvertError, Pod};
use crate::reflector::{Change, Key};
use crate::sync::{self, Stats};

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
    Pod {
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
