//! What policy enforcement is computed from: the cluster's policy resources,
//! every endpoint (for selector-based address sets), which endpoints are on
//! this node, and the Felix settings.
//!
//! This is plain data; [`crate::model::Model::build`] turns it into the
//! resolved form the oracle and the compiler share.

use std::collections::BTreeSet;
use std::fmt;

use calico_api::Resource;
use calico_api::k8s;
use calico_api::meta::Object;
use calico_api::resources::{
    GlobalNetworkPolicySpec, GlobalNetworkSetSpec, HostEndpointSpec, NetworkPolicySpec,
    NetworkSetSpec, ProfileSpec, TierSpec, WorkloadEndpointSpec,
};

use crate::settings::Settings;

/// A resource the policy engine could not use, and why. The rest of the input
/// is still enforced; a policy with a problem is left out entirely (as Felix
/// treats a policy that fails validation as deleted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{resource}: {message}")]
pub struct Problem {
    /// `Kind(namespace/name)` of the resource.
    pub resource: String,
    /// What was wrong, naming the field.
    pub message: String,
}

impl Problem {
    /// A problem with `resource`.
    pub fn new(resource: impl fmt::Display, message: impl Into<String>) -> Problem {
        Problem {
            resource: resource.to_string(),
            message: message.into(),
        }
    }
}

/// A Tier: its name, order and default action.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tier {
    /// The tier's name.
    pub name: String,
    /// Order and default action.
    pub spec: TierSpec,
}

/// Everything enforcement is computed from.
#[derive(Debug, Clone, Default)]
pub struct PolicyInput {
    /// Tiers. The `default` tier exists even when absent here.
    pub tiers: Vec<Tier>,
    /// Calico NetworkPolicies (each with `metadata.namespace`).
    pub network_policies: Vec<Object<NetworkPolicySpec>>,
    /// GlobalNetworkPolicies.
    pub global_network_policies: Vec<Object<GlobalNetworkPolicySpec>>,
    /// Kubernetes NetworkPolicies, enforced as their Calico conversion.
    pub kubernetes_network_policies: Vec<k8s::NetworkPolicy>,
    /// Profiles (`kns.<namespace>` carries namespace labels as `pcns.<key>`).
    pub profiles: Vec<Object<ProfileSpec>>,
    /// NetworkSets.
    pub network_sets: Vec<Object<NetworkSetSpec>>,
    /// GlobalNetworkSets.
    pub global_network_sets: Vec<Object<GlobalNetworkSetSpec>>,
    /// Every workload endpoint of the cluster.
    pub workload_endpoints: Vec<Object<WorkloadEndpointSpec>>,
    /// Every host endpoint of the cluster.
    pub host_endpoints: Vec<Object<HostEndpointSpec>>,
    /// Interface names of the endpoints on this node (workload `cali…`
    /// interfaces and host endpoint interfaces); only these get chains.
    pub local_interfaces: BTreeSet<String>,
    /// Felix settings.
    pub settings: Settings,
}

impl PolicyInput {
    /// Files a resource under its kind. Kinds that do not affect policy are
    /// ignored; a FelixConfiguration replaces the settings (its problems are returned).
    pub fn add_resource(&mut self, r: Resource) -> Vec<Problem> {
        match r {
            Resource::NetworkPolicy(o) => self.network_policies.push(o),
            Resource::GlobalNetworkPolicy(o) => self.global_network_policies.push(o),
            Resource::Profile(o) => self.profiles.push(o),
            Resource::NetworkSet(o) => self.network_sets.push(o),
            Resource::GlobalNetworkSet(o) => self.global_network_sets.push(o),
            Resource::WorkloadEndpoint(o) => self.workload_endpoints.push(o),
            Resource::HostEndpoint(o) => self.host_endpoints.push(o),
            Resource::Tier(o) => self.tiers.push(Tier {
                name: o.metadata.name,
                spec: o.spec,
            }),
            Resource::FelixConfiguration(o) => {
                let (settings, problems) = Settings::from_felix(&o.spec);
                self.settings = settings;
                return problems;
            }
            _ => {}
        }
        Vec::new()
    }

    /// Files one decoded document: any Calico resource (strictly decoded, as
    /// `calicoctl apply` does), a `Tier`, or a Kubernetes
    /// `networking.k8s.io/v1` NetworkPolicy. Returns the settings problems of
    /// a FelixConfiguration; a document that cannot be decoded is an error.
    pub fn add_document(&mut self, v: serde_json::Value) -> Result<Vec<Problem>, String> {
        let api = v
            .get("apiVersion")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("");
        let kind = v
            .get("kind")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("");
        match (api, kind) {
            (k8s::NETWORKING_API_VERSION, k8s::NETWORK_POLICY_KIND) => {
                self.kubernetes_network_policies
                    .push(k8s::NetworkPolicy::from_json(v)?);
            }
            _ => return Ok(self.add_resource(calico_api::decode_value(v)?)),
        }
        Ok(Vec::new())
    }
}
