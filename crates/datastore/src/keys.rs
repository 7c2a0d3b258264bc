//! Calico's etcd v3 key layout, used by both backends.
//!
//! ```text
//! /calico/resources/v3/projectcalico.org/<plural>/<name>              cluster-scoped kinds
//! /calico/resources/v3/projectcalico.org/<plural>/<namespace>/<name>  namespaced kinds
//! /calico/ipam/v2/...                                                 IPAM blocks, affinities, handles
//! ```

use calico_api::{Kind, ResourceKey};

/// Root of every v3 resource key.
pub const RESOURCES_ROOT: &str = "/calico/resources/v3/projectcalico.org/";
/// Root of the IPAM keys.
pub const IPAM_ROOT: &str = "/calico/ipam/v2/";

/// The key of one resource.
pub fn resource_key(k: &ResourceKey) -> String {
    match (&k.namespace, k.kind.namespaced()) {
        (Some(ns), true) => format!("{RESOURCES_ROOT}{}/{ns}/{}", k.kind.plural(), k.name),
        _ => format!("{RESOURCES_ROOT}{}/{}", k.kind.plural(), k.name),
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
    }
}
