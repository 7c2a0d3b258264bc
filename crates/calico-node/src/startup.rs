//! Start-up, as Calico's calico-node does it before its daemons run:
//! register this host as a Node, create the default pools if the cluster
//! has none, give the node a VXLAN tunnel address when a VXLAN pool covers
//! it, and leave `nodename` and `mtu` for the CNI plugin.
//!
//! First, as Calico's `EnsureInitialized`, the ClusterInformation `default`
//! ([`ensure_cluster_info`]): `calicoVersion` this build's, a random
//! `clusterGUID` (32 hex digits) kept once set, `datastoreReady: true` only
//! when unset (a datastore locked by `calicoctl datastore migrate lock`
//! stays locked), and the `CLUSTER_TYPE` entries added to `clusterType`.

use std::net::IpAddr;
use std::path::Path;

use calico_api::resources::ClusterInformationSpec;
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
            "ipipMode": p.ipip_mode.as_str(),
            "vxlanMode": p.vxlan_mode.as_str(),
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
        let vx = p.spec.vxlan_mode().enabled();
        let ip = p.spec.ipip_mode().enabled();
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
/// The version calico-node writes as `calicoVersion` (as `calicoctl
/// version` shows the client's).
pub const CALICO_VERSION: &str = concat!("v", env!("CARGO_PKG_VERSION"));

/// The ClusterInformation spec start-up should leave, given the stored one
/// (if any), or `None` when the stored one needs no change. As Calico's
/// `ensureClusterInformation`: the version set, a GUID made only when
/// there is none, `datastoreReady` set to true only when unset, and the
/// comma-separated `cluster_type` entries missing from `clusterType`
/// appended.
pub fn cluster_info_update(
    stored: Option<&ClusterInformationSpec>,
    version: &str,
    cluster_type: Option<&str>,
    guid: impl FnOnce() -> String,
) -> Option<ClusterInformationSpec> {
    let mut s = stored.cloned().unwrap_or_default();
    if !version.is_empty() {
        s.calico_version = Some(version.to_string());
    }
    if s.cluster_guid.as_deref().is_none_or(str::is_empty) {
        s.cluster_guid = Some(guid());
    }
    s.datastore_ready.get_or_insert(true);
    let wanted: Vec<&str> = cluster_type
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    if !wanted.is_empty() {
        let mut all: Vec<String> = s
            .cluster_type
            .as_deref()
            .unwrap_or("")
            .split(',')
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
        for t in wanted {
            if !all.iter().any(|a| a == t) {
                all.push(t.to_string());
            }
        }
        s.cluster_type = Some(all.join(","));
    }
    (stored != Some(&s)).then_some(s)
}

/// A new cluster GUID: 16 random bytes as 32 hex digits (a UUID's bytes,
/// as Calico makes it).
fn new_cluster_guid() -> Result<String, StartupError> {
    let text = std::fs::read_to_string("/proc/sys/kernel/random/uuid").map_err(|source| {
        StartupError::File {
            path: "/proc/sys/kernel/random/uuid".into(),
            source,
        }
    })?;
    let hex: String = text.chars().filter(char::is_ascii_hexdigit).collect();
    if hex.len() != 32 {
        return Err(StartupError::Address(format!(
            "/proc/sys/kernel/random/uuid gave {text:?}, not a UUID"
        )));
    }
    Ok(hex.to_ascii_lowercase())
}

/// Writes the ClusterInformation `default` as [`cluster_info_update`] says,
/// retrying when another node writes it at the same time.
pub fn ensure_cluster_info(
    client: &Client,
    version: &str,
    cluster_type: Option<&str>,
) -> Result<(), StartupError> {
    let key = ResourceKey {
        kind: Kind::ClusterInformation,
        namespace: None,
        name: "default".into(),
    };
    let mut last = None;
    for _ in 0..5 {
        let stored = match client.get(&key) {
            Ok(Resource::ClusterInformation(ci)) => Some(ci),
            Ok(_) => None,
            Err(ClientError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let guid = new_cluster_guid()?;
        let Some(spec) = cluster_info_update(
            stored.as_ref().map(|c| &c.spec),
            version,
            cluster_type,
            || guid,
        ) else {
            return Ok(());
        };
        let written = match stored {
            Some(mut ci) => {
                // Its resourceVersion kept: a concurrent change is a conflict.
                ci.spec = spec;
                client.update(Resource::ClusterInformation(ci))
            }
            None => {
                let mut r = Resource::empty(Kind::ClusterInformation, "default");
                if let Resource::ClusterInformation(ci) = &mut r {
                    ci.spec = spec;
                }
                client.create(r)
            }
        };
        match written {
            Ok(_) => return Ok(()),
            Err(e @ (ClientError::Conflict { .. } | ClientError::AlreadyExists(_))) => {
                last = Some(e)
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(last.map_or_else(
        || StartupError::Address("cannot write the ClusterInformation".into()),
        StartupError::from,
    ))
}

pub fn run(cfg: &NodeConfig, client: &Client) -> Result<Registered, StartupError> {
    let cluster_type = std::env::var("CLUSTER_TYPE").ok();
    ensure_cluster_info(client, CALICO_VERSION, cluster_type.as_deref())?;
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

    #[test]
    fn cluster_information_as_calico_ensures_it() {
        let guid = || "00112233445566778899aabbccddeeff".to_string();
        let made = cluster_info_update(None, "v1.0.0", Some("k8s,bgp"), guid).unwrap();
        assert_eq!(
            made,
            ClusterInformationSpec {
                cluster_guid: Some(guid()),
                cluster_type: Some("k8s,bgp".into()),
                calico_version: Some("v1.0.0".into()),
                datastore_ready: Some(true),
                variant: None,
            }
        );
        // Nothing to change: nothing written.
        assert_eq!(
            cluster_info_update(Some(&made), "v1.0.0", Some("bgp"), || unreachable!()),
            None
        );
        // A new version and type; the GUID kept, a lock kept.
        let mut locked = made.clone();
        locked.datastore_ready = Some(false);
        let up = cluster_info_update(
            Some(&locked),
            "v1.1.0",
            Some("typha, k8s"),
            || unreachable!(),
        )
        .unwrap();
        assert_eq!(up.calico_version.as_deref(), Some("v1.1.0"));
        assert_eq!(up.cluster_guid, made.cluster_guid);
        assert_eq!(up.datastore_ready, Some(false));
        assert_eq!(up.cluster_type.as_deref(), Some("k8s,bgp,typha"));
        // One made by `calicoctl datastore migrate lock` (no version yet).
        let bare = ClusterInformationSpec {
            datastore_ready: Some(false),
            ..Default::default()
        };
        let up = cluster_info_update(Some(&bare), "v1.0.0", None, guid).unwrap();
        assert_eq!(up.datastore_ready, Some(false));
        assert_eq!(up.cluster_guid, Some(guid()));
    }

    #[test]
    fn cluster_guid_is_32_hex_digits() {
        let g = new_cluster_guid().unwrap_or_else(|e| panic!("{e}"));
        assert!(
            g.len() == 32 && g.chars().all(|c| c.is_ascii_hexdigit()),
            "{g}"
        );
        assert_ne!(g, new_cluster_guid().unwrap_or_else(|e| panic!("{e}")));
    }
}
