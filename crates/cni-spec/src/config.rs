//! The network configuration a plugin receives on stdin, with the spec's
//! well-known fields and Calico's plugin fields typed.
//!
//! Every field the types below do not name is kept, in order, in an
//! `extra` map at its level (top level, `ipam`, `policy`, `runtimeConfig`,
//! `args`, ...), so unknown fields are ignored but written back unchanged
//! by `serde_json::to_value`. `null` reads as absent everywhere.
//!
//! [`NetConf::parse`] checks what every plugin needs: valid JSON (else code
//! 6) with non-empty `cniVersion`, `name` and `type` and a network name of
//! the spec's form (else code 7). Whether `cniVersion` is supported is left
//! to [`NetConf::version`] (code 1), since the `VERSION` command and error
//! replies need the config even when it is not.

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::CniError;
use crate::result::{CniResult, Dns};
use crate::version::CniVersion;

/// A plugin's network configuration (one entry of a conflist, with the
/// list's `name` and `cniVersion` filled in by the runtime).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetConf {
    /// `cniVersion`: the spec version of this configuration (required).
    #[serde(
        rename = "cniVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cni_version: Option<String>,
    /// `name`: the network name (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `type`: the plugin executable's name (required).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub plugin_type: Option<String>,
    /// `mtu` (Calico): the MTU of the workload interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// `nodename` (Calico): the Calico node name to use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodename: Option<String>,
    /// `nodename_file` (Calico): a file holding the node name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodename_file: Option<String>,
    /// `ipam_lock_file` (Calico): the file whose lock serialises IPAM on
    /// this host (default `/var/run/calico/ipam.lock`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam_lock_file: Option<String>,
    /// `nodename_file_optional` (Calico): do not fail if `nodename_file` is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodename_file_optional: Option<bool>,
    /// `datastore_type` (Calico): `kubernetes`, `etcdv3`, or calico-rs's local store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datastore_type: Option<String>,
    /// `datastore_path` (calico-rs): the local datastore file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datastore_path: Option<String>,
    /// `etcd_endpoints` (Calico): comma-separated etcd URLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd_endpoints: Option<String>,
    /// `etcd_key_file` (Calico): client key for etcd TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd_key_file: Option<String>,
    /// `etcd_cert_file` (Calico): client certificate for etcd TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd_cert_file: Option<String>,
    /// `etcd_ca_cert_file` (Calico): CA certificate for etcd TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd_ca_cert_file: Option<String>,
    /// `log_level` (Calico): e.g. `info`, `debug`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    /// `log_file_path` (Calico): where the plugin logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_file_path: Option<String>,
    /// `policy` (Calico): the policy mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
    /// `kubernetes` (Calico): how to reach the Kubernetes API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<Kubernetes>,
    /// `feature_control` (Calico): optional features.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_control: Option<FeatureControl>,
    /// `container_settings` (Calico): settings applied inside the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_settings: Option<ContainerSettings>,
    /// `ipam`: the IPAM plugin and its settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam: Option<IpamConf>,
    /// `dns`: DNS settings for the network (spec well-known field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
    /// `runtimeConfig`: capability arguments from the runtime.
    #[serde(
        rename = "runtimeConfig",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub runtime_config: Option<RuntimeConfig>,
    /// `args`: extra arguments from the runtime (plugins ignore what they do not know).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Args>,
    /// `prevResult`: the previous plugin's (or previous `ADD`'s) result, raw;
    /// read it with [`NetConf::prev_result`].
    #[serde(
        rename = "prevResult",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub prev_result: Option<Value>,
    /// `cni.dev/valid-attachments` (spec 1.1.0, `GC`): attachments to keep.
    /// Read both spellings with [`NetConf::gc_attachments`].
    #[serde(
        rename = "cni.dev/valid-attachments",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub valid_attachments: Option<Vec<GcAttachment>>,
    /// Every other top-level field, kept as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `ipam` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IpamConf {
    /// `type`: the IPAM plugin executable, e.g. `calico-ipam` or `host-local`.
    #[serde(rename = "type", default, deserialize_with = "null_default")]
    pub ipam_type: String,
    /// `assign_ipv4`: Calico writes the strings `"true"`/`"false"`; booleans
    /// are accepted too. Written back as a string. See [`IpamConf::assign_ipv4`].
    #[serde(
        default,
        deserialize_with = "de_flag",
        serialize_with = "ser_flag",
        skip_serializing_if = "Option::is_none"
    )]
    pub assign_ipv4: Option<bool>,
    /// `assign_ipv6`: as `assign_ipv4`. See [`IpamConf::assign_ipv6`].
    #[serde(
        default,
        deserialize_with = "de_flag",
        serialize_with = "ser_flag",
        skip_serializing_if = "Option::is_none"
    )]
    pub assign_ipv6: Option<bool>,
    /// `ipv4_pools`: IPv4 pools (names or CIDRs) to allocate from.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ipv4_pools: Vec<String>,
    /// `ipv6_pools`: IPv6 pools (names or CIDRs) to allocate from.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ipv6_pools: Vec<String>,
    /// `subnet`: host-local style subnet (Calico's `usePodCidr` compatibility).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    /// Every other `ipam` field, kept as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl IpamConf {
    /// Whether to assign an IPv4 address: `assign_ipv4`, default true.
    pub fn assign_ipv4(&self) -> bool {
        self.assign_ipv4.unwrap_or(true)
    }

    /// Whether to assign an IPv6 address: `assign_ipv6`, default false.
    pub fn assign_ipv6(&self) -> bool {
        self.assign_ipv6.unwrap_or(false)
    }
}

/// Calico's `policy` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// `type`: the policy mode, e.g. `k8s`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub policy_type: Option<String>,
    /// `k8s_api_root` (legacy): the Kubernetes API URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k8s_api_root: Option<String>,
    /// `k8s_auth_token` (legacy): a bearer token for the Kubernetes API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k8s_auth_token: Option<String>,
    /// Every other `policy` field, kept as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Calico's `kubernetes` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Kubernetes {
    /// `kubeconfig`: path of the kubeconfig file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<String>,
    /// `k8s_api_root`: the Kubernetes API URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k8s_api_root: Option<String>,
    /// `node_name`: the Kubernetes node name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// Every other `kubernetes` field, kept as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Calico's `feature_control` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeatureControl {
    /// `ip_addrs_no_ipam`: allow `cni.projectcalico.org/ipAddrsNoIpam`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub ip_addrs_no_ipam: bool,
    /// `floating_ips`: allow `cni.projectcalico.org/floatingIPs`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub floating_ips: bool,
    /// Every other `feature_control` field, kept as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Calico's `container_settings` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerSettings {
    /// `allow_ip_forwarding`: enable IP forwarding inside the container.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub allow_ip_forwarding: bool,
    /// Every other `container_settings` field, kept as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `runtimeConfig` section: capability arguments (CNI CONVENTIONS.md).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuntimeConfig {
    /// `ips` capability: requested addresses (CIDR or plain IP).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ips: Vec<String>,
    /// `mac` capability: requested MAC address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// `portMappings` capability.
    #[serde(
        rename = "portMappings",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub port_mappings: Vec<PortMapping>,
    /// `bandwidth` capability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<Bandwidth>,
    /// `dns` capability (kubelet's DNS settings; note the different key names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<RuntimeDns>,
    /// `io.kubernetes.cri.pod-annotations` capability: the pod's annotations.
    #[serde(
        rename = "io.kubernetes.cri.pod-annotations",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub pod_annotations: BTreeMap<String, String>,
    /// Every other capability, kept as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One `portMappings` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// `hostPort`.
    #[serde(rename = "hostPort", default)]
    pub host_port: i32,
    /// `containerPort`.
    #[serde(rename = "containerPort", default)]
    pub container_port: i32,
    /// `protocol`: `tcp`, `udp` or `sctp`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub protocol: String,
    /// `hostIP`: the host address to bind, if any.
    #[serde(rename = "hostIP", default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
}

/// The `bandwidth` capability (bits per second, burst in bits).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bandwidth {
    /// `ingressRate`.
    #[serde(
        rename = "ingressRate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ingress_rate: Option<u64>,
    /// `ingressBurst`.
    #[serde(
        rename = "ingressBurst",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ingress_burst: Option<u64>,
    /// `egressRate`.
    #[serde(
        rename = "egressRate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub egress_rate: Option<u64>,
    /// `egressBurst`.
    #[serde(
        rename = "egressBurst",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub egress_burst: Option<u64>,
}

/// The `dns` capability as kubelet passes it in `runtimeConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeDns {
    /// `servers`: nameserver addresses.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub servers: Vec<String>,
    /// `searches`: search domains.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub searches: Vec<String>,
    /// `options`: resolver options.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub options: Vec<String>,
    /// `domain`: the local domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

/// The `args` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Args {
    /// `args.cni`: the conventional per-container arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cni: Option<CniArgs>,
    /// Every other `args` entry (e.g. `labels`, `org.apache.mesos`), kept as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `args.cni` (CNI CONVENTIONS.md).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CniArgs {
    /// `ips`: requested addresses.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ips: Vec<String>,
    /// `mac`: requested MAC address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Every other `args.cni` entry, kept as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One attachment the runtime still uses, listed for `GC` (spec 1.1.0).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcAttachment {
    /// `containerID`.
    #[serde(rename = "containerID", default, deserialize_with = "null_default")]
    pub container_id: String,
    /// `ifname`.
    #[serde(default, deserialize_with = "null_default")]
    pub ifname: String,
}

/// The spelling of the `GC` attachment list used by some libcni versions.
const GC_ATTACHMENTS_ALT: &str = "cni.dev/attachments";

impl NetConf {
    /// Parses and checks a network configuration (see the module docs).
    ///
    /// Errors: code 6 when `bytes` is not JSON of the expected shape (a
    /// known field of the wrong type included); code 7 when `cniVersion`,
    /// `name` or `type` is missing or empty (the message names the field),
    /// or the network name has characters the spec forbids.
    pub fn parse(bytes: &[u8]) -> Result<NetConf, CniError> {
        let conf: NetConf = serde_json::from_slice(bytes).map_err(|e| {
            CniError::decoding_failure(format!("failed to decode network config: {e}"))
        })?;
        for (field, value) in [
            ("cniVersion", &conf.cni_version),
            ("name", &conf.name),
            ("type", &conf.plugin_type),
        ] {
            if value.as_deref().unwrap_or_default().is_empty() {
                return Err(CniError::invalid_network_config(format!(
                    "network config is missing required field {field:?}"
                )));
            }
        }
        validate_network_name(conf.network_name())?;
        Ok(conf)
    }

    /// The configuration's spec version; code 1 if it is not supported.
    pub fn version(&self) -> Result<CniVersion, CniError> {
        CniVersion::parse(self.cni_version.as_deref().unwrap_or_default())
    }

    /// The network name, empty if absent.
    pub fn network_name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }

    /// The `ipam` section, or an empty one (so the IPAM defaults apply).
    pub fn ipam_or_default(&self) -> IpamConf {
        self.ipam.clone().unwrap_or_default()
    }

    /// Reads `prevResult` (any supported version); `Ok(None)` when absent.
    pub fn prev_result(&self) -> Result<Option<CniResult>, CniError> {
        self.prev_result
            .as_ref()
            .map(CniResult::from_json)
            .transpose()
    }

    /// The `GC` valid-attachment list: `cni.dev/valid-attachments`, else the
    /// `cni.dev/attachments` spelling some libcni versions also (or only)
    /// send; `None` when neither is present. A malformed list is code 6.
    pub fn gc_attachments(&self) -> Result<Option<Vec<GcAttachment>>, CniError> {
        if let Some(list) = &self.valid_attachments {
            return Ok(Some(list.clone()));
        }
        match self.extra.get(GC_ATTACHMENTS_ALT) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => Vec::<GcAttachment>::deserialize(v).map(Some).map_err(|e| {
                CniError::decoding_failure(format!("failed to decode {GC_ATTACHMENTS_ALT}: {e}"))
            }),
        }
    }

    /// The configuration as JSON, every kept unknown field included.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Checks a network name against the spec: starts with an ASCII
/// alphanumeric, then only alphanumerics, `_`, `.` and `-`. Code 7 otherwise.
pub fn validate_network_name(name: &str) -> Result<(), CniError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(
            CniError::invalid_network_config("invalid characters found in network name")
                .with_details(format!("name {name:?}")),
        )
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Reads `null` (or absence, with `#[serde(default)]`) as `T::default()`.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Reads a boolean written as a JSON boolean or as the string `"true"` /
/// `"false"` (ASCII case-insensitive).
fn de_flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(other) => Err(D::Error::custom(format!(
            "invalid boolean {other}: want \"true\" or \"false\""
        ))),
    }
}

/// Writes a flag as Calico does: the string `"true"` or `"false"`.
fn ser_flag<S: Serializer>(v: &Option<bool>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(true) => s.serialize_str("true"),
        Some(false) => s.serialize_str("false"),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests;
