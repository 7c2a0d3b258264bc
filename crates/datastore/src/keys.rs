//! Calico's etcd v3 key layout, used by both backends.
//!
//! ```text
//! /calico/resources/v3/projectcalico.org/<plural>/<name>              cluster-scoped kinds
//! /calico/resources/v3/projectcalico.org/<plural>/<namespace>/<name>  namespaced kinds
//! /calico/ipam/v2/...                                                 IPAM blocks, affinities, handles
//! /calico/resources/v3/networking.k8s.io/networkpolicies/<namespace>/<name>
//!                                                                     Kubernetes NetworkPolicies
//! ```
//!
//! Kubernetes NetworkPolicies (which Calico reads from the Kubernetes API)
//! have a root of their own, beside the Calico kinds, so that a Calico and a
//! Kubernetes policy of the same name never share a key.

use calico_api::{DocumentKey, Kind, ResourceKey};

/// Root of every v3 resource key.
pub const RESOURCES_ROOT: &str = "/calico/resources/v3/projectcalico.org/";
/// Root of the stored Kubernetes `networking.k8s.io/v1` NetworkPolicies.
pub const K8S_NETWORK_POLICY_ROOT: &str = "/calico/resources/v3/networking.k8s.io/networkpolicies/";
/// Root of the IPAM keys.
pub const IPAM_ROOT: &str = "/calico/ipam/v2/";

/// The key of one resource.
pub fn resource_key(k: &ResourceKey) -> String {
    match (&k.namespace, k.kind.namespaced()) {
        (Some(ns), true) => format!("{RESOURCES_ROOT}{}/{ns}/{}", k.kind.plural(), k.name),
        _ => format!("{RESOURCES_ROOT}{}/{}", k.kind.plural(), k.name),
    }
}

/// The key of one document: a Calico resource or a Kubernetes NetworkPolicy.
pub fn document_key(k: &DocumentKey) -> String {
    match k {
        DocumentKey::Calico(k) => resource_key(k),
        DocumentKey::KubernetesNetworkPolicy { namespace, name } => {
            format!("{K8S_NETWORK_POLICY_ROOT}{namespace}/{name}")
        }
    }
}

/// The prefix of the Kubernetes NetworkPolicies (in `namespace`, or all).
pub fn k8s_network_policy_prefix(namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("{K8S_NETWORK_POLICY_ROOT}{ns}/"),
        None => K8S_NETWORK_POLICY_ROOT.to_string(),
    }
}

/// The prefix of every resource of `kind` (in `namespace`, for namespaced kinds).
pub fn kind_prefix(kind: Kind, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if kind.namespaced() => format!("{RESOURCES_ROOT}{}/{ns}/", kind.plural()),
        _ => format!("{RESOURCES_ROOT}{}/", kind.plural()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_calico() {
        let k = ResourceKey {
            kind: Kind::IPPool,
            namespace: None,
            name: "default-ipv4-ippool".into(),
        };
        assert_eq!(
            resource_key(&k),
            "/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool"
        );
        let k = ResourceKey {
            kind: Kind::WorkloadEndpoint,
            namespace: Some("web".into()),
            name: "n-k8s-p-eth0".into(),
        };
        assert_eq!(
            resource_key(&k),
            "/calico/resources/v3/projectcalico.org/workloadendpoints/web/n-k8s-p-eth0"
        );
        assert_eq!(
            kind_prefix(Kind::NetworkPolicy, Some("a")),
            "/calico/resources/v3/projectcalico.org/networkpolicies/a/"
        );
        assert_eq!(
            kind_prefix(Kind::NetworkPolicy, None),
            "/calico/resources/v3/projectcalico.org/networkpolicies/"
        );
        assert!(!resource_key(&k).starts_with(&kind_prefix(Kind::NetworkSet, None)));
        let tier = ResourceKey {
            kind: Kind::Tier,
            namespace: None,
            name: "security".into(),
        };
        assert_eq!(
            document_key(&tier.into()),
            "/calico/resources/v3/projectcalico.org/tiers/security"
        );
        let knp = DocumentKey::KubernetesNetworkPolicy {
            namespace: "shop".into(),
            name: "web".into(),
        };
        assert_eq!(
            document_key(&knp),
            "/calico/resources/v3/networking.k8s.io/networkpolicies/shop/web"
        );
        assert!(document_key(&knp).starts_with(&k8s_network_policy_prefix(Some("shop"))));
        assert!(!document_key(&knp).starts_with(&kind_prefix(Kind::NetworkPolicy, None)));
        assert!(!document_key(&knp).starts_with(RESOURCES_ROOT));
    }
}
