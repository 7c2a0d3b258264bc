//! Reading the [`Snapshot`] the dataplane is computed from. A malformed
//! resource or block is logged and skipped; the rest keeps working.
//! Workload endpoints pass Felix's validation filter first ([`admit`]).

use std::net::Ipv4Addr;

use calico_api::meta::Object;
use calico_api::resources::{IPPoolSpec, NodeSpec, WorkloadEndpointSpec};
use calico_api::{Kind, Resource};
use calico_datastore::{Client, ClientError, KeyValue, Revision};
use ipnet::IpNet;

use super::model::{BlockInfo, NodeInfo, PoolInfo, Settings, Snapshot, WorkloadInfo};

/// Felix's validation filter for one workload endpoint: `Err` (why) when
/// it fails Calico's validation (an interface name nft cannot carry, say,
/// written by something that skipped validation), or asks for
/// `allowSpoofedSourcePrefixes` while FelixConfiguration's
/// `workloadSourceSpoofing` is not `Any`; Felix treats such an endpoint as
/// missing.
pub fn admit_one(r: &Resource, spoofing_allowed: bool) -> Result<(), String> {
    let Resource::WorkloadEndpoint(w) = r else {
        return Ok(());
    };
    let name = || {
        format!(
            "WorkloadEndpoint {}/{}",
            w.metadata.namespace.as_deref().unwrap_or(""),
            w.metadata.name
        )
    };
    if let Err(e) = r.validate() {
        Err(format!("{}: {e}", name()))
    } else if !w.spec.allow_spoofed_source_prefixes.is_empty() && !spoofing_allowed {
        Err(format!(
            "{}: allowSpoofedSourcePrefixes needs FelixConfiguration workloadSourceSpoofing: Any",
            name()
        ))
    } else {
        Ok(())
    }
}

/// [`admit_one`] over a list: the endpoints kept and, for each one
/// dropped, why.
pub fn admit(weps: Vec<Resource>, spoofing_allowed: bool) -> (Vec<Resource>, Vec<String>) {
    let mut why = Vec::new();
    let kept = weps
        .into_iter()
        .filter(|r| match admit_one(r, spoofing_allowed) {
            Ok(()) => true,
            Err(e) => {
                why.push(e);
                false
            }
        })
        .collect();
    (kept, why)
}

/// A Node as the dataplane needs it.
pub fn node_info(n: &Object<NodeSpec>) -> NodeInfo {
    let bgp = n.spec.bgp.as_ref();
    NodeInfo {
        name: n.metadata.name.clone(),
        ipv4: bgp
            .and_then(|b| b.ipv4_address.as_deref())
            .and_then(|a| a.parse().ok()),
        ipv6: bgp
            .and_then(|b| b.ipv6_address.as_deref())
            .and_then(|a| a.parse().ok()),
        vxlan_tunnel: n
            .spec
            .ipv4_vxlan_tunnel_addr
            .as_deref()
            .and_then(|a| a.parse::<Ipv4Addr>().ok()),
        vxlan_mac: n
            .spec
            .vxlan_tunnel_mac_addr
            .as_deref()
            .and_then(calico_api::validate::parse_mac),
    }
}

/// An IPPool as the dataplane needs it (none when its CIDR is bad).
pub fn pool_info(p: &Object<IPPoolSpec>) -> Option<PoolInfo> {
    Some(PoolInfo {
        cidr: p.spec.cidr.parse().ok()?,
        vxlan: p.spec.vxlan_mode(),
        ipip: p.spec.ipip_mode(),
        nat_outgoing: p.spec.nat_outgoing,
        disabled: p.spec.disabled,
    })
}

/// A local workload endpoint as the dataplane needs it.
pub fn workload_info(w: &Object<WorkloadEndpointSpec>) -> WorkloadInfo {
    WorkloadInfo {
        iface: w.spec.interface_name.clone(),
        nets: w
            .spec
            .ip_networks
            .iter()
            .filter_map(|n| n.parse::<IpNet>().ok())
            .collect(),
        nats: w
            .spec
            .ip_nats
            .iter()
            .filter_map(|n| Some((n.internal_ip.parse().ok()?, n.external_ip.parse().ok()?)))
            .collect(),
        allow_spoof: w
            .spec
            .allow_spoofed_source_prefixes
            .iter()
            .filter_map(|n| n.parse::<IpNet>().ok())
            .collect(),
        openstack: w.spec.orchestrator.eq_ignore_ascii_case("openstack"),
    }
}

/// A stored block as the dataplane needs it, or why it cannot be used.
pub fn block_info(kv: &KeyValue) -> Result<BlockInfo, String> {
    decode_block(kv).map(|(info, _)| info)
}

/// A stored block decoded: what the dataplane needs and the block itself.
pub fn decode_block(kv: &KeyValue) -> Result<(BlockInfo, calico_ipam::Block), String> {
    let b = serde_json::from_slice::<calico_ipam::Block>(&kv.value)
        .map_err(|e| format!("block {}: {e}", kv.key))?;
    let cidr = b
        .net()
        .ok_or_else(|| format!("block {}: bad CIDR {:?}", kv.key, b.cidr))?;
    let info = BlockInfo {
        cidr,
        node: b.affine_node().map(str::to_string),
    };
    Ok((info, b))
}

/// Reads everything; returns the snapshot, the store revision it reflects,
/// and what was skipped.
pub fn read(
    client: &Client,
    me: &str,
    settings: Settings,
    weps: &[Resource],
) -> Result<(Snapshot, Revision, Vec<String>), ClientError> {
    let mut skipped = Vec::new();
    let (nodes, bad, _) = client.list_lenient(Kind::Node, None)?;
    skipped.extend(bad);
    let nodes = nodes
        .iter()
        .filter_map(|r| match r {
            Resource::Node(n) => Some(node_info(n)),
            _ => None,
        })
        .collect();
    let (pools, bad, _) = client.list_lenient(Kind::IPPool, None)?;
    skipped.extend(bad);
    let pools = pools
        .iter()
        .filter_map(|r| match r {
            Resource::IPPool(p) => pool_info(p),
            _ => None,
        })
        .collect();
    let workloads = weps
        .iter()
        .filter_map(|r| match r {
            Resource::WorkloadEndpoint(w) if w.spec.node == me => Some(workload_info(w)),
            _ => None,
        })
        .collect();
    let (kvs, rev) = calico_ipam::list_blocks(client.store().as_ref())?;
    let mut blocks = Vec::new();
    for kv in kvs {
        match block_info(&kv) {
            Ok(b) => blocks.push(b),
            Err(e) => skipped.push(e),
        }
    }
    Ok((
        Snapshot {
            me: me.to_string(),
            nodes,
            blocks,
            pools,
            workloads,
            settings,
        },
        rev,
        skipped,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wep(name: &str, iface: &str, spoof: &[&str]) -> Resource {
        calico_api::decode_value(serde_json::json!({
            "apiVersion": "projectcalico.org/v3", "kind": "WorkloadEndpoint",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"node": "n1", "interfaceName": iface, "ipNetworks": ["10.0.0.1/32"],
                     "allowSpoofedSourcePrefixes": spoof}}))
        .unwrap()
    }

    #[test]
    fn felix_validation_filter() {
        let weps = || {
            vec![
                wep("plain", "cali1", &[]),
                wep("spoofs", "cali2", &["192.168.0.0/24"]),
                wep("quoted", "cali\"3", &[]),
            ]
        };
        let names = |v: &[Resource]| -> Vec<String> {
            v.iter().map(|r| r.metadata().name.clone()).collect()
        };
        let (kept, why) = admit(weps(), false);
        assert_eq!(names(&kept), ["plain"]);
        assert!(why[0].contains("spoofs") && why[0].contains("workloadSourceSpoofing: Any"));
        assert!(why[1].contains("quoted") && why[1].contains("spec.interfaceName"));
        let (kept, why) = admit(weps(), true);
        assert_eq!(names(&kept), ["plain", "spoofs"]);
        assert_eq!(why.len(), 1);
    }
}
