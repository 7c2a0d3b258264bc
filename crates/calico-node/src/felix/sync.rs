//! Reading the [`Snapshot`] the dataplane is computed from. A malformed
//! resource or block is logged and skipped; the rest keeps working.
//! Workload endpoints pass Felix's validation filter first ([`admit`]).

use std::net::Ipv4Addr;

use calico_api::{Kind, Resource};
use calico_datastore::{Client, ClientError, Revision};
use ipnet::IpNet;

use super::model::{BlockInfo, Encap, NodeInfo, PoolInfo, Settings, Snapshot, WorkloadInfo};

/// Felix's validation filter for workload endpoints: one that fails
/// Calico's validation (an interface name nft cannot carry, say, written
/// by something that skipped validation), or that asks for
/// `allowSpoofedSourcePrefixes` while FelixConfiguration's
/// `workloadSourceSpoofing` is not `Any`, is treated as missing, as Felix
/// does. Returns the endpoints kept and, for each one dropped, why.
pub fn admit(weps: Vec<Resource>, spoofing_allowed: bool) -> (Vec<Resource>, Vec<String>) {
    let mut why = Vec::new();
    let kept = weps
        .into_iter()
        .filter(|r| {
            let Resource::WorkloadEndpoint(w) = r else {
                return true;
            };
            let name = || {
                format!(
                    "WorkloadEndpoint {}/{}",
                    w.metadata.namespace.as_deref().unwrap_or(""),
                    w.metadata.name
                )
            };
            if let Err(e) = r.validate() {
                why.push(format!("{}: {e}", name()));
                false
            } else if !w.spec.allow_spoofed_source_prefixes.is_empty() && !spoofing_allowed {
                why.push(format!(
                    "{}: allowSpoofedSourcePrefixes needs FelixConfiguration workloadSourceSpoofing: Any",
                    name()
                ));
                false
            } else {
                true
            }
        })
        .collect();
    (kept, why)
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
            Resource::Node(n) => Some(NodeInfo {
                name: n.metadata.name.clone(),
                ipv4: n
                    .spec
                    .bgp
                    .as_ref()
                    .and_then(|b| b.ipv4_address.as_deref())
                    .and_then(|a| a.parse().ok()),
                ipv6: n
                    .spec
                    .bgp
                    .as_ref()
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
                openstack: w.spec.orchestrator.eq_ignore_ascii_case("openstack"),
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
