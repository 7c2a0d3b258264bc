//! What the engine has seen of the datastore, by key: each key's revision,
//! so a watch event is news only once and a re-list after a lost watch
//! yields only the keys that really differ. Pure.
//!
//! Keys are sorted into [`Class`]es by a string match; a key no part of the
//! dataplane reads (IPAM handles and affinities, BGP-only kinds for Felix,
//! kube-controllers configuration, …) stops there and costs nothing more.

use std::collections::{HashMap, HashSet};

use calico_api::Kind;
use calico_datastore::keys::{K8S_NETWORK_POLICY_ROOT, RESOURCES_ROOT};
use calico_datastore::{EventKind, KeyValue, Revision};

/// The prefixes listed at start (and after a lost watch). One watch on
/// [`WATCH_PREFIX`] covers them all.
pub const LIST_PREFIXES: [&str; 3] = [
    "/calico/resources/v3/",
    "/calico/ipam/v2/assignment/ipv4/block/",
    "/calico/ipam/v2/assignment/ipv6/block/",
];

/// The one watch.
pub const WATCH_PREFIX: &str = "/calico/";

/// What a key stands for, to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// A Calico resource of a kind the engine reads.
    Resource(Kind),
    /// A stored Kubernetes NetworkPolicy.
    KubernetesNetworkPolicy,
    /// An IPAM block.
    Block,
    /// Anything else: ignored.
    Ignored,
}

/// The kinds the engine reads (Felix's and BGP's inputs).
pub const KINDS: [Kind; 16] = [
    Kind::Node,
    Kind::IPPool,
    Kind::WorkloadEndpoint,
    Kind::HostEndpoint,
    Kind::FelixConfiguration,
    Kind::ClusterInformation,
    Kind::Tier,
    Kind::NetworkPolicy,
    Kind::GlobalNetworkPolicy,
    Kind::Profile,
    Kind::NetworkSet,
    Kind::GlobalNetworkSet,
    Kind::BGPConfiguration,
    Kind::BGPPeer,
    Kind::BGPFilter,
    Kind::IPReservation,
];

/// The class of `key`: one prefix match, no decoding.
pub fn classify(key: &str) -> Class {
    if let Some(rest) = key.strip_prefix(RESOURCES_ROOT) {
        let plural = rest.split('/').next().unwrap_or("");
        return KINDS
            .iter()
            .find(|k| k.plural() == plural)
            .map_or(Class::Ignored, |k| Class::Resource(*k));
    }
    if key.starts_with(K8S_NETWORK_POLICY_ROOT) {
        return Class::KubernetesNetworkPolicy;
    }
    if LIST_PREFIXES[1..].iter().any(|p| key.starts_with(p)) {
        return Class::Block;
    }
    Class::Ignored
}

/// A change the calculation must see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Created or updated.
    Put(KeyValue),
    /// Deleted.
    Delete(String),
}

impl Change {
    /// The key changed.
    pub fn key(&self) -> &str {
        match self {
            Change::Put(kv) => &kv.key,
            Change::Delete(k) => k,
        }
    }
}

/// Each key the calculation holds, with the revision it holds it at.
#[derive(Debug, Default)]
pub struct Cache {
    revs: HashMap<String, Revision>,
    /// Bytes of values taken in (what was read from the datastore).
    pub bytes_read: u64,
}

impl Cache {
    /// Empty.
    pub fn new() -> Cache {
        Cache::default()
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.revs.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.revs.is_empty()
    }

    /// A watch event: the change when it is news (a key of a class the
    /// engine reads, not already held at that revision or later).
    pub fn event(
        &mut self,
        kind: EventKind,
        key: String,
        value: Vec<u8>,
        mod_revision: Revision,
    ) -> Option<Change> {
        self.bytes_read += (key.len() + value.len()) as u64;
        if classify(&key) == Class::Ignored {
            return None;
        }
        match kind {
            EventKind::Put => {
                if self.revs.get(&key).is_some_and(|r| *r >= mod_revision) {
                    return None;
                }
                self.revs.insert(key.clone(), mod_revision);
                Some(Change::Put(KeyValue {
                    key,
                    value,
                    create_revision: 0,
                    mod_revision,
                }))
            }
            EventKind::Delete => {
                if self.revs.get(&key).is_some_and(|r| *r > mod_revision) {
                    return None;
                }
                self.revs.remove(&key).map(|_| Change::Delete(key))
            }
        }
    }

    /// Starts a re-list: the keys seen in it are collected page by page
    /// ([`Relist::page`]); [`Relist::finish`] yields the deletions.
    pub fn relist(&mut self) -> Relist<'_> {
        Relist {
            cache: self,
            seen: HashSet::new(),
        }
    }
}

/// A re-list in progress.
pub struct Relist<'c> {
    cache: &'c mut Cache,
    seen: HashSet<String>,
}

impl Relist<'_> {
    /// One page of the list: the changes it shows (keys new or at another
    /// revision than held).
    pub fn page(&mut self, kvs: Vec<KeyValue>) -> Vec<Change> {
        let mut out = Vec::new();
        for kv in kvs {
            self.cache.bytes_read += (kv.key.len() + kv.value.len()) as u64;
            if classify(&kv.key) == Class::Ignored {
                continue;
            }
            self.seen.insert(kv.key.clone());
            if self.cache.revs.get(&kv.key) == Some(&kv.mod_revision) {
                continue;
            }
            self.cache.revs.insert(kv.key.clone(), kv.mod_revision);
            out.push(Change::Put(kv));
        }
        out
    }

    /// The keys held but absent from the list: deleted meanwhile.
    pub fn finish(self) -> Vec<Change> {
        let gone: Vec<String> = self
            .cache
            .revs
            .keys()
            .filter(|k| !self.seen.contains(*k))
            .cloned()
            .collect();
        for k in &gone {
            self.cache.revs.remove(k);
        }
        let mut gone: Vec<Change> = gone.into_iter().map(Change::Delete).collect();
        gone.sort_by(|a, b| a.key().cmp(b.key()));
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, rev: Revision) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: b"{}".to_vec(),
            create_revision: rev,
            mod_revision: rev,
        }
    }

    const WEP: &str = "/calico/resources/v3/projectcalico.org/workloadendpoints/ns/a";

    #[test]
    fn keys_are_classified_by_prefix() {
        assert_eq!(classify(WEP), Class::Resource(Kind::WorkloadEndpoint));
        assert_eq!(
            classify("/calico/resources/v3/projectcalico.org/nodes/n1"),
            Class::Resource(Kind::Node)
        );
        assert_eq!(
            classify("/calico/resources/v3/networking.k8s.io/networkpolicies/ns/p"),
            Class::KubernetesNetworkPolicy
        );
        assert_eq!(
            classify("/calico/ipam/v2/assignment/ipv4/block/10.0.0.0-26"),
            Class::Block
        );
        for ignored in [
            "/calico/ipam/v2/handle/k8s-pod-network.abc",
            "/calico/ipam/v2/host/n1/ipv4/block/10.0.0.0-26",
            "/calico/resources/v3/projectcalico.org/kubecontrollersconfigurations/default",
            "/calico/other",
        ] {
            assert_eq!(classify(ignored), Class::Ignored, "{ignored}");
        }
    }

    #[test]
    fn an_event_is_news_once_and_ignored_keys_cost_nothing() {
        let mut c = Cache::new();
        let put = |c: &mut Cache, rev| c.event(EventKind::Put, WEP.into(), b"{}".to_vec(), rev);
        assert!(put(&mut c, 5).is_some());
        assert!(put(&mut c, 5).is_none(), "replayed");
        assert!(put(&mut c, 4).is_none(), "older");
        assert!(put(&mut c, 6).is_some());
        assert!(
            c.event(
                EventKind::Put,
                "/calico/ipam/v2/handle/x".into(),
                b"{}".to_vec(),
                7
            )
            .is_none()
        );
        assert_eq!(c.len(), 1);
        assert_eq!(
            c.event(EventKind::Delete, WEP.into(), vec![], 8),
            Some(Change::Delete(WEP.into()))
        );
        assert!(c.event(EventKind::Delete, WEP.into(), vec![], 8).is_none());
        assert!(c.is_empty());
    }

    #[test]
    fn a_relist_yields_only_the_differences() {
        let mut c = Cache::new();
        let other = "/calico/resources/v3/projectcalico.org/workloadendpoints/ns/b";
        let gone = "/calico/resources/v3/projectcalico.org/workloadendpoints/ns/c";
        for (k, r) in [(WEP, 1), (other, 2), (gone, 3)] {
            c.event(EventKind::Put, k.into(), b"{}".to_vec(), r);
        }
        let mut r = c.relist();
        let changed = r.page(vec![kv(WEP, 1), kv(other, 9)]);
        let new = r.page(vec![kv(
            "/calico/ipam/v2/assignment/ipv4/block/10.0.0.0-26",
            10,
        )]);
        let deleted = r.finish();
        assert_eq!(changed, vec![Change::Put(kv(other, 9))]);
        assert_eq!(new.len(), 1);
        assert_eq!(deleted, vec![Change::Delete(gone.into())]);
        assert_eq!(c.len(), 3);
    }
}
