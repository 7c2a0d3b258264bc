//! Start-up, as Calico's calico-node does it before its daemons run:
//! register this host as a Node, create the default pools if the cluster
//! has none, give the node a VXLAN tunnel address when a VXLAN pool covers
//! it, and leave `nodename` and `mtu` for the CNI plugin.

use std::net::IpAddr;
use std::path::Path;

use calico_api::{Kind, Resource, ResourceKey};
use calico_datastore::{Client, ClientError};
use calico_ipam::{AssignArgs, Ipam, Use};
use ipnet::IpNet;
use serde_json::{Value, json};

use crate::autodetect;
use crate::config::{AddrSetting, Backend, DefaultPool, NodeConfig};

/// VXLAN's encapsulation overhead (IPv4 outer header).
pub const VXLAN_OVERHEAD: u32 = 50;
/// IP-in-IP's overhead.
pub const IPIP_OVERHEAD: u32 = 20;

/// A start-up failure, with what to do about it in the message.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("datastore: {0}")]
    Datastore(#[from] ClientError),
    #[error("IPAM: {0}")]
    Ipam(#[from] calico_ipam::IpamError),
    #[error("{0}")]
    Address(String),
    #[error("cannot write {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
}

/// What start-up decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub ipv4: Option<IpNet>,
    pub ipv6: Option<IpNet>,
    pub vxlan_tunnel: Option<IpAddr>,
    pub vxlan_mac: Option<String>,
    pub mtu: u32,
    /// Pools this start created.
    pub created_pools: Vec<String>,
}

fn node_key(name: &str) -> ResourceKey {
    ResourceKey {
        kind: Kind::Node,
        namespace: None,
        name: name.to_string(),
    }
}

fn get_node(client: &Client, name: &str) -> Result<Option<Value>, ClientError> {
    match client.get(&node_key(name)) {
        Ok(r) => Ok(Some(r.to_json())),
        Err(ClientError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

fn address(
    setting: &AddrSetting,
    existing: Option<&str>,
    method: &crate::config::Autodetect,
    v6: bool,
) -> Result<Option<IpNet>, StartupError> {
    let detect = || {
        autodetect::detect(method, v6)
            .map_err(StartupError::Address)
            .and_then(|a| {
                a.ok_or_else(|| {
                    StartupError::Address(format!(
                        "no IPv{} address found by {method:?}: set {} or change {}",
                        if v6 { 6 } else { 4 },
                        if v6 { "IP6" } else { "IP" },
                        if v6 {
                            "IP6_AUTODETECTION_METHOD"
                        } else {
                            "IP_AUTODETECTION_METHOD"
                        }
                    ))
                })
            })
    };
    match setting {
        AddrSetting::None => Ok(None),
        AddrSetting::Fixed(n) => Ok(Some(*n)),
        AddrSetting::Autodetect => detect().map(Some),
        AddrSetting::Unset => match existing.and_then(|e| e.parse::<IpNet>().ok()) {
            Some(n) => Ok(Some(n)),
            None if v6 => Ok(None),
            None => detect().map(Some),
        },
    }
}

fn pool_resource(name: &str, p: &DefaultPool) -> Result<Resource, ClientError> {
    let v = json!({
        "apiVersion": "projectcalico.org/v3",
        "kind": "IPPool",
        "metadata": {"name": name},
        "spec": {
            "cidr": p.cidr.to_string(),
            "blockSize": p.block_size,
            "ipipMode": p.ipip_mode,
            "vxlanMode": p.vxlan_mode,
            "natOutgoing": p.nat_outgoing,
            "nodeSelector": p.node_selector,
            "disableBGPExport": p.disable_bgp_export,
        },
    });
    calico_api::decode_value(v).map_err(ClientError::Rejected)
}

/// Creates the default pools when the cluster has no pool at all.
fn default_pools(client: &Client, cfg: &NodeConfig) -> Result<Vec<String>, ClientError> {
    let (pools, _) = client.list(Kind::IPPool, None)?;
    if !pools.is_empty() {
        return Ok(Vec::new());
    }
    let mut made = Vec::new();
    for (name, p) in [
        ("default-ipv4-ippool", &cfg.pool_v4),
        ("default-ipv6-ippool", &cfg.pool_v6),
    ] {
        if let Some(p) = p {
            match client.create(pool_resource(name, p)?) {
                Ok(_) => made.push(name.to_string()),
                // Another node created it first.
                Err(ClientError::AlreadyExists(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(made)
}

/// The enabled IPv4 VXLAN pools whose nodeSelector matches `labels` and
/// whose allowedUses admit tunnel addresses (as Calico's allocateip; the
/// allocator refuses a requested pool that does not allow the use), and
/// whether any enabled pool uses VXLAN / IPIP (for the MTU).
fn vxlan_pools(
    client: &Client,
    labels: &std::collections::BTreeMap<String, String>,
) -> Result<(Vec<String>, bool, bool), ClientError> {
    let (pools, _) = client.list(Kind::IPPool, None)?;
    let (mut mine, mut any_vxlan, mut any_ipip) = (Vec::new(), false, false);
    for r in &pools {
        let Resource::IPPool(p) = r else { continue };
        if p.spec.disabled {
            continue;
        }
        let vx = p.spec.vxlan_mode.as_deref().is_some_and(|m| m != "Never");
        let ip = p.spec.ipip_mode.as_deref().is_some_and(|m| m != "Never");
        any_vxlan |= vx;
        any_ipip |= ip;
        let is_v4 = p
            .spec
            .cidr
            .parse::<IpNet>()
            .is_ok_and(|n| n.addr().is_ipv4());
        let selected = calico_api::selector::Selector::parse(
            p.spec.node_selector.as_deref().unwrap_or("all()"),
        )
        .is_ok_and(|s| s.matches(labels));
        let for_tunnels = p
            .spec
            .allowed_uses
            .as_ref()
            .is_none_or(|u| u.is_empty() || u.iter().any(|x| x == "Tunnel"));
        if vx && is_v4 && selected && for_tunnels {
            mine.push(p.metadata.name.clone());
        }
    }
    Ok((mine, any_vxlan, any_ipip))
}

fn random_mac() -> String {
    let mut b = [0u8; 6];
    if let Ok(bytes) = std::fs::read("/proc/sys/kernel/random/uuid") {
        // 32 hex digits of randomness; take 12.
        let hex: String = String::from_utf8_lossy(&bytes)
            .chars()
            .filter(|c| c.is_ascii_hexdigit())
            .collect();
        for (i, slot) in b.iter_mut().enumerate() {
            *slot = u8::from_str_radix(hex.get(i * 2..i * 2 + 2).unwrap_or("00"), 16).unwrap_or(0);
        }
    }
    b[0] = (b[0] & 0xfe) | 0x02; // unicast, locally administered
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The MTU of the interface carrying `addr`, if found.
fn underlay_mtu(addr: Option<IpNet>) -> Option<u32> {
    let mut nl = calico_dataplane::Netlink::open().ok()?;
    nl.mtu_of_address(addr?.addr()).ok().flatten()
}

/// Runs start-up against `client`.
pub fn run(cfg: &NodeConfig, client: &Client) -> Result<Registered, StartupError> {
    let existing = get_node(client, &cfg.nodename)?;
    let cur = |path: &[&str]| -> Option<String> {
        let mut v = existing.as_ref()?;
        for p in path {
            v = v.get(p)?;
        }
        v.as_str().map(str::to_string)
    };
    let ipv4 = address(
        &cfg.ip,
        cur(&["spec", "bgp", "ipv4Address"]).as_deref(),
        &cfg.autodetect_v4,
        false,
    )?;
    let ipv6 = address(
        &cfg.ip6,
        cur(&["spec", "bgp", "ipv6Address"]).as_deref(),
        &cfg.autodetect_v6,
        true,
    )?;

    let created_pools = default_pools(client, cfg)?;

    // The Node as it should be: existing fields kept, ours set.
    let mut node = existing.clone().unwrap_or_else(|| {
        json!({"apiVersion": "projectcalico.org/v3", "kind": "Node",
               "metadata": {"name": cfg.nodename}, "spec": {}})
    });
    if let Some(m) = node.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
        let labels = m.entry("labels").or_insert_with(|| json!({}));
        if let Some(l) = labels.as_object_mut() {
            l.insert("kubernetes.io/hostname".into(), json!(cfg.nodename));
        }
    }
    let labels: std::collections::BTreeMap<String, String> = node["metadata"]["labels"]
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let spec = node
        .get_mut("spec")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| StartupError::Address("stored Node has no spec".into()))?;
    let mut bgp = spec.get("bgp").cloned().unwrap_or_else(|| json!({}));
    let set = |bgp: &mut Value, k: &str, v: Option<String>| {
        if let Some(o) = bgp.as_object_mut() {
            match v {
                Some(v) => o.insert(k.into(), json!(v)),
                None => o.remove(k),
            };
        }
    };
    set(&mut bgp, "ipv4Address", ipv4.map(|n| n.to_string()));
    set(&mut bgp, "ipv6Address", ipv6.map(|n| n.to_string()));
    if let Some(asn) = cfg.as_number {
        set(&mut bgp, "asNumber", Some(asn.to_string()));
    }
    if cfg.backend == Backend::Bird || bgp.as_object().is_some_and(|o| !o.is_empty()) {
        spec.insert("bgp".into(), bgp);
    }
    let mut addresses = Vec::new();
    for a in ipv4.iter().chain(ipv6.iter()) {
        addresses.push(json!({"address": a.to_string(), "type": "CalicoNodeIP"}));
    }
    spec.insert("addresses".into(), json!(addresses));

    // VXLAN tunnel address (handle vxlan-tunnel-addr-<node>, allowedUses Tunnel).
    let (vx_pools, any_vxlan, any_ipip) = vxlan_pools(client, &labels)?;
    let ipam = Ipam::new(client.store().clone());
    let handle = format!("vxlan-tunnel-addr-{}", cfg.nodename);
    let (mut tunnel, mut mac) = (None, None);
    if !vx_pools.is_empty() && cfg.backend != Backend::None {
        let held = ipam.ips_by_handle(&handle)?;
        let addr = match held.iter().find(|a| a.is_ipv4()) {
            Some(a) => *a,
            None => {
                let got = ipam.auto_assign(&AssignArgs {
                    handle: handle.clone(),
                    node: cfg.nodename.clone(),
                    num_v4: 1,
                    num_v6: 0,
                    v4_pools: vx_pools.clone(),
                    v6_pools: Vec::new(),
                    attrs: [
                        ("node".to_string(), cfg.nodename.clone()),
                        ("type".to_string(), "vxlanTunnelAddress".to_string()),
                    ]
                    .into_iter()
                    .collect(),
                    use_: Use::Tunnel,
                })?;
                got.v4.first().copied().ok_or_else(|| {
                    StartupError::Address("IPAM gave no VXLAN tunnel address".into())
                })?
            }
        };
        spec.insert("ipv4VXLANTunnelAddr".into(), json!(addr.to_string()));
        let m = spec
            .get("vxlanTunnelMACAddr")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(random_mac);
        spec.insert("vxlanTunnelMACAddr".into(), json!(m));
        tunnel = Some(addr);
        mac = Some(m);
    } else {
        // No VXLAN pool covers this node any more: give the address back.
        ipam.release_by_handle(&handle)?;
        spec.remove("ipv4VXLANTunnelAddr");
        spec.remove("vxlanTunnelMACAddr");
    }

    let r = calico_api::decode_value(node).map_err(ClientError::Rejected)?;
    client.apply(r)?;

    // Files for the CNI plugin.
    let base = underlay_mtu(ipv4.or(ipv6)).unwrap_or(1500);
    let mtu = if any_vxlan {
        base.saturating_sub(VXLAN_OVERHEAD)
    } else if any_ipip {
        base.saturating_sub(IPIP_OVERHEAD)
    } else {
        base
    };
    write_file(&cfg.state_dir, "nodename", &cfg.nodename)?;
    write_file(&cfg.state_dir, "mtu", &mtu.to_string())?;
    Ok(Registered {
        ipv4,
        ipv6,
        vxlan_tunnel: tunnel,
        vxlan_mac: mac,
        mtu,
        created_pools,
    })
}

fn write_file(dir: &str, name: &str, content: &str) -> Result<(), StartupError> {
    let path = Path::new(dir).join(name);
    let fail = |source| StartupError::File {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    // Write then rename, so the plugin never reads half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content).map_err(fail)?;
    std::fs::rename(&tmp, &path).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VXLAN pool that does not allow Tunnel addresses is not asked for
    /// the node's tunnel address (the allocator would refuse it).
    #[test]
    fn vxlan_pools_only_those_allowing_tunnels() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = calico_datastore::local::LocalStore::open(dir.path().join("ds.db"))
            .unwrap_or_else(|e| panic!("{e}"));
        let client = Client::new(std::sync::Arc::new(store));
        let pools = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: pods}\nspec: {cidr: 10.30.0.0/16, vxlanMode: Always, allowedUses: [Workload]}\n---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: tunnels}\nspec: {cidr: 10.31.0.0/16, vxlanMode: Always}\n";
        for r in calico_api::decode_documents(pools).unwrap_or_else(|e| panic!("{e}")) {
            client
                .apply(r.unwrap_or_else(|e| panic!("{e}")))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let (mine, any_vxlan, _) =
            vxlan_pools(&client, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(mine, vec!["tunnels".to_string()]);
        assert!(any_vxlan);
    }
}
