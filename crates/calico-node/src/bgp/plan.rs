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
//! - Filters: a BGPPeer's `filters` name BGPFilters whose rules of the
//!   session's family apply to what the peer sends and is sent (see
//!   [`super::filter`]); a missing filter is reported. The node's own
//!   prefixes ([`super::filter::Local`]: affine blocks, interface networks,
//!   its addresses, its workloads' addresses) are what learned routes may
//!   not take over. Each peer may hold at most `CALICO_BGP_MAX_PREFIXES`
//!   prefixes ([`DEFAULT_MAX_PREFIXES`] by default; Calico has no such
//!   field).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use calico_api::Resource;
use calico_api::meta::Object;
use calico_api::resources::{BGPConfigurationSpec, BGPFilterSpec, BGPPeerSpec, EncapMode};
use calico_api::selector::Selector;
use ipnet::{IpNet, Ipv4Net};

use super::filter::{Direction, Local, Rules};

/// The AS number when none is configured.
pub const DEFAULT_AS: u32 = 64512;
/// Prefixes a peer may hold at most when `CALICO_BGP_MAX_PREFIXES` does
/// not say (Calico's BGPPeer has no limit; BIRD's `import limit` is off
/// by default): twice the 100,000 routes the BGP bench drives through one
/// session, far above a cluster's own blocks, borrowed addresses and
/// services, and a bound on what one peer can make the node keep.
pub const DEFAULT_MAX_PREFIXES: u32 = 200_000;
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
    pub ipip: EncapMode,
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
    pub filters: Vec<Object<BGPFilterSpec>>,
    /// Host prefixes of this node's workloads (and tunnel addresses).
    pub workloads: Vec<IpNet>,
    /// The networks and addresses on this node's interfaces (each address
    /// with its prefix length).
    pub interfaces: Vec<IpNet>,
    /// `CALICO_BGP_MAX_PREFIXES`, as given.
    pub max_prefixes: Option<String>,
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
    /// The import rules of the BGPFilters the BGPPeer names.
    pub import: Rules,
    /// Their export rules.
    pub export: Rules,
    /// Prefixes the peer may hold; past it the session ends (Cease,
    /// Maximum Number of Prefixes Reached) and its routes go.
    pub max_prefixes: u32,
}

/// Communities attached to an advertised prefix.
pub use calico_bgp::rib::Communities;

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
    /// What learned routes may not take over.
    pub local: Local,
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
            Resource::BGPFilter(f) => i.filters.push(f),
            Resource::IPPool(p) => {
                if p.spec.disabled {
                    continue;
                }
                if let Ok(cidr) = p.spec.cidr.parse::<IpNet>() {
                    i.pools.push(BgpPool {
                        cidr: cidr.trunc(),
                        disable_export: p.spec.disable_bgp_export,
                        vxlan: p.spec.vxlan_mode().enabled(),
                        ipip: p.spec.ipip_mode(),
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
    let max_prefixes = match i.max_prefixes.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_MAX_PREFIXES,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if n > 0 => n,
            _ => {
                problems.push(format!(
                    "CALICO_BGP_MAX_PREFIXES {v:?} is not a positive number: \
                     using {DEFAULT_MAX_PREFIXES}"
                ));
                DEFAULT_MAX_PREFIXES
            }
        },
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
        import: Rules::default(),
        export: Rules::default(),
        max_prefixes,
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
        // The import rules of its filters, per family.
        let mut named: Vec<(&str, &BGPFilterSpec)> = Vec::new();
        for f in s.filters.iter().flatten() {
            match i.filters.iter().find(|o| &o.metadata.name == f) {
                Some(o) => named.push((f.as_str(), &o.spec)),
                None => problems.push(format!(
                    "BGPPeer {name}: BGPFilter {f:?} does not exist: left out"
                )),
            }
        }
        let rules_for = |dir: Direction, addr: IpAddr, problems: &mut Vec<String>| {
            let (rules, p) = Rules::compile(&named, dir, addr.is_ipv6());
            for pr in p {
                if !problems.contains(&pr) {
                    problems.push(pr);
                }
            }
            rules
        };
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
                    pp.import = rules_for(Direction::Import, addr, &mut problems);
                    pp.export = rules_for(Direction::Export, addr, &mut problems);
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
                import: rules_for(Direction::Import, address, &mut problems),
                export: rules_for(Direction::Export, address, &mut problems),
                max_prefixes,
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
        local: Local::new(
            i.my_blocks
                .iter()
                .chain(&i.interfaces)
                .copied()
                .chain(me.ipv4_subnet.map(IpNet::V4))
                .chain(addresses(me).map(IpNet::from))
                .chain(i.interfaces.iter().map(|n| IpNet::from(n.addr()))),
            i.workloads.iter().chain(&i.borrowed).copied(),
        ),
        problems,
        log: mine
            .and_then(|c| c.log_severity_screen.as_deref())
            .or(global.and_then(|c| c.log_severity_screen.as_deref()))
            .map(LogLevel::from_severity)
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests;
