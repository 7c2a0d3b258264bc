//! WorkloadEndpoint and HostEndpoint.

use serde::{Deserialize, Serialize};

use super::common::Protocol;
use crate::meta::{ObjectMeta, SpecImpl};
use crate::validate::{self, Errors};

/// A named port of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointPort {
    /// Port name, referenced by policy rules.
    pub name: String,
    /// Protocol of the port.
    pub protocol: Protocol,
    /// Port number.
    pub port: u16,
    /// Host port mapped to it (workloads only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<u16>,
    /// Host address of the mapping (workloads only).
    #[serde(default, rename = "hostIP", skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
}

/// A 1:1 NAT of a workload address (floating IP).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IPNAT {
    /// The workload's own address.
    #[serde(rename = "internalIP")]
    pub internal_ip: String,
    /// The address that maps to it.
    #[serde(rename = "externalIP")]
    pub external_ip: String,
}

/// Spec of a WorkloadEndpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadEndpointSpec {
    /// Orchestrator (`k8s`, `cni`, ...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub orchestrator: String,
    /// Workload name (non-Kubernetes orchestrators).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub workload: String,
    /// The node hosting it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node: String,
    /// The container ID.
    #[serde(
        default,
        rename = "containerID",
        skip_serializing_if = "String::is_empty"
    )]
    pub container_id: String,
    /// Pod name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pod: String,
    /// Endpoint name (usually `eth0`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub endpoint: String,
    /// The pod's service account.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_account_name: String,
    /// Addresses of the endpoint, as CIDRs (`10.0.0.5/32`).
    #[serde(default, rename = "ipNetworks", skip_serializing_if = "Vec::is_empty")]
    pub ip_networks: Vec<String>,
    /// IPv4 gateway.
    #[serde(
        default,
        rename = "ipv4Gateway",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv4_gateway: Option<String>,
    /// IPv6 gateway.
    #[serde(
        default,
        rename = "ipv6Gateway",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv6_gateway: Option<String>,
    /// Floating IPs.
    #[serde(default, rename = "ipNATs", skip_serializing_if = "Vec::is_empty")]
    pub ip_nats: Vec<IPNAT>,
    /// Profiles that apply (e.g. `kns.<namespace>`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// The host-side interface (`cali...`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interface_name: String,
    /// The container-side MAC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Named ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<EndpointPort>,
    /// Source prefixes the workload may spoof.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_spoofed_source_prefixes: Vec<String>,
    /// Bandwidth and packet-rate limits, kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos_controls: Option<serde_json::Value>,
}

fn check_ports(errs: &mut Errors, ports: &[EndpointPort]) {
    for (i, p) in ports.iter().enumerate() {
        errs.check(
            format!("spec.ports[{i}].name"),
            validate::dns1123_label(&p.name),
        );
        if !p.protocol.supports_ports() {
            errs.add(
                format!("spec.ports[{i}].protocol"),
                "named ports must be TCP, UDP or SCTP",
            );
        }
        if let Some(h) = &p.host_ip {
            errs.check(
                format!("spec.ports[{i}].hostIP"),
                validate::ip(h).map(|_| ()),
            );
        }
    }
}

impl SpecImpl for WorkloadEndpointSpec {
    fn check(&self, _meta: &ObjectMeta, errs: &mut Errors) {
        if self.interface_name.is_empty() {
            errs.add("spec.interfaceName", "an interface name is required");
        } else {
            errs.check(
                "spec.interfaceName",
                validate::interface_name(&self.interface_name),
            );
        }
        if !self.node.is_empty() {
            errs.check("spec.node", validate::dns1123_subdomain(&self.node));
        }
        for (i, n) in self.ip_networks.iter().enumerate() {
            errs.check(
                format!("spec.ipNetworks[{i}]"),
                validate::cidr_or_ip(n).map(|_| ()),
            );
        }
        for (f, g) in [
            ("ipv4Gateway", &self.ipv4_gateway),
            ("ipv6Gateway", &self.ipv6_gateway),
        ] {
            if let Some(g) = g {
                errs.check(format!("spec.{f}"), validate::ip(g).map(|_| ()));
            }
        }
        for (i, n) in self.ip_nats.iter().enumerate() {
            errs.check(
                format!("spec.ipNATs[{i}].internalIP"),
                validate::ip(&n.internal_ip).map(|_| ()),
            );
            errs.check(
                format!("spec.ipNATs[{i}].externalIP"),
                validate::ip(&n.external_ip).map(|_| ()),
            );
        }
        if let Some(m) = &self.mac {
            errs.check("spec.mac", validate::mac(m));
        }
        for (i, p) in self.allow_spoofed_source_prefixes.iter().enumerate() {
            errs.check(
                format!("spec.allowSpoofedSourcePrefixes[{i}]"),
                validate::cidr_or_ip(p).map(|_| ()),
            );
        }
        check_ports(errs, &self.ports);
    }
}

/// A named port of a host endpoint (no host mapping).
pub type HostEndpointPort = EndpointPort;

/// Spec of a HostEndpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostEndpointSpec {
    /// The node the interface is on.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node: String,
    /// The interface (`*` for all of the host's interfaces).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interface_name: String,
    /// Addresses expected on the interface.
    #[serde(default, rename = "expectedIPs", skip_serializing_if = "Vec::is_empty")]
    pub expected_ips: Vec<String>,
    /// Profiles that apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// Named ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<HostEndpointPort>,
}

impl SpecImpl for HostEndpointSpec {
    fn check(&self, _meta: &ObjectMeta, errs: &mut Errors) {
        if self.node.is_empty() {
            errs.add("spec.node", "a node is required");
        } else {
            errs.check("spec.node", validate::dns1123_subdomain(&self.node));
        }
        if self.interface_name.is_empty() && self.expected_ips.is_empty() {
            errs.add("spec", "interfaceName or expectedIPs is required");
        }
        if !self.interface_name.is_empty() && self.interface_name != "*" {
            errs.check(
                "spec.interfaceName",
                validate::interface_name(&self.interface_name),
            );
        }
        for (i, a) in self.expected_ips.iter().enumerate() {
            errs.check(
                format!("spec.expectedIPs[{i}]"),
                validate::ip(a).map(|_| ()),
            );
        }
        for (i, p) in self.ports.iter().enumerate() {
            if p.host_port.is_some() || p.host_ip.is_some() {
                errs.add(
                    format!("spec.ports[{i}]"),
                    "hostPort and hostIP are only valid on workload endpoints",
                );
            }
        }
        check_ports(errs, &self.ports);
    }
}
