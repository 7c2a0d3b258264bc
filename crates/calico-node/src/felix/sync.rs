//! Reading the [`Snapshot`] the dataplane is computed from. A malformed
//! resource or block is logged and skipped; the rest keeps working.

use std::net::Ipv4Addr;

use calico_api::{Kind, Resource};
use calico_datastore::{Client, ClientError, Revision};
use ipnet::IpNet;

use super::model::{BlockInfo, Encap, NodeInfo, PoolInfo, Settings, Snapshot, WorkloadInfo};

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
            Resource::Node(n) => Some(NodeInfo {
                name: n.metadata.name.clone(),
                ipv4: n
                    .spec
                    .bgp
                    .as_ref()
                    .and_then(|b| b.ipv4_address.as_deref())
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
            }),
            _ => None,
        })
        .collect();
    let (pools, bad, _) = client.list_lenient(Kind::IPPool, None)?;
    skipped.extend(bad);
    let pools = pools
        .iter()
        .filter_map(|r| match r {
            Resource::IPPool(p) => Some(PoolInfo {
                cidr: p.spec.cidr.parse().ok()?,
                vxlan: Encap::parse(p.spec.vxlan_mode.as_deref()),
                ipip: Encap::parse(p.spec.ipip_mode.as_deref()),
                nat_outgoing: p.spec.nat_outgoing,
                disabled: p.spec.disabled,
            }),
            _ => None,
        })
        .collect();
    let workloads = weps
        .iter()
        .filter_map(|r| match r {
            Resource::WorkloadEndpoint(w) if w.spec.node == me => Some(WorkloadInfo {
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
                    .filter_map(|n| {
                        Some((n.internal_ip.parse().ok()?, n.external_ip.parse().ok()?))
                    })
                    .collect(),
                allow_spoof: w
                    .spec
                    .allow_spoofed_source_prefixes
                    .iter()
                    .filter_map(|n| n.parse::<IpNet>().ok())
                    .collect(),
            }),
            _ => None,
        })
        .collect();
    let (kvs, rev) = calico_ipam::list_blocks(client.store().as_ref())?;
    let mut blocks = Vec::new();
    for kv in kvs {
        match serde_json::from_slice::<calico_ipam::Block>(&kv.value) {
            Ok(b) => match b.cidr.parse::<IpNet>() {
                Ok(cidr) => blocks.push(BlockInfo {
                    cidr,
                    node: b
                        .affinity
                        .as_deref()
                        .and_then(|a| a.strip_prefix("host:"))
                        .map(str::to_string),
                }),
                Err(_) => skipped.push(format!("block {}: bad CIDR {:?}", kv.key, b.cidr)),
            },
            Err(e) => skipped.push(format!("block {}: {e}", kv.key)),
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
