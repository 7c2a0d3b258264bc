//! TEMPORARY stand-in for `calico_policy::incremental` (recompiles whole).
#![allow(missing_docs)]

use std::collections::BTreeMap;

use calico_api::Resource;
use calico_api::k8s;
use calico_api::meta::Object;
use calico_api::resources::*;
use calico_policy::{Engine, PolicyInput, Problem, Settings, Tier};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ItemId {
    Tier(String),
    NetworkPolicy { namespace: String, name: String },
    GlobalNetworkPolicy(String),
    KubernetesNetworkPolicy { namespace: String, name: String },
    Profile(String),
    NetworkSet { namespace: String, name: String },
    GlobalNetworkSet(String),
    WorkloadEndpoint { namespace: String, name: String },
    HostEndpoint(String),
}

#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum Item {
    Tier(Tier),
    NetworkPolicy(Object<NetworkPolicySpec>),
    GlobalNetworkPolicy(Object<GlobalNetworkPolicySpec>),
    KubernetesNetworkPolicy(k8s::NetworkPolicy),
    Profile(Object<ProfileSpec>),
    NetworkSet(Object<NetworkSetSpec>),
    GlobalNetworkSet(Object<GlobalNetworkSetSpec>),
    WorkloadEndpoint {
        ep: Object<WorkloadEndpointSpec>,
        local: bool,
    },
    HostEndpoint {
        ep: Object<HostEndpointSpec>,
        local: bool,
    },
}

fn ns<T>(o: &Object<T>) -> String {
    o.metadata.namespace.clone().unwrap_or_default()
}

impl Item {
    pub fn id(&self) -> ItemId {
        match self {
            Item::Tier(t) => ItemId::Tier(t.name.clone()),
            Item::NetworkPolicy(o) => ItemId::NetworkPolicy {
                namespace: ns(o),
                name: o.metadata.name.clone(),
            },
            Item::GlobalNetworkPolicy(o) => ItemId::GlobalNetworkPolicy(o.metadata.name.clone()),
            Item::KubernetesNetworkPolicy(np) => ItemId::KubernetesNetworkPolicy {
                namespace: np.metadata.namespace.clone().unwrap_or_default(),
                name: np.metadata.name.clone(),
            },
            Item::Profile(o) => ItemId::Profile(o.metadata.name.clone()),
            Item::NetworkSet(o) => ItemId::NetworkSet {
                namespace: ns(o),
                name: o.metadata.name.clone(),
            },
            Item::GlobalNetworkSet(o) => ItemId::GlobalNetworkSet(o.metadata.name.clone()),
            Item::WorkloadEndpoint { ep, .. } => ItemId::WorkloadEndpoint {
                namespace: ns(ep),
                name: ep.metadata.name.clone(),
            },
            Item::HostEndpoint { ep, .. } => ItemId::HostEndpoint(ep.metadata.name.clone()),
        }
    }

    pub fn from_resource(r: Resource, me: &str) -> Option<Item> {
        Some(match r {
            Resource::Tier(o) => Item::Tier(Tier {
                name: o.metadata.name,
                spec: o.spec,
            }),
            Resource::NetworkPolicy(o) => Item::NetworkPolicy(o),
            Resource::GlobalNetworkPolicy(o) => Item::GlobalNetworkPolicy(o),
            Resource::Profile(o) => Item::Profile(o),
            Resource::NetworkSet(o) => Item::NetworkSet(o),
            Resource::GlobalNetworkSet(o) => Item::GlobalNetworkSet(o),
            Resource::WorkloadEndpoint(ep) => {
                let local = ep.spec.node == me && !ep.spec.interface_name.is_empty();
                Item::WorkloadEndpoint { ep, local }
            }
            Resource::HostEndpoint(ep) => {
                let local = ep.spec.node == me && !ep.spec.interface_name.is_empty();
                Item::HostEndpoint { ep, local }
            }
            _ => return None,
        })
    }
}

pub struct Incremental {
    items: BTreeMap<ItemId, Item>,
    settings: Settings,
    engine: Engine,
    problems: Vec<Problem>,
}

impl Incremental {
    pub fn new(settings: Settings) -> Self {
        Incremental {
            items: BTreeMap::new(),
            settings,
            engine: Engine::new(),
            problems: Vec::new(),
        }
    }
    pub fn upsert(&mut self, item: Item) {
        self.items.insert(item.id(), item);
    }
    pub fn remove(&mut self, id: &ItemId) {
        self.items.remove(id);
    }
    pub fn set_settings(&mut self, s: Settings) {
        self.settings = s;
    }
    pub fn take_script(&mut self) -> String {
        let u = self.engine.update(&self.input());
        self.problems = u.problems;
        u.script
    }
    pub fn full(&self) -> String {
        calico_policy::nft::compile::compile(&calico_policy::Model::build(&self.input())).full()
    }
    pub fn ruleset(&self) -> calico_policy::Ruleset {
        calico_policy::nft::compile::compile(&calico_policy::Model::build(&self.input()))
    }
    pub fn input(&self) -> PolicyInput {
        let mut i = PolicyInput {
            settings: self.settings.clone(),
            ..PolicyInput::default()
        };
        for it in self.items.values() {
            match it.clone() {
                Item::Tier(t) => i.tiers.push(t),
                Item::NetworkPolicy(o) => i.network_policies.push(o),
                Item::GlobalNetworkPolicy(o) => i.global_network_policies.push(o),
                Item::KubernetesNetworkPolicy(o) => i.kubernetes_network_policies.push(o),
                Item::Profile(o) => i.profiles.push(o),
                Item::NetworkSet(o) => i.network_sets.push(o),
                Item::GlobalNetworkSet(o) => i.global_network_sets.push(o),
                Item::WorkloadEndpoint { ep, local } => {
                    if local {
                        i.local_interfaces.insert(ep.spec.interface_name.clone());
                    }
                    i.workload_endpoints.push(ep)
                }
                Item::HostEndpoint { ep, local } => {
                    if local {
                        i.local_interfaces.insert(ep.spec.interface_name.clone());
                    }
                    i.host_endpoints.push(ep)
                }
            }
        }
        i
    }
    pub fn problems(&self) -> Vec<Problem> {
        self.problems.clone()
    }
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let i = self.input();
        (
            i.tiers.len(),
            i.network_policies.len()
                + i.global_network_policies.len()
                + i.kubernetes_network_policies.len(),
            i.profiles.len(),
            i.host_endpoints.len(),
        )
    }
}
