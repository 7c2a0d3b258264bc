//! Who this node peers with and what it advertises, from the datastore
//! (pure): what confd writes into BIRD's configuration in Calico.
//!
//! - Node-to-node mesh (`nodeToNodeMeshEnabled`, default on): every other
//!   node, route reflectors excepted (a node with `routeReflectorClusterID`
//!   is neither in the mesh nor meshed with). As Calico's BIRD and BIRD6,
//!   one session per address family: between the nodes' IPv4 addresses
//!   (carrying IPv4 unicast) and between their IPv6 addresses (IPv6
//!   unicast). Of each pair the node with the higher address waits for the
//!   other to connect, so one connection forms.
//! - BGPPeer: applies to this node when `node` names it, `nodeSelector`
//!   selects it, or neither is set (global); peers with `peerIP` +
//!   `asNumber`, or with the Calico nodes `peerSelector` selects (at their
//!   own address and AS). IPv6 peers need an IPv6 address on this node.
//! - Port: a `peerIP` may carry one (`10.0.0.1:1790`, `[fd00::1]:1790`);
//!   other Calico nodes are reached on their own `listenPort`; 179 else.
//! - Router id: the node's IPv4 address; an IPv6-only node uses a hash of
//!   its name (Calico's `CALICO_ROUTER_ID=hash`).
//! - AS: `Node.spec.bgp.asNumber`, else the BGPConfiguration's, else 64512;
//!   listen port from BGPConfiguration `default` (179). A `node.<name>`
//!   BGPConfiguration overrides what Calico lets it: `listenPort`,
//!   `logSeverityScreen`, `prefixAdvertisements`.
//! - Advertised: this node's affine blocks and, as /32 (/128), the
//!   addresses it borrowed from other nodes' blocks, except in pools with
//!   `disableBGPExport`.
//! - Passwords (TCP MD5): BGPPeer `password` and BGPConfiguration
//!   `nodeMeshPassword` name a Kubernetes secret (`secretKeyRef`); with no
//!   Kubernetes API they are read from a local directory,
//!   `<dir>/<secret name>/<key>` (see [`read_secrets`]). A peer whose
//!   password cannot be found is left out and reported.
//! - Source address: the node's address unless `sourceAddress: None`.
//! - Services: `serviceClusterIPs`, `serviceExternalIPs` and
//!   `serviceLoadBalancerIPs` of BGPConfiguration `default` are advertised
//!   by every node.
//! - Communities: `prefixAdvertisements` attach communities (names from
//!   `communities`, or values `aa:nn` / large `aa:nn:mm`) to every
//!   advertised prefix inside their CIDR, as Calico's `net ~ cidr` filter.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use calico_api::Resource;
use calico_api::meta::Object;
use calico_api::resources::{BGPConfigurationSpec, BGPPeerSpec};
use calico_api::selector::Selector;
use ipnet::{IpNet, Ipv4Net};

/// The AS number when none is configured.
pub const DEFAULT_AS: u32 = 64512;
/// BGP's port.
pub const DEFAULT_PORT: u16 = 179;

/// A node as BGP sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpNode {
    pub name: String,
    pub ipv4: Option<Ipv4Addr>,
    /// The IPv4 address with its prefix: the node's subnet.
    pub ipv4_subnet: Option<Ipv4Net>,
    pub ipv6: Option<Ipv6Addr>,
    pub asn: Option<u32>,
    pub route_reflector_cluster_id: Option<Ipv4Addr>,
    pub labels: BTreeMap<String, String>,
}

/// A pool, for what may be advertised and how learned routes are installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpPool {
    pub cidr: IpNet,
    pub disable_export: bool,
    /// VXLAN: routes to its blocks are programmed by the Felix part from
    /// the IPAM blocks, never from BGP.
    pub vxlan: bool,
    /// IP-in-IP: learned routes into the pool go through `tunl0`.
    pub ipip: Ipip,
}

/// A pool's `ipipMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ipip {
    #[default]
    Never,
    Always,
    /// Only to next hops outside this node's subnet.
    CrossSubnet,
}

/// Everything the plan is computed from.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub me: String,
    pub nodes: Vec<BgpNode>,
    pub configurations: Vec<Object<BGPConfigurationSpec>>,
    pub peers: Vec<Object<BGPPeerSpec>>,
    pub pools: Vec<BgpPool>,
    /// Blocks affine to this node.
    pub my_blocks: Vec<IpNet>,
    /// Addresses this node uses from other nodes' blocks (host prefixes).
    pub borrowed: Vec<IpNet>,
    /// Secrets by `<name>/<key>`.
    pub secrets: BTreeMap<String, String>,
    /// `CALICO_ROUTER_ID`: an IPv4 address, or `hash`.
    pub router_id: Option<String>,
}

/// Where BGP passwords are read from when no Kubernetes API is configured
/// (`CALICO_BGP_SECRETS_DIR`).
pub const DEFAULT_SECRETS_DIR: &str = "/etc/calico/bgp-secrets";

/// Reads `<dir>/<name>/<key>` files into `name/key → value` (a trailing
/// newline is not part of the value). A missing directory has no secrets.
pub fn read_secrets(dir: &std::path::Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Ok(names) = std::fs::read_dir(dir) else {
        return out;
    };
    for name in names.flatten() {
        let Ok(keys) = std::fs::read_dir(name.path()) else {
            continue;
        };
        for key in keys.flatten() {
            if let Ok(v) = std::fs::read_to_string(key.path()) {
                out.insert(
                    format!(
                        "{}/{}",
                        name.file_name().to_string_lossy(),
                        key.file_name().to_string_lossy()
                    ),
                    v.trim_end_matches(['\n', '\r']).to_string(),
                );
            }
        }
    }
    out
}

fn password(
    i: &Inputs,
    p: Option<&calico_api::resources::BGPPassword>,
) -> Result<Option<String>, String> {
    let Some(r) = p.and_then(|p| p.secret_key_ref.as_ref()) else {
        return Ok(None);
    };
    i.secrets
        .get(&format!("{}/{}", r.name, r.key))
        .cloned()
        .map(Some)
        .ok_or_else(|| format!("secret {:?} key {:?} not found", r.name, r.key))
}

/// Kinds of peers, as `calicoctl node status` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PeerKind {
    Mesh,
    Global,
    NodeSpecific,
}

impl PeerKind {
    pub fn label(self) -> &'static str {
        match self {
            PeerKind::Mesh => "node-to-node mesh",
            PeerKind::Global => "global",
            PeerKind::NodeSpecific => "node specific",
        }
    }
}

/// One peer of this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerPlan {
    pub address: IpAddr,
    /// The port to connect to.
    pub port: u16,
    pub asn: u32,
    pub kind: PeerKind,
    /// Waits for the peer to connect.
    pub passive: bool,
    pub keep_original_next_hop: bool,
    /// Graceful restart time offered, in seconds (BIRD's default: 120).
    pub restart_time: u16,
    /// The peer is a Calico node (its routes may be pool blocks).
    pub calico_node: bool,
    /// TCP MD5 password.
    pub password: Option<String>,
    /// Connect from this address (the node's, unless `sourceAddress: None`).
    pub source_address: Option<IpAddr>,
    /// `keepaliveTime` in seconds, if set.
    pub keepalive: Option<u16>,
    /// This node reflects routes for the peer (RFC 4456): this node has a
    /// `routeReflectorClusterID` and the peer is a Calico node outside
    /// that cluster.
    pub rr_client: bool,
}

/// Communities attached to an advertised prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Communities {
    /// RFC 1997: `aa << 16 | nn`.
    pub standard: Vec<u32>,
    /// RFC 8092: `aa:nn:mm`.
    pub large: Vec<[u32; 3]>,
}

enum CommunityValue {
    Standard(u32),
    Large([u32; 3]),
}

/// `aa:nn` (16-bit parts) or `aa:nn:mm` (32-bit parts).
fn parse_community(v: &str) -> Option<CommunityValue> {
    let parts: Vec<&str> = v.split(':').collect();
    match parts.as_slice() {
        [a, n] => {
            let (a, n): (u16, u16) = (a.parse().ok()?, n.parse().ok()?);
            Some(CommunityValue::Standard(
                (u32::from(a) << 16) | u32::from(n),
            ))
        }
        [a, n, m] => Some(CommunityValue::Large([
            a.parse().ok()?,
            n.parse().ok()?,
            m.parse().ok()?,
        ])),
        _ => None,
    }
}

/// What the speaker logs (`logSeverityScreen`, as Calico maps it onto
/// BIRD's `debug`): `Debug` → every message, `Info` (the default) →
/// session state changes, anything else → neither (problems still are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum LogLevel {
    None,
    #[default]
    States,
    All,
}

impl LogLevel {
    pub fn from_severity(s: &str) -> LogLevel {
        match s.to_ascii_lowercase().as_str() {
            "debug" => LogLevel::All,
            "info" => LogLevel::States,
            _ => LogLevel::None,
        }
    }
}

/// What this node's speaker should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub router_id: Ipv4Addr,
    /// This node's IPv4 address with its prefix (the CrossSubnet test).
    pub subnet: Option<Ipv4Net>,
    /// This node's IPv6 address: the next hop of what IPv6 sessions carry.
    pub ipv6: Option<Ipv6Addr>,
    pub local_as: u32,
    pub listen_port: u16,
    pub peers: BTreeMap<IpAddr, PeerPlan>,
    /// This node is a route reflector with this cluster id.
    pub cluster_id: Option<Ipv4Addr>,
    /// Prefixes to advertise.
    pub exports: BTreeSet<IpNet>,
    /// Communities of the advertised prefixes that have any.
    pub communities: BTreeMap<IpNet, Communities>,
    /// Pools, for installing learned routes.
    pub pools: Vec<BgpPool>,
    /// What was left out, and why.
    pub problems: Vec<String>,
    pub log: LogLevel,
}

/// Splits datastore resources into the inputs (nodes, BGP resources, pools;
/// blocks are given by the caller, who knows the affinities).
pub fn inputs(me: &str, resources: Vec<Resource>, my_blocks: Vec<IpNet>) -> Inputs {
    let mut i = Inputs {
        me: me.to_string(),
        my_blocks,
        ..Inputs::default()
    };
    for r in resources {
        match r {
            Resource::Node(n) => {
                let bgp = n.spec.bgp.as_ref();
                let v4 = bgp.and_then(|b| b.ipv4_address.as_deref());
                i.nodes.push(BgpNode {
                    name: n.metadata.name.clone(),
                    ipv4: v4.and_then(|a| a.split('/').next()?.parse().ok()),
                    ipv4_subnet: v4
                        .and_then(|a| a.parse::<Ipv4Net>().ok())
                        .map(|n| n.trunc()),
                    ipv6: bgp
                        .and_then(|b| b.ipv6_address.as_deref())
                        .and_then(|a| a.split('/').next()?.parse().ok()),
                    asn: bgp.and_then(|b| b.as_number).map(|a| a.0),
                    route_reflector_cluster_id: bgp
                        .and_then(|b| b.route_reflector_cluster_id.as_deref())
                        .and_then(|c| c.parse().ok()),
                    labels: n.metadata.labels.clone(),
                });
            }
            Resource::BGPConfiguration(c) => i.configurations.push(c),
            Resource::BGPPeer(p) => i.peers.push(p),
            Resource::IPPool(p) => {
                if p.spec.disabled {
                    continue;
                }
                if let Ok(cidr) = p.spec.cidr.parse::<IpNet>() {
                    i.pools.push(BgpPool {
                        cidr: cidr.trunc(),
                        disable_export: p.spec.disable_bgp_export,
                        vxlan: p.spec.vxlan_mode.as_deref().is_some_and(|m| m != "Never"),
                        ipip: match p.spec.ipip_mode.as_deref() {
                            Some("Always") => Ipip::Always,
                            Some("CrossSubnet") => Ipip::CrossSubnet,
                            _ => Ipip::Never,
                        },
                    });
                }
            }
            _ => {}
        }
    }
    i
}

fn config<'a>(i: &'a Inputs, name: &str) -> Option<&'a BGPConfigurationSpec> {
    i.configurations
        .iter()
        .find(|c| c.metadata.name == name)
        .map(|c| &c.spec)
}

/// A Go duration like `120s`, `2m`, `1h30m` in whole seconds (rounded);
/// `None` when it is not one or is negative.
fn seconds(d: &str) -> Option<u64> {
    calico_api::validate::parse_duration(d)
        .ok()
        .filter(|t| *t >= 0.0)
        .map(|t| t.round() as u64)
}

/// A node's addresses, IPv4 first.
fn addresses(n: &BgpNode) -> impl Iterator<Item = IpAddr> {
    n.ipv4
        .map(IpAddr::V4)
        .into_iter()
        .chain(n.ipv6.map(IpAddr::V6))
}

/// `CALICO_ROUTER_ID=hash`: the first four bytes of the SHA-256 of the
/// node's name, kept below 224.0.0.0 as Calico does (a first byte above
/// 223 loses 32).
pub fn hashed_router_id(name: &str) -> Ipv4Addr {
    let d = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
    let b = d.as_ref();
    let first = if b[0] > 223 { b[0] - 32 } else { b[0] };
    Ipv4Addr::new(first, b[1], b[2], b[3])
}

/// `peerIP` as address and port: `10.0.0.1`, `10.0.0.1:1790`, `fd00::1`,
/// `[fd00::1]:1790`.
pub fn peer_ip(ip: &str) -> Option<(IpAddr, Option<u16>)> {
    if let Ok(a) = ip.parse::<IpAddr>() {
        return Some((a, None));
    }
    let sa: std::net::SocketAddr = ip.parse().ok()?;
    Some((sa.ip(), Some(sa.port())))
}

/// Computes the plan; `None` when this node has no address yet (nothing
/// to peer from).
pub fn plan(i: &Inputs) -> Option<Plan> {
    let me = i.nodes.iter().find(|n| n.name == i.me)?;
    if me.ipv4.is_none() && me.ipv6.is_none() {
        return None;
    }
    let mut problems = Vec::new();
    // The router id: CALICO_ROUTER_ID (an address, or `hash`), else the
    // node's IPv4 address; an IPv6-only node without it hashes its name.
    let hashed = || hashed_router_id(&i.me);
    let router_id = match i.router_id.as_deref().map(str::trim) {
        Some("hash") => hashed(),
        Some(v) if !v.is_empty() => v.parse().unwrap_or_else(|_| {
            problems.push(format!(
                "CALICO_ROUTER_ID {v:?} is neither an IPv4 address nor \"hash\""
            ));
            me.ipv4.unwrap_or_else(hashed)
        }),
        _ => me.ipv4.unwrap_or_else(hashed),
    };
    // This node's address of the family of `peer`.
    let mine_for = |peer: IpAddr| match peer {
        IpAddr::V4(_) => me.ipv4.map(IpAddr::V4),
        IpAddr::V6(_) => me.ipv6.map(IpAddr::V6),
    };
    let global = config(i, "default");
    let mine = config(i, &format!("node.{}", i.me));
    // A node's listen port: its `node.<name>` BGPConfiguration, else the
    // global one, else 179.
    let port_of = |name: &str| {
        config(i, &format!("node.{name}"))
            .and_then(|c| c.listen_port)
            .or(global.and_then(|c| c.listen_port))
            .unwrap_or(DEFAULT_PORT)
    };
    let default_as = global
        .and_then(|c| c.as_number)
        .map(|a| a.0)
        .unwrap_or(DEFAULT_AS);
    let as_of = |n: &BgpNode| n.asn.unwrap_or(default_as);
    let local_as = as_of(me);
    let listen_port = mine
        .and_then(|c| c.listen_port)
        .or(global.and_then(|c| c.listen_port))
        .unwrap_or(DEFAULT_PORT);
    let mesh = global
        .and_then(|c| c.node_to_node_mesh_enabled)
        .unwrap_or(true);
    // nodeMeshMaxRestartTime: the restart time mesh sessions offer.
    let mesh_restart = global
        .and_then(|c| c.node_mesh_max_restart_time.as_deref())
        .and_then(seconds)
        .map_or(120, |t| t.min(4095) as u16);
    let mesh_password = match password(i, global.and_then(|c| c.node_mesh_password.as_ref())) {
        Ok(p) => p,
        Err(e) => {
            problems.push(format!("nodeMeshPassword: {e}"));
            None
        }
    };
    let mut peers = BTreeMap::new();
    // Another node at `addr`, from our address `from` of the same family.
    let node_peer = |n: &BgpNode, addr: IpAddr, from: IpAddr, kind: PeerKind| PeerPlan {
        address: addr,
        port: port_of(&n.name),
        asn: as_of(n),
        kind,
        passive: addr > from,
        keep_original_next_hop: false,
        restart_time: mesh_restart,
        calico_node: true,
        password: mesh_password.clone(),
        source_address: Some(from),
        keepalive: None,
        rr_client: me.route_reflector_cluster_id.is_some()
            && n.route_reflector_cluster_id != me.route_reflector_cluster_id,
    };
    if mesh && me.route_reflector_cluster_id.is_none() {
        for n in &i.nodes {
            if n.name == i.me || n.route_reflector_cluster_id.is_some() {
                continue;
            }
            for addr in addresses(n) {
                match mine_for(addr) {
                    Some(from) if from != addr => {
                        peers.insert(addr, node_peer(n, addr, from, PeerKind::Mesh));
                    }
                    _ => {}
                }
            }
        }
    }
    let mut labels = me.labels.clone();
    labels
        .entry("kubernetes.io/hostname".into())
        .or_insert_with(|| i.me.clone());
    for p in &i.peers {
        let s = &p.spec;
        let name = &p.metadata.name;
        // A selector field, if set: parsed, or the peer is left out.
        let selector = |field: &str, v: &Option<String>| {
            v.as_deref()
                .map(Selector::parse)
                .transpose()
                .map_err(|e| format!("BGPPeer {name}: {field}: {e}"))
        };
        let node_selector = match selector("nodeSelector", &s.node_selector) {
            Ok(sel) => sel,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        // Whether the BGPPeer's node side (`node`, `nodeSelector`, or every
        // node) takes a node.
        let on_node_side = |n: &str, l: &BTreeMap<String, String>| match (&s.node, &node_selector) {
            (Some(node), _) => node == n,
            (None, Some(sel)) => sel.matches(l),
            (None, None) => true,
        };
        let applies = on_node_side(&i.me, &labels);
        let peer_selector = match selector("peerSelector", &s.peer_selector) {
            Ok(sel) => sel,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        // Peerings between Calico nodes go both ways: a node the
        // peerSelector picks peers with the nodes of the node side.
        let picked = peer_selector
            .as_ref()
            .is_some_and(|sel| sel.matches(&labels));
        if !applies && !picked {
            continue;
        }
        let kind = if s.node.is_some() {
            PeerKind::NodeSpecific
        } else {
            PeerKind::Global
        };
        let restart_time = s
            .max_restart_time
            .as_deref()
            .and_then(seconds)
            .map(|t| t.min(4095) as u16)
            .unwrap_or(120);
        let keep = s.keep_original_next_hop.unwrap_or(false);
        let pw = match password(i, s.password.as_ref()) {
            Ok(p) => p,
            Err(e) => {
                problems.push(format!("BGPPeer {name}: password: {e}"));
                continue;
            }
        };
        let no_source = s.source_address.as_deref() == Some("None");
        let keepalive = s
            .keepalive_time
            .as_deref()
            .and_then(seconds)
            .map(|t| t.clamp(1, 65535) as u16);
        if let Some(sel) = &peer_selector {
            for n in i.nodes.iter().filter(|n| n.name != i.me) {
                let mut l = n.labels.clone();
                l.entry("kubernetes.io/hostname".into())
                    .or_insert_with(|| n.name.clone());
                let selected =
                    (applies && sel.matches(&l)) || (picked && on_node_side(&n.name, &l));
                if !selected {
                    continue;
                }
                for addr in addresses(n) {
                    let Some(from) = mine_for(addr).filter(|f| *f != addr) else {
                        continue;
                    };
                    let mut pp = node_peer(n, addr, from, kind);
                    pp.keep_original_next_hop = keep;
                    pp.restart_time = restart_time;
                    pp.password = pw.clone();
                    pp.source_address = (!no_source).then_some(from);
                    pp.keepalive = keepalive;
                    peers.insert(addr, pp);
                }
            }
            continue;
        }
        if !applies {
            continue;
        }
        let (Some(ip), Some(asn)) = (&s.peer_ip, s.as_number) else {
            problems.push(format!(
                "BGPPeer {name}: needs peerIP and asNumber, or peerSelector"
            ));
            continue;
        };
        let Some((address, port)) = peer_ip(ip) else {
            problems.push(format!(
                "BGPPeer {name}: peerIP {ip:?} is not an address (or address:port)"
            ));
            continue;
        };
        let Some(from) = mine_for(address) else {
            problems.push(format!(
                "BGPPeer {name}: this node has no {} address to peer with {address} from",
                if address.is_ipv6() { "IPv6" } else { "IPv4" }
            ));
            continue;
        };
        if address == from {
            continue;
        }
        // A Calico node at that address listens on its own port.
        let node_port = i
            .nodes
            .iter()
            .find(|n| addresses(n).any(|a| a == address))
            .map(|n| port_of(&n.name));
        peers.insert(
            address,
            PeerPlan {
                address,
                port: port.or(node_port).unwrap_or(DEFAULT_PORT),
                asn: asn.0,
                kind,
                passive: false,
                keep_original_next_hop: keep,
                restart_time,
                calico_node: false,
                password: pw,
                source_address: (!no_source).then_some(from),
                keepalive,
                rr_client: false,
            },
        );
    }
    let mut services = Vec::new();
    if let Some(g) = global {
        for e in [
            &g.service_cluster_ips,
            &g.service_external_ips,
            &g.service_load_balancer_ips,
        ]
        .into_iter()
        .flatten()
        .flatten()
        {
            match e.cidr.parse::<IpNet>() {
                Ok(n) => services.push(n.trunc()),
                Err(_) => problems.push(format!("service CIDR {:?} is not a CIDR", e.cidr)),
            }
        }
    }
    let exports: BTreeSet<IpNet> = i
        .my_blocks
        .iter()
        .chain(&i.borrowed)
        .chain(&services)
        .filter(|b| {
            !i.pools
                .iter()
                .any(|p| p.disable_export && p.cidr.contains(*b))
        })
        .copied()
        .collect();
    let mut communities: BTreeMap<IpNet, Communities> = BTreeMap::new();
    let named: BTreeMap<&str, &str> = global
        .and_then(|g| g.communities.as_ref())
        .into_iter()
        .flatten()
        .map(|c| (c.name.as_str(), c.value.as_str()))
        .collect();
    // prefixAdvertisements of `node.<name>` replace the global ones.
    for adv in mine
        .and_then(|c| c.prefix_advertisements.as_ref())
        .or(global.and_then(|g| g.prefix_advertisements.as_ref()))
        .into_iter()
        .flatten()
    {
        let Ok(cidr) = adv.cidr.parse::<IpNet>() else {
            problems.push(format!(
                "prefixAdvertisements: {:?} is not a CIDR",
                adv.cidr
            ));
            continue;
        };
        let mut add = Communities::default();
        for c in &adv.communities {
            let value = named.get(c.as_str()).copied().unwrap_or(c);
            match parse_community(value) {
                Some(CommunityValue::Standard(v)) => add.standard.push(v),
                Some(CommunityValue::Large(v)) => add.large.push(v),
                None => problems.push(format!(
                    "prefixAdvertisements {}: community {c:?} is neither a name from communities nor aa:nn or aa:nn:mm",
                    adv.cidr
                )),
            }
        }
        for e in exports.iter().filter(|e| cidr.contains(*e)) {
            let entry = communities.entry(*e).or_default();
            entry.standard.extend(&add.standard);
            entry.large.extend(&add.large);
        }
    }
    for c in communities.values_mut() {
        c.standard.sort_unstable();
        c.standard.dedup();
        c.large.sort_unstable();
        c.large.dedup();
    }
    Some(Plan {
        router_id,
        subnet: me.ipv4_subnet,
        ipv6: me.ipv6,
        local_as,
        listen_port,
        peers,
        cluster_id: me.route_reflector_cluster_id,
        exports,
        communities,
        pools: i.pools.clone(),
        problems,
        log: mine
            .and_then(|c| c.log_severity_screen.as_deref())
            .or(global.and_then(|c| c.log_severity_screen.as_deref()))
            .map(LogLevel::from_severity)
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn node(name: &str, addr: &str, labels: &[(&str, &str)]) -> BgpNode {
        BgpNode {
            name: name.into(),
            ipv4: Some(addr.parse().unwrap()),
            ipv4_subnet: None,
            ipv6: None,
            asn: None,
            route_reflector_cluster_id: None,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn resources(yaml: &str) -> Vec<Resource> {
        calico_api::codec::decode_documents(yaml)
            .unwrap()
            .into_iter()
            .map(|r| r.unwrap())
            .collect()
    }

    fn inputs3(extra: &str) -> Inputs {
        let mut i = Inputs {
            me: "a".into(),
            nodes: vec![
                node("a", "10.0.0.2", &[("rack", "r1")]),
                node("b", "10.0.0.1", &[("rack", "r1")]),
                node("c", "10.0.0.3", &[("rack", "r2")]),
            ],
            ..Inputs::default()
        };
        for r in resources(extra) {
            match r {
                Resource::BGPConfiguration(c) => i.configurations.push(c),
                Resource::BGPPeer(p) => i.peers.push(p),
                _ => {}
            }
        }
        i
    }

    #[test]
    fn mesh_by_default_with_one_connecting_side() {
        let p = plan(&inputs3("")).unwrap();
        assert_eq!((p.local_as, p.listen_port), (64512, 179));
        let b = &p.peers[&"10.0.0.1".parse::<IpAddr>().unwrap()];
        let c = &p.peers[&"10.0.0.3".parse::<IpAddr>().unwrap()];
        assert_eq!(b.kind, PeerKind::Mesh);
        assert!(!b.passive, "b has the lower address: we connect");
        assert!(c.passive, "c has the higher address: it connects");
        assert_eq!(p.peers.len(), 2);
    }

    #[test]
    fn node_as_and_configuration() {
        let mut i = inputs3(
            "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\n\
             spec: {asNumber: 65000, listenPort: 1179, nodeToNodeMeshEnabled: true, nodeMeshMaxRestartTime: 30s}\n",
        );
        i.nodes[2].asn = Some(65003);
        let p = plan(&i).unwrap();
        assert_eq!((p.local_as, p.listen_port), (65000, 1179));
        let c = &p.peers[&"10.0.0.3".parse::<IpAddr>().unwrap()];
        assert_eq!((c.asn, c.restart_time), (65003, 30));
    }

    #[test]
    fn route_reflectors_leave_the_mesh_and_mesh_can_be_off() {
        let mut i = inputs3("");
        i.nodes[2].route_reflector_cluster_id = Some("224.0.0.1".parse().unwrap());
        let p = plan(&i).unwrap();
        assert_eq!(p.peers.len(), 1);
        let i = inputs3(
            "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\n\
             spec: {nodeToNodeMeshEnabled: false}\n",
        );
        assert!(plan(&i).unwrap().peers.is_empty());
    }

    #[test]
    fn bgp_peers_global_node_specific_and_selectors() {
        let i = inputs3(
            "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\n\
             spec: {nodeToNodeMeshEnabled: false}\n---\n\
             apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor}\n\
             spec: {peerIP: 192.168.1.1, asNumber: 65001, maxRestartTime: 5m, keepaliveTime: 20s}\n---\n\
             apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: mine}\n\
             spec: {node: a, peerIP: '192.168.1.2:1179', asNumber: 65002, keepOriginalNextHop: true}\n---\n\
             apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: other}\n\
             spec: {node: b, peerIP: 192.168.1.3, asNumber: 65003}\n---\n\
             apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: rack}\n\
             spec: {nodeSelector: rack == 'r1', peerSelector: rack == 'r2'}\n---\n\
             apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: elsewhere}\n\
             spec: {nodeSelector: rack == 'r2', peerIP: 192.168.1.4, asNumber: 65004}\n",
        );
        let p = plan(&i).unwrap();
        let get = |a: &str| p.peers.get(&a.parse::<IpAddr>().unwrap());
        let tor = get("192.168.1.1").unwrap();
        assert_eq!(
            (tor.asn, tor.kind, tor.restart_time),
            (65001, PeerKind::Global, 300)
        );
        assert_eq!(tor.keepalive, Some(20));
        let mine = get("192.168.1.2").unwrap();
        assert_eq!(mine.kind, PeerKind::NodeSpecific);
        assert!(mine.keep_original_next_hop);
        assert!(get("192.168.1.3").is_none(), "another node's peer");
        assert!(get("192.168.1.4").is_none(), "selector does not match");
        let c = get("10.0.0.3").unwrap();
        assert!(c.calico_node && c.kind == PeerKind::Global && c.passive);
        assert_eq!(p.peers.len(), 3);
        assert!(p.problems.is_empty(), "{:?}", p.problems);
    }

    #[test]
    fn passwords_from_secrets_and_source_address() {
        let mut i = inputs3(
            "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\n\
             spec: {nodeMeshPassword: {secretKeyRef: {name: mesh, key: pw}}}\n---\n\
             apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor}\n\
             spec: {peerIP: 192.168.1.1, asNumber: 65001, sourceAddress: None, password: {secretKeyRef: {name: tor, key: pw}}}\n---\n\
             apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: nokey}\n\
             spec: {peerIP: 192.168.1.2, asNumber: 65001, password: {secretKeyRef: {name: gone, key: pw}}}\n",
        );
        let dir = tempfile::tempdir().unwrap();
        for (name, v) in [("mesh", "m3sh\n"), ("tor", "t0r")] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
            std::fs::write(dir.path().join(name).join("pw"), v).unwrap();
        }
        i.secrets = read_secrets(dir.path());
        let p = plan(&i).unwrap();
        let get = |a: &str| p.peers.get(&a.parse::<IpAddr>().unwrap());
        let mesh = get("10.0.0.1").unwrap();
        assert_eq!(mesh.password.as_deref(), Some("m3sh"));
        assert_eq!(mesh.source_address, Some("10.0.0.2".parse().unwrap()));
        let tor = get("192.168.1.1").unwrap();
        assert_eq!(tor.password.as_deref(), Some("t0r"));
        assert_eq!(tor.source_address, None, "sourceAddress: None");
        assert!(get("192.168.1.2").is_none(), "its secret is missing");
        assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
        assert!(p.problems[0].contains("nokey"), "{:?}", p.problems);
    }

    #[test]
    fn route_reflector_topology_both_ways() {
        // c is a route reflector; every node peers with reflectors.
        let mut i = inputs3(
            "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\n\
             spec: {nodeToNodeMeshEnabled: false}\n---\n\
             apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: to-rr}\n\
             spec: {nodeSelector: all(), peerSelector: has(route-reflector)}\n",
        );
        i.nodes[2].route_reflector_cluster_id = Some("224.0.0.1".parse().unwrap());
        i.nodes[2]
            .labels
            .insert("route-reflector".into(), "true".into());
        let a = plan(&i).unwrap();
        assert_eq!(
            a.peers.keys().collect::<Vec<_>>(),
            vec![&"10.0.0.3".parse::<IpAddr>().unwrap()]
        );
        assert!(!a.peers.values().next().unwrap().rr_client);
        assert_eq!(a.cluster_id, None);
        i.me = "c".into();
        let c = plan(&i).unwrap();
        assert_eq!(c.cluster_id, Some("224.0.0.1".parse().unwrap()));
        assert_eq!(
            c.peers.len(),
            2,
            "the reflector peers with every node: {:?}",
            c.peers
        );
        assert!(c.peers.values().all(|p| p.rr_client && p.calico_node));
    }

    #[test]
    fn bad_peers_are_problems_not_failures() {
        let i = inputs3(
            "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: half}\n\
             spec: {peerIP: 192.168.1.1}\n",
        );
        let p = plan(&i).unwrap();
        assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
        assert_eq!(p.peers.len(), 2, "the mesh stays");
    }

    #[test]
    fn exports_skip_pools_without_bgp_export() {
        let mut i = inputs3("");
        i.pools = vec![
            BgpPool {
                cidr: "10.10.0.0/16".parse().unwrap(),
                disable_export: false,
                vxlan: false,
                ipip: Ipip::Never,
            },
            BgpPool {
                cidr: "10.20.0.0/16".parse().unwrap(),
                disable_export: true,
                vxlan: false,
                ipip: Ipip::Never,
            },
        ];
        i.my_blocks = vec![
            "10.10.1.0/26".parse().unwrap(),
            "10.20.1.0/26".parse().unwrap(),
        ];
        i.borrowed = vec![
            "10.10.2.7/32".parse().unwrap(),
            "10.20.2.7/32".parse().unwrap(),
        ];
        let p = plan(&i).unwrap();
        assert_eq!(
            p.exports.into_iter().collect::<Vec<_>>(),
            vec![
                "10.10.1.0/26".parse::<IpNet>().unwrap(),
                "10.10.2.7/32".parse::<IpNet>().unwrap()
            ]
        );
    }

    #[test]
    fn services_and_communities() {
        let mut i = inputs3(
            "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\n\
             spec:\n  serviceClusterIPs: [{cidr: 10.96.0.0/12}]\n  serviceExternalIPs: [{cidr: 192.0.2.0/24}]\n\
             \x20 communities: [{name: web, value: '65001:100'}, {name: big, value: '65001:1:2'}]\n\
             \x20 prefixAdvertisements:\n  - {cidr: 10.10.0.0/16, communities: [web, '65001:200']}\n\
             \x20 - {cidr: 10.10.1.0/26, communities: [big]}\n  - {cidr: 192.0.2.0/24, communities: [nope]}\n",
        );
        i.my_blocks = vec![
            "10.10.1.0/26".parse().unwrap(),
            "10.10.2.0/26".parse().unwrap(),
        ];
        let p = plan(&i).unwrap();
        let n = |s: &str| s.parse::<IpNet>().unwrap();
        assert!(p.exports.contains(&n("10.96.0.0/12")) && p.exports.contains(&n("192.0.2.0/24")));
        let c1 = &p.communities[&n("10.10.1.0/26")];
        assert_eq!(c1.standard, vec![(65001 << 16) | 100, (65001 << 16) | 200]);
        assert_eq!(c1.large, vec![[65001, 1, 2]]);
        assert_eq!(
            p.communities[&n("10.10.2.0/26")].large,
            Vec::<[u32; 3]>::new()
        );
        assert!(!p.communities.contains_key(&n("10.96.0.0/12")));
        assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
    }

    #[test]
    fn durations() {
        assert_eq!(seconds("120s"), Some(120));
        assert_eq!(seconds("2m"), Some(120));
        assert_eq!(seconds("1h30m"), Some(5400));
        assert_eq!(seconds("500ms"), Some(1));
        assert_eq!(seconds("5"), None);
        assert_eq!(seconds("5x"), None);
    }

    #[test]
    fn no_address_no_plan() {
        let mut i = inputs3("");
        i.nodes[0].ipv4 = None;
        assert!(plan(&i).is_none());
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_mesh_is_a_second_session_per_node_pair() {
        let mut i = inputs3("");
        i.nodes[0].ipv6 = Some("fd00::2".parse().unwrap());
        i.nodes[1].ipv6 = Some("fd00::1".parse().unwrap());
        // c has no IPv6 address: IPv4 only.
        let p = plan(&i).unwrap();
        assert_eq!(p.peers.len(), 3);
        let b6 = &p.peers[&ip("fd00::1")];
        assert_eq!((b6.kind, b6.passive), (PeerKind::Mesh, false));
        assert_eq!(b6.source_address, Some(ip("fd00::2")));
        assert_eq!(p.ipv6, Some("fd00::2".parse().unwrap()));
        assert_eq!(p.router_id, "10.0.0.2".parse::<Ipv4Addr>().unwrap());
        assert_eq!(
            p.peers[&ip("10.0.0.1")].source_address,
            Some(ip("10.0.0.2"))
        );
        // IPv6 only: a router id from the name's hash.
        i.nodes[0].ipv4 = None;
        let p = plan(&i).unwrap();
        assert_eq!(p.router_id, hashed_router_id("a"));
        assert_eq!(
            p.peers.keys().copied().collect::<Vec<_>>(),
            vec![ip("fd00::1")]
        );
        // An IPv6 BGPPeer needs an IPv6 address here.
        let mut i = inputs3(
            "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor6}\n\
             spec: {peerIP: 'fd00::fe', asNumber: 65001}\n",
        );
        let p = plan(&i).unwrap();
        assert!(
            p.problems[0].contains("no IPv6 address"),
            "{:?}",
            p.problems
        );
        i.nodes[0].ipv6 = Some("fd00::2".parse().unwrap());
        let p = plan(&i).unwrap();
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert_eq!(p.peers[&ip("fd00::fe")].source_address, Some(ip("fd00::2")));
    }

    #[test]
    fn router_id_from_calico_router_id() {
        // Calico's hashToIPv4: the first four bytes of SHA-256(name), the
        // first kept under 224. SHA-256("a") = ca978112...: 0xca = 202.
        assert_eq!(hashed_router_id("a"), Ipv4Addr::new(202, 151, 129, 18));
        let mut i = inputs3("");
        i.router_id = Some("hash".into());
        assert_eq!(plan(&i).unwrap().router_id, hashed_router_id("a"));
        i.router_id = Some("192.0.2.9".into());
        assert_eq!(plan(&i).unwrap().router_id, Ipv4Addr::new(192, 0, 2, 9));
        i.router_id = Some("nonsense".into());
        let p = plan(&i).unwrap();
        assert_eq!(p.router_id, Ipv4Addr::new(10, 0, 0, 2));
        assert!(p.problems[0].contains("CALICO_ROUTER_ID"));
    }

    #[test]
    fn ports_of_peers_and_node_specific_configuration() {
        let i = inputs3(
            "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\n\
             spec: {listenPort: 1179, logSeverityScreen: Warning,\n\
               prefixAdvertisements: [{cidr: 10.9.0.0/16, communities: ['1:1']}]}\n\
             ---\napiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: node.b}\n\
             spec: {listenPort: 2179}\n\
             ---\napiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: node.a}\n\
             spec: {logSeverityScreen: Debug, prefixAdvertisements: [{cidr: 10.9.0.0/16, communities: ['2:2']}]}\n\
             ---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor}\n\
             spec: {peerIP: '192.0.2.1:1790', asNumber: 65001}\n\
             ---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor6}\n\
             spec: {peerIP: '[fd00::fe]:1791', asNumber: 65001}\n\
             ---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: plain}\n\
             spec: {peerIP: 192.0.2.2, asNumber: 65001}\n",
        );
        let mut i = i;
        i.nodes[0].ipv6 = Some("fd00::2".parse().unwrap());
        i.my_blocks = vec!["10.9.1.0/26".parse().unwrap()];
        let p = plan(&i).unwrap();
        assert_eq!(p.listen_port, 1179, "node.a sets no listenPort");
        assert_eq!(
            p.peers[&ip("10.0.0.1")].port,
            2179,
            "b listens on its own port"
        );
        assert_eq!(p.peers[&ip("10.0.0.3")].port, 1179);
        assert_eq!(p.peers[&ip("192.0.2.1")].port, 1790);
        assert_eq!(p.peers[&ip("fd00::fe")].port, 1791);
        assert_eq!(p.peers[&ip("192.0.2.2")].port, 179);
        assert_eq!(p.log, LogLevel::All, "node.a: Debug");
        assert_eq!(
            p.communities[&"10.9.1.0/26".parse::<IpNet>().unwrap()].standard,
            vec![(2 << 16) | 2],
            "node.a's prefixAdvertisements replace the global ones"
        );
        let mut i = i;
        i.me = "c".into();
        let p = plan(&i).unwrap();
        assert_eq!(p.log, LogLevel::None, "Warning: no state messages");
        assert_eq!(LogLevel::from_severity("info"), LogLevel::States);
        assert_eq!(peer_ip("[fd00::1]:179"), Some((ip("fd00::1"), Some(179))));
        assert_eq!(peer_ip("fd00::1"), Some((ip("fd00::1"), None)));
        assert_eq!(peer_ip("10.0.0.1:x"), None);
    }
}
