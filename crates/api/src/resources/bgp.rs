//! BGPConfiguration and BGPPeer.

use serde::{Deserialize, Serialize};

use super::common::{AsNumber, BGPPassword, check_selector};
use super::config_name;
use crate::meta::{ObjectMeta, SpecImpl};
use crate::validate::{self, Errors};

/// The AS number Calico uses when none is configured.
pub const DEFAULT_AS_NUMBER: AsNumber = AsNumber(64512);
/// Log levels Calico's BGP and Felix configs take.
pub const LOG_LEVELS: &[&str] = &[
    "Trace", "Debug", "Info", "Warning", "Error", "Fatal", "Panic", "None",
];

/// A CIDR entry (`serviceClusterIPs`, `serviceExternalIPs`, `serviceLoadBalancerIPs`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CidrEntry {
    /// The CIDR.
    pub cidr: String,
}

/// A named BGP community.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Community {
    /// Name used by `prefixAdvertisements`.
    pub name: String,
    /// Standard `aa:nn` or large `aa:nn:mm` community.
    pub value: String,
}

/// Communities to attach to a prefix.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrefixAdvertisement {
    /// The prefix.
    pub cidr: String,
    /// Community names or values.
    #[serde(default)]
    pub communities: Vec<String>,
}

/// Spec of a BGPConfiguration (`default` or `node.<name>`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPConfigurationSpec {
    /// Log level of the BGP speaker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_severity_screen: Option<String>,
    /// Full mesh between nodes (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_to_node_mesh_enabled: Option<bool>,
    /// The cluster's default AS number (default 64512).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_number: Option<AsNumber>,
    /// Service cluster IP ranges to advertise.
    #[serde(
        default,
        rename = "serviceClusterIPs",
        skip_serializing_if = "Option::is_none"
    )]
    pub service_cluster_ips: Option<Vec<CidrEntry>>,
    /// Service external IP ranges to advertise.
    #[serde(
        default,
        rename = "serviceExternalIPs",
        skip_serializing_if = "Option::is_none"
    )]
    pub service_external_ips: Option<Vec<CidrEntry>>,
    /// Service load-balancer IP ranges to advertise.
    #[serde(
        default,
        rename = "serviceLoadBalancerIPs",
        skip_serializing_if = "Option::is_none"
    )]
    pub service_load_balancer_ips: Option<Vec<CidrEntry>>,
    /// TCP port the speaker listens on (default 179).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_port: Option<u16>,
    /// Named communities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub communities: Option<Vec<Community>>,
    /// Communities per advertised prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_advertisements: Option<Vec<PrefixAdvertisement>>,
    /// Password for mesh sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_mesh_password: Option<BGPPassword>,
    /// Graceful-restart time for mesh sessions (duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_mesh_max_restart_time: Option<String>,
    /// `None` (listen on all addresses) or `NodeIP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_mode: Option<String>,
    /// Interfaces whose addresses are not exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignored_interfaces: Option<Vec<String>>,
    /// IPv4 address workloads peer with locally.
    #[serde(
        default,
        rename = "localWorkloadPeeringIPV4",
        skip_serializing_if = "Option::is_none"
    )]
    pub local_workload_peering_ipv4: Option<String>,
    /// IPv6 address workloads peer with locally.
    #[serde(
        default,
        rename = "localWorkloadPeeringIPV6",
        skip_serializing_if = "Option::is_none"
    )]
    pub local_workload_peering_ipv6: Option<String>,
    /// `Enabled` (default) or `Disabled`: whether LoadBalancer IPs are advertised as one route per range.
    #[serde(
        default,
        rename = "serviceLoadBalancerAggregation",
        skip_serializing_if = "Option::is_none"
    )]
    pub service_load_balancer_aggregation: Option<String>,
}

impl BGPConfigurationSpec {
    /// The AS number in force: the configured one, else 64512.
    pub fn as_number(&self) -> AsNumber {
        self.as_number.unwrap_or(DEFAULT_AS_NUMBER)
    }

    /// Whether the node-to-node mesh is on (default true).
    pub fn node_to_node_mesh_enabled(&self) -> bool {
        self.node_to_node_mesh_enabled.unwrap_or(true)
    }

    /// The BGP listen port (default 179).
    pub fn listen_port(&self) -> u16 {
        self.listen_port.unwrap_or(179)
    }
}

fn community_value(v: &str) -> Result<(), String> {
    let parts: Vec<&str> = v.split(':').collect();
    let ok = match parts.len() {
        2 => parts.iter().all(|p| p.parse::<u16>().is_ok()),
        3 => parts.iter().all(|p| p.parse::<u32>().is_ok()),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{v:?} is not a valid community: use aa:nn (16-bit parts) or aa:nn:mm (32-bit parts)"
        ))
    }
}

impl SpecImpl for BGPConfigurationSpec {
    fn check(&self, meta: &ObjectMeta, errs: &mut Errors) {
        if let Some(a) = &self.service_load_balancer_aggregation {
            errs.check(
                "spec.serviceLoadBalancerAggregation",
                validate::one_of(a, &["Enabled", "Disabled"]),
            );
        }
        if !meta.name.is_empty() {
            errs.check("metadata.name", config_name(&meta.name));
        }
        if let Some(l) = &self.log_severity_screen {
            errs.check("spec.logSeverityScreen", validate::one_of(l, LOG_LEVELS));
        }
        if self.listen_port == Some(0) {
            errs.add("spec.listenPort", "port 0 is not valid: use 1 to 65535");
        }
        for (field, list) in [
            ("serviceClusterIPs", &self.service_cluster_ips),
            ("serviceExternalIPs", &self.service_external_ips),
            ("serviceLoadBalancerIPs", &self.service_load_balancer_ips),
        ] {
            for (i, c) in list.iter().flatten().enumerate() {
                if let Err(e) = validate::cidr(&c.cidr) {
                    errs.add(format!("spec.{field}[{i}].cidr"), e);
                }
            }
        }
        let names: Vec<&str> = self
            .communities
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        for (i, c) in self.communities.iter().flatten().enumerate() {
            errs.check(
                format!("spec.communities[{i}].value"),
                community_value(&c.value),
            );
        }
        for (i, p) in self.prefix_advertisements.iter().flatten().enumerate() {
            if let Err(e) = validate::cidr(&p.cidr) {
                errs.add(format!("spec.prefixAdvertisements[{i}].cidr"), e);
            }
            for c in &p.communities {
                if !names.contains(&c.as_str()) && community_value(c).is_err() {
                    errs.add(
                        format!("spec.prefixAdvertisements[{i}].communities"),
                        format!("{c:?} is neither a community defined in spec.communities nor a community value"),
                    );
                }
            }
        }
        if let Some(d) = &self.node_mesh_max_restart_time {
            errs.check("spec.nodeMeshMaxRestartTime", validate::duration(d));
        }
        if let Some(b) = &self.bind_mode {
            errs.check("spec.bindMode", validate::one_of(b, &["None", "NodeIP"]));
        }
        if let Some(a) = &self.local_workload_peering_ipv4 {
            errs.check("spec.localWorkloadPeeringIPV4", validate::ip(a).map(|_| ()));
        }
        if let Some(a) = &self.local_workload_peering_ipv6 {
            errs.check("spec.localWorkloadPeeringIPV6", validate::ip(a).map(|_| ()));
        }
    }
}

/// Spec of a BGPPeer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPPeerSpec {
    /// The node that peers; empty for all nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Nodes that peer, by selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<String>,
    /// The peer's address, optionally with a port (`10.0.0.1:1179`, `[fd00::1]:1179`).
    #[serde(default, rename = "peerIP", skip_serializing_if = "Option::is_none")]
    pub peer_ip: Option<String>,
    /// The peer's AS number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_number: Option<AsNumber>,
    /// Peer with the Calico nodes this selects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_selector: Option<String>,
    /// Keep the original next hop when advertising to this peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_original_next_hop: Option<bool>,
    /// TCP MD5 password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<BGPPassword>,
    /// `UseNodeIP` (default) or `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_address: Option<String>,
    /// Graceful-restart time (duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_restart_time: Option<String>,
    /// Times the local AS may appear in received AS paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(
        rename = "numAllowedLocalASNumbers",
        alias = "numAllowedLocalAsNumbers"
    )]
    pub num_allowed_local_as_numbers: Option<u32>,
    /// GTSM hop count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_security: Option<u8>,
    /// Keepalive interval (duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive_time: Option<String>,
    /// Next hop through which the peer is reachable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reachable_by: Option<String>,
    /// BGPFilter names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Vec<String>>,
    /// Local workloads to peer with, by selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_workload_selector: Option<String>,
    /// `Auto`, `Self` or `Keep`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_hop_mode: Option<String>,
    /// The AS number this node uses towards the peer (instead of its own).
    #[serde(
        default,
        rename = "localASNumber",
        skip_serializing_if = "Option::is_none"
    )]
    pub local_as_number: Option<AsNumber>,
    /// `Auto` (default) or `Manual`: whether the peer's reverse peering is made automatically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverse_peering: Option<String>,
}

/// Splits a `peerIP` into address and optional port.
pub fn split_peer_ip(s: &str) -> Result<(std::net::IpAddr, Option<u16>), String> {
    if let Ok(ip) = s.parse() {
        return Ok((ip, None));
    }
    let bad = || format!("{s:?} is not a valid peer address: use an IP, IP:port or [IPv6]:port");
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip = host.parse().map_err(|_| bad())?;
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(bad)?;
    Ok((ip, Some(port)))
}

impl SpecImpl for BGPPeerSpec {
    fn check(&self, _meta: &ObjectMeta, errs: &mut Errors) {
        if let Some(r) = &self.reverse_peering {
            errs.check(
                "spec.reversePeering",
                validate::one_of(r, &["Auto", "Manual"]),
            );
        }
        if self.node.is_some() && self.node_selector.is_some() {
            errs.add("spec", "node and nodeSelector cannot both be set");
        }
        if self.peer_selector.is_some() && (self.peer_ip.is_some() || self.as_number.is_some()) {
            errs.add(
                "spec",
                "peerSelector cannot be combined with peerIP or asNumber",
            );
        }
        if self.peer_selector.is_none() && self.peer_ip.is_none() {
            errs.add(
                "spec",
                "either peerIP (with asNumber) or peerSelector is required",
            );
        }
        if self.peer_ip.is_some() && self.as_number.is_none() {
            errs.add("spec.asNumber", "asNumber is required with peerIP");
        }
        if let Some(n) = &self.node {
            errs.check("spec.node", validate::dns1123_subdomain(n));
        }
        if let Some(p) = &self.peer_ip {
            errs.check("spec.peerIP", split_peer_ip(p).map(|_| ()));
        }
        check_selector(errs, "spec.nodeSelector", &self.node_selector);
        check_selector(errs, "spec.peerSelector", &self.peer_selector);
        check_selector(
            errs,
            "spec.localWorkloadSelector",
            &self.local_workload_selector,
        );
        if let Some(s) = &self.source_address {
            errs.check(
                "spec.sourceAddress",
                validate::one_of(s, &["UseNodeIP", "None"]),
            );
        }
        if let Some(d) = &self.max_restart_time {
            errs.check("spec.maxRestartTime", validate::duration(d));
        }
        if let Some(d) = &self.keepalive_time {
            errs.check("spec.keepaliveTime", validate::duration(d));
        }
        if let Some(r) = &self.reachable_by {
            errs.check("spec.reachableBy", validate::ip(r).map(|_| ()));
        }
        if let Some(m) = &self.next_hop_mode {
            errs.check(
                "spec.nextHopMode",
                validate::one_of(m, &["Auto", "Self", "Keep"]),
            );
        }
    }
}
