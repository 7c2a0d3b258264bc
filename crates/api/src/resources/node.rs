//! Node and ClusterInformation.

use serde::{Deserialize, Serialize};

use super::common::AsNumber;
use crate::meta::{ObjectMeta, SpecImpl};
use crate::validate::{self, Errors};

/// BGP settings of a node.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeBGPSpec {
    /// The node's AS number; the global one when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_number: Option<AsNumber>,
    /// IPv4 address and subnet (`10.0.0.1/24`).
    #[serde(
        default,
        rename = "ipv4Address",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv4_address: Option<String>,
    /// IPv6 address and subnet.
    #[serde(
        default,
        rename = "ipv6Address",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv6_address: Option<String>,
    /// Address of the node's `tunl0`.
    #[serde(
        default,
        rename = "ipv4IPIPTunnelAddr",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv4_ipip_tunnel_addr: Option<String>,
    /// Set to make the node a route reflector with this cluster ID.
    #[serde(
        default,
        rename = "routeReflectorClusterID",
        skip_serializing_if = "Option::is_none"
    )]
    pub route_reflector_cluster_id: Option<String>,
}

/// An orchestrator's name for the node.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrchRef {
    /// The node's name in the orchestrator.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_name: String,
    /// The orchestrator (e.g. `k8s`).
    pub orchestrator: String,
}

/// WireGuard settings of a node.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeWireguardSpec {
    /// IPv4 address of the WireGuard interface.
    #[serde(
        default,
        rename = "interfaceIPv4Address",
        skip_serializing_if = "Option::is_none"
    )]
    pub interface_ipv4_address: Option<String>,
    /// IPv6 address of the WireGuard interface.
    #[serde(
        default,
        rename = "interfaceIPv6Address",
        skip_serializing_if = "Option::is_none"
    )]
    pub interface_ipv6_address: Option<String>,
}

/// One address of a node.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeAddress {
    /// The address (optionally with prefix length).
    pub address: String,
    /// `CalicoNodeIP`, `InternalIP` or `ExternalIP`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// Spec of a Node.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeSpec {
    /// BGP settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp: Option<NodeBGPSpec>,
    /// Address of the node's `vxlan.calico` device.
    #[serde(
        default,
        rename = "ipv4VXLANTunnelAddr",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv4_vxlan_tunnel_addr: Option<String>,
    /// MAC of the node's `vxlan.calico` device.
    #[serde(
        default,
        rename = "vxlanTunnelMACAddr",
        skip_serializing_if = "Option::is_none"
    )]
    pub vxlan_tunnel_mac_addr: Option<String>,
    /// Address of the node's IPv6 VXLAN device.
    #[serde(
        default,
        rename = "ipv6VXLANTunnelAddr",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv6_vxlan_tunnel_addr: Option<String>,
    /// MAC of the node's IPv6 VXLAN device.
    #[serde(
        default,
        rename = "vxlanTunnelMACAddrV6",
        skip_serializing_if = "Option::is_none"
    )]
    pub vxlan_tunnel_mac_addr_v6: Option<String>,
    /// Orchestrator references.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orch_refs: Vec<OrchRef>,
    /// WireGuard settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wireguard: Option<NodeWireguardSpec>,
    /// The node's addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<NodeAddress>,
}

impl SpecImpl for NodeSpec {
    fn check(&self, _meta: &ObjectMeta, errs: &mut Errors) {
        if let Some(b) = &self.bgp {
            for (f, v, v4) in [
                ("ipv4Address", &b.ipv4_address, true),
                ("ipv6Address", &b.ipv6_address, false),
            ] {
                if let Some(a) = v {
                    match validate::ip_with_optional_prefix(a) {
                        Ok(ip) if ip.is_ipv4() != v4 => errs.add(
                            format!("spec.bgp.{f}"),
                            format!("{a:?} is not an IPv{} address", if v4 { 4 } else { 6 }),
                        ),
                        Ok(_) => {}
                        Err(e) => errs.add(format!("spec.bgp.{f}"), e),
                    }
                }
            }
            if let Some(a) = &b.ipv4_ipip_tunnel_addr {
                errs.check("spec.bgp.ipv4IPIPTunnelAddr", validate::ip(a).map(|_| ()));
            }
            if let Some(c) = &b.route_reflector_cluster_id
                && c.parse::<std::net::Ipv4Addr>().is_err()
            {
                errs.add(
                    "spec.bgp.routeReflectorClusterID",
                    format!("{c:?} must be in IPv4 address format, e.g. 224.0.0.1"),
                );
            }
        }
        for (f, v) in [
            ("ipv4VXLANTunnelAddr", &self.ipv4_vxlan_tunnel_addr),
            ("ipv6VXLANTunnelAddr", &self.ipv6_vxlan_tunnel_addr),
        ] {
            if let Some(a) = v {
                errs.check(format!("spec.{f}"), validate::ip(a).map(|_| ()));
            }
        }
        for (f, v) in [
            ("vxlanTunnelMACAddr", &self.vxlan_tunnel_mac_addr),
            ("vxlanTunnelMACAddrV6", &self.vxlan_tunnel_mac_addr_v6),
        ] {
            if let Some(m) = v {
                errs.check(format!("spec.{f}"), validate::mac(m));
            }
        }
        for (i, a) in self.addresses.iter().enumerate() {
            errs.check(
                format!("spec.addresses[{i}].address"),
                validate::ip_with_optional_prefix(&a.address).map(|_| ()),
            );
            if let Some(t) = &a.kind {
                errs.check(
                    format!("spec.addresses[{i}].type"),
                    validate::one_of(t, &["CalicoNodeIP", "InternalIP", "ExternalIP"]),
                );
            }
        }
    }
}

/// Spec of the ClusterInformation (named `default`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterInformationSpec {
    /// Unique id of the cluster.
    #[serde(
        default,
        rename = "clusterGUID",
        skip_serializing_if = "Option::is_none"
    )]
    pub cluster_guid: Option<String>,
    /// Comma-separated cluster type (e.g. `k8s,bgp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_type: Option<String>,
    /// Version of Calico the cluster runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calico_version: Option<String>,
    /// Whether the datastore is ready; false stops agents from changing the dataplane.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datastore_ready: Option<bool>,
    /// Product variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl SpecImpl for ClusterInformationSpec {
    fn check(&self, meta: &ObjectMeta, errs: &mut Errors) {
        if !meta.name.is_empty() && meta.name != "default" {
            errs.add(
                "metadata.name",
                "the ClusterInformation must be named \"default\"",
            );
        }
    }
}
