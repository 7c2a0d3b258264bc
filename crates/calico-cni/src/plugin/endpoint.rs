//! The WorkloadEndpoint the plugin records for each pod interface, and the
//! network Profile it creates for non-Kubernetes workloads (as Calico).

use std::net::IpAddr;

use calico_api::{Kind, Resource, ResourceKey};
use calico_datastore::{Client, ClientError};
use cni_spec::error::CniError;
use serde_json::{Value, json};

use super::identity::Workload;

fn client_error(e: ClientError) -> CniError {
    match e {
        ClientError::Store(s) => crate::store_error(s),
        other => CniError::io_failure(other.to_string()),
    }
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac_string(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The endpoint's key.
pub fn key(w: &Workload) -> ResourceKey {
    ResourceKey {
        kind: Kind::WorkloadEndpoint,
        namespace: Some(w.namespace.clone()),
        name: w.endpoint_name(),
    }
}

/// What the plugin writes for `w`.
pub struct EndpointData<'a> {
    pub host_veth: &'a str,
    pub mac: Option<[u8; 6]>,
    pub ips: &'a [IpAddr],
    /// (internal, external) pairs from `floatingIPs`.
    pub nats: &'a [(IpAddr, IpAddr)],
    /// The network name (the profile of non-Kubernetes workloads).
    pub network: &'a str,
    /// The pod as the Kubernetes API knows it, when read.
    pub pod: Option<&'a crate::k8s::PodInfo>,
}

/// Builds the WorkloadEndpoint resource.
pub fn build(w: &Workload, d: &EndpointData<'_>) -> Result<Resource, CniError> {
    let nets: Vec<String> = d
        .ips
        .iter()
        .map(|ip| format!("{ip}/{}", if ip.is_ipv4() { 32 } else { 128 }))
        .collect();
    let nats: Vec<Value> = d
        .nats
        .iter()
        .map(|(i, e)| json!({"internalIP": i.to_string(), "externalIP": e.to_string()}))
        .collect();
    let sa = d.pod.and_then(|p| p.service_account.clone());
    let profiles = if w.is_k8s() {
        let mut p = vec![format!("kns.{}", w.namespace)];
        if let Some(sa) = &sa {
            p.push(format!("ksa.{}.{sa}", w.namespace));
        }
        p
    } else {
        vec![d.network.to_string()]
    };
    let mut labels = d.pod.map(|p| p.labels.clone()).unwrap_or_default();
    labels.insert("projectcalico.org/namespace".into(), w.namespace.clone());
    labels.insert(
        "projectcalico.org/orchestrator".into(),
        w.orchestrator.into(),
    );
    if let Some(sa) = &sa {
        labels.insert("projectcalico.org/serviceaccount".into(), sa.clone());
    }
    let mut spec = json!({
        "orchestrator": w.orchestrator,
        "node": w.node,
        "containerID": w.container_id,
        "endpoint": w.endpoint,
        "interfaceName": d.host_veth,
        "ipNetworks": nets,
        "profiles": profiles,
    });
    if w.is_k8s() {
        spec["pod"] = json!(w.pod);
    } else {
        spec["workload"] = json!(w.workload);
    }
    if let Some(mac) = d.mac {
        spec["mac"] = json!(mac_string(mac));
    }
    if let Some(sa) = &sa {
        spec["serviceAccountName"] = json!(sa);
    }
    if let Some(p) = d.pod
        && !p.ports.is_empty()
    {
        spec["ports"] = json!(
            p.ports
                .iter()
                .map(
                    |port| json!({"name": port.name, "protocol": port.protocol, "port": port.port})
                )
                .collect::<Vec<_>>()
        );
    }
    if !nats.is_empty() {
        spec["ipNATs"] = json!(nats);
    }
    let v = json!({
        "apiVersion": "projectcalico.org/v3",
        "kind": "WorkloadEndpoint",
        "metadata": {
            "name": w.endpoint_name(),
            "namespace": w.namespace,
            "labels": labels,
        },
        "spec": spec,
    });
    calico_api::decode_value(v)
        .map_err(|e| CniError::new(100, format!("workload endpoint: {e}"), ""))
}

/// Creates or replaces the endpoint.
pub fn write(client: &Client, r: Resource) -> Result<(), CniError> {
    client.apply(r).map(|_| ()).map_err(client_error)
}

/// Reads the endpoint, `None` when absent.
pub fn get(client: &Client, w: &Workload) -> Result<Option<Resource>, CniError> {
    match client.get(&key(w)) {
        Ok(r) => Ok(Some(r)),
        Err(ClientError::NotFound(_)) => Ok(None),
        Err(e) => Err(client_error(e)),
    }
}

/// Whose the pod interface's endpoint is, as DEL found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// There is none.
    Nobody,
    /// This container's (or one that names no container): deleted.
    This,
    /// Another container's (the sandbox that replaced this one): kept.
    Other(String),
}

/// Deletes the endpoint if it belongs to this container (a late DEL of an
/// old container must not remove the endpoint of its replacement, as
/// Calico's `cmdDelK8s`), and says whose it was. The delete is conditional
/// on the version read, so an ADD that rewrites the endpoint in between
/// is seen (and the check done again).
pub fn delete(client: &Client, w: &Workload) -> Result<Holder, CniError> {
    let mut attempts = 5;
    loop {
        let Some(r) = get(client, w)? else {
            return Ok(Holder::Nobody);
        };
        if let Resource::WorkloadEndpoint(ep) = &r
            && !ep.spec.container_id.is_empty()
            && ep.spec.container_id != w.container_id
        {
            return Ok(Holder::Other(ep.spec.container_id.clone()));
        }
        match client.delete(&key(w), r.metadata().resource_version.as_deref()) {
            Ok(_) | Err(ClientError::NotFound(_)) => return Ok(Holder::This),
            Err(ClientError::Conflict { .. }) if attempts > 0 => attempts -= 1,
            Err(e) => return Err(client_error(e)),
        }
    }
}

/// For non-Kubernetes workloads Calico gives each network a Profile of its
/// name: members carry the label `<network>` and accept traffic from each
/// other; egress is open. Created once, never overwritten.
pub fn ensure_network_profile(client: &Client, network: &str) -> Result<(), CniError> {
    let key = ResourceKey {
        kind: Kind::Profile,
        namespace: None,
        name: network.to_string(),
    };
    match client.get(&key) {
        Ok(_) => return Ok(()),
        Err(ClientError::NotFound(_)) => {}
        Err(e) => return Err(client_error(e)),
    }
    let v = json!({
        "apiVersion": "projectcalico.org/v3",
        "kind": "Profile",
        "metadata": {"name": network},
        "spec": {
            "ingress": [{"action": "Allow", "source": {"selector": format!("has({network})")}}],
            "egress": [{"action": "Allow"}],
            "labelsToApply": {network: ""},
        },
    });
    let r = calico_api::decode_value(v).map_err(|e| {
        CniError::invalid_network_config(format!(
            "network name {network:?} cannot name a profile: {e}"
        ))
    })?;
    match client.create(r) {
        Ok(_) | Err(ClientError::AlreadyExists(_)) => Ok(()),
        Err(e) => Err(client_error(e)),
    }
}

/// The endpoint's addresses and container ID, for CHECK.
pub fn check(r: &Resource, w: &Workload, host_veth: &str, ips: &[IpAddr]) -> Vec<String> {
    let mut problems = Vec::new();
    let Resource::WorkloadEndpoint(ep) = r else {
        return vec!["the stored endpoint is not a WorkloadEndpoint".into()];
    };
    if ep.spec.container_id != w.container_id {
        problems.push(format!(
            "workload endpoint {} belongs to container {}",
            w.endpoint_name(),
            ep.spec.container_id
        ));
    }
    if ep.spec.interface_name != host_veth {
        problems.push(format!(
            "workload endpoint {} names interface {}, not {host_veth}",
            w.endpoint_name(),
            ep.spec.interface_name
        ));
    }
    for ip in ips {
        let net = format!("{ip}/{}", if ip.is_ipv4() { 32 } else { 128 });
        if !ep.spec.ip_networks.contains(&net) {
            problems.push(format!(
                "workload endpoint {} lacks {net}",
                w.endpoint_name()
            ));
        }
    }
    problems
}
