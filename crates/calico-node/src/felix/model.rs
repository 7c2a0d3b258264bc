//! Datastore state in, desired dataplane out: pure, unit-tested.
//!
//! The desired state this node programs (Felix's route and VXLAN managers):
//! - a blackhole route for each block affine to this node (IPv4 and IPv6);
//! - for each block of another node in a VXLAN pool (`Always`, or
//!   `CrossSubnet` when that node is in another subnet): a route
//!   `<block> via <its tunnel address> dev vxlan.calico onlink`, a
//!   neighbour entry (tunnel address → its VXLAN MAC) and a forwarding
//!   entry (MAC → its node address);
//! - for `CrossSubnet` blocks of nodes in this node's subnet: a route
//!   `<block> via <node address>` (no encapsulation);
//! - the `vxlan.calico` device when this node has a tunnel address;
//! - a route per local workload address through its `cali` interface.
//!
//! - for each block of another node in an IPIP pool (`Always`, or
//!   `CrossSubnet` across subnets): `<block> via <node address> dev tunl0
//!   onlink` — when the kernel has `tunl0` (the ipip module); otherwise a
//!   problem saying so. Only without the BGP speaker
//!   ([`Settings::ipip_routes`]): with it, BGP programs these routes, as
//!   BIRD does in Calico.
//!
//! Unencapsulated pools are routed by BGP ([`crate::bgp`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

/// A node as the dataplane needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub name: String,
    /// `spec.bgp.ipv4Address` (with its prefix: the node's subnet).
    pub ipv4: Option<IpNet>,
    /// `spec.bgp.ipv6Address` (a host IP for `natOutgoingExclusions`).
    pub ipv6: Option<IpNet>,
    pub vxlan_tunnel: Option<Ipv4Addr>,
    pub vxlan_mac: Option<[u8; 6]>,
}

/// An IPAM block and its affinity (`host:<node>`), if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockInfo {
    pub cidr: IpNet,
    pub node: Option<String>,
}

/// Encapsulation mode of a pool.
pub use calico_api::resources::EncapMode as Encap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolInfo {
    pub cidr: IpNet,
    pub vxlan: Encap,
    pub ipip: Encap,
    pub nat_outgoing: bool,
    pub disabled: bool,
}

/// A local workload interface and its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadInfo {
    pub iface: String,
    pub nets: Vec<IpNet>,
    /// `ipNATs`: (internal, external) floating addresses.
    pub nats: Vec<(IpAddr, IpAddr)>,
    /// `allowSpoofedSourcePrefixes`.
    pub allow_spoof: Vec<IpNet>,
    /// `orchestrator: openstack`: its `ipNATs` are programmed even without
    /// `floatingIPs: Enabled`, as Felix does.
    pub openstack: bool,
}

/// Felix's NAT parameters ([`super::nat`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatSettings {
    /// `floatingIPs: Enabled` (Felix's default is `Disabled`): endpoints'
    /// `ipNATs` are programmed; otherwise only OpenStack endpoints' are.
    pub floating_ips: bool,
    /// `natOutgoingAddress`: NAT outgoing SNATs IPv4 to this address
    /// instead of masquerading (IPv6 still masquerades).
    pub outgoing_address: Option<Ipv4Addr>,
    /// `natOutgoingExclusions: IPPoolsAndHostIPs`: traffic to host IPs (the
    /// nodes' addresses) is not NATed either (default `IPPoolsOnly`).
    pub exclude_host_ips: bool,
}

/// Felix settings the dataplane uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub vxlan_vni: u32,
    pub vxlan_port: u16,
    /// MTU of `vxlan.calico` (0: underlay − 50).
    pub vxlan_mtu: u32,
    /// MTU of `tunl0` (`ipipMTU`; 0: underlay − 20).
    pub ipip_mtu: u32,
    /// Program routes into IP-in-IP pools from the IPAM blocks (no BGP
    /// speaker on this node; with one, BGP programs them).
    pub ipip_routes: bool,
    /// Floating IPs and NAT outgoing.
    pub nat: NatSettings,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            vxlan_vni: 4096,
            vxlan_port: 4789,
            vxlan_mtu: 0,
            ipip_mtu: 0,
            ipip_routes: true,
            nat: NatSettings::default(),
        }
    }
}

/// Everything read from the datastore.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub me: String,
    pub nodes: Vec<NodeInfo>,
    pub blocks: Vec<BlockInfo>,
    pub pools: Vec<PoolInfo>,
    pub workloads: Vec<WorkloadInfo>,
    pub settings: Settings,
}

/// The VXLAN device this node needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanDevice {
    pub vni: u32,
    pub port: u16,
    pub local: Ipv4Addr,
    pub mac: [u8; 6],
    pub tunnel: Ipv4Addr,
    /// 0: underlay MTU − 50, decided when applying.
    pub mtu: u32,
}

/// The dataplane this node should have.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    pub blackholes: BTreeSet<IpNet>,
    pub vxlan: Option<VxlanDevice>,
    /// (remote block, remote tunnel address) through `vxlan.calico`.
    pub vxlan_routes: BTreeSet<(IpNet, IpAddr)>,
    /// (remote tunnel address, remote VXLAN MAC).
    pub neighbours: BTreeSet<(IpAddr, [u8; 6])>,
    /// (remote VXLAN MAC, remote node address).
    pub fdb: BTreeSet<([u8; 6], IpAddr)>,
    /// (remote block, remote node address): same-subnet CrossSubnet.
    pub direct_routes: BTreeSet<(IpNet, IpAddr)>,
    /// (remote block, remote node address) through `tunl0`.
    pub ipip_routes: BTreeSet<(IpNet, IpAddr)>,
    /// An enabled IPIP pool exists: this node needs `tunl0`.
    pub ipip: bool,
    /// MTU of `tunl0` (0: the MTU of the interface holding
    /// [`Desired::local_v4`] less IP-in-IP's 20 bytes).
    pub ipip_mtu: u32,
    /// This node's IPv4 address.
    pub local_v4: Option<Ipv4Addr>,
    /// workload address → interface.
    pub workload_routes: BTreeMap<IpNet, String>,
    /// Things this node cannot program, said in readiness and logs.
    pub problems: Vec<String>,
    /// calico-node's nftables table (NAT outgoing, floating IPs,
    /// anti-spoofing), as one `nft -f` document.
    pub nft: String,
}

/// One thing a block puts in the dataplane (a route, or a VXLAN
/// neighbour or forwarding entry its route needs). Neighbour and forwarding
/// entries are shared by every block of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Item {
    /// This node's block.
    Blackhole(IpNet),
    /// (remote block, remote tunnel address) through `vxlan.calico`.
    VxlanRoute(IpNet, IpAddr),
    /// (remote tunnel address, remote VXLAN MAC).
    Neighbour(IpAddr, [u8; 6]),
    /// (remote VXLAN MAC, remote node address).
    Fdb([u8; 6], IpAddr),
    /// (remote block, remote node address): same-subnet CrossSubnet.
    DirectRoute(IpNet, IpAddr),
    /// (remote block, remote node address) through `tunl0`.
    IpipRoute(IpNet, IpAddr),
}

/// What every block's items depend on besides the block, its pool and its
/// node: who we are, our subnet, whether we have a VXLAN device.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// This node's name.
    pub me: &'a str,
    /// This node's IPv4 subnet.
    pub my_subnet: Option<IpNet>,
    /// This node has its VXLAN device.
    pub vxlan: bool,
    /// Routes into IP-in-IP pools are programmed here.
    pub ipip_routes: bool,
}

/// The first enabled pool holding `block` (pools in name order).
pub fn pool_of<'p>(
    pools: impl IntoIterator<Item = &'p PoolInfo>,
    block: &IpNet,
) -> Option<&'p PoolInfo> {
    pools
        .into_iter()
        .filter(|p| !p.disabled)
        .find(|p| p.cidr.contains(&block.network()))
}

/// The items of one block (`pool`: [`pool_of`] it; `node`: its owner's).
pub fn block_items(
    ctx: &Context<'_>,
    b: &BlockInfo,
    pool: Option<&PoolInfo>,
    node: Option<&NodeInfo>,
) -> Vec<Item> {
    let mut out = Vec::new();
    let Some(owner) = &b.node else { return out };
    if owner == ctx.me {
        out.push(Item::Blackhole(b.cidr));
        return out;
    }
    // Other nodes' IPv6 blocks are reached through BGP (no IPv6 tunnels here).
    if b.cidr.addr().is_ipv6() {
        return out;
    }
    let (Some(pool), Some(node)) = (pool, node) else {
        return out;
    };
    let Some(node_addr) = node.ipv4 else {
        return out;
    };
    let same_subnet = ctx
        .my_subnet
        .is_some_and(|sub| sub.contains(&node_addr.addr()));
    match pool.ipip {
        _ if !ctx.ipip_routes => {}
        Encap::Never => {}
        Encap::CrossSubnet if same_subnet => out.push(Item::DirectRoute(b.cidr, node_addr.addr())),
        Encap::Always | Encap::CrossSubnet => out.push(Item::IpipRoute(b.cidr, node_addr.addr())),
    }
    match pool.vxlan {
        Encap::Never => {}
        Encap::CrossSubnet if same_subnet => out.push(Item::DirectRoute(b.cidr, node_addr.addr())),
        Encap::Always | Encap::CrossSubnet => {
            if let (true, Some(tunnel), Some(mac)) = (ctx.vxlan, node.vxlan_tunnel, node.vxlan_mac)
            {
                out.push(Item::VxlanRoute(b.cidr, IpAddr::V4(tunnel)));
                out.push(Item::Neighbour(IpAddr::V4(tunnel), mac));
                out.push(Item::Fdb(mac, node_addr.addr()));
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

impl Desired {
    /// Puts `item` in.
    pub fn insert(&mut self, item: Item) {
        match item {
            Item::Blackhole(n) => {
                self.blackholes.insert(n);
            }
            Item::VxlanRoute(n, a) => {
                self.vxlan_routes.insert((n, a));
            }
            Item::Neighbour(a, m) => {
                self.neighbours.insert((a, m));
            }
            Item::Fdb(m, a) => {
                self.fdb.insert((m, a));
            }
            Item::DirectRoute(n, a) => {
                self.direct_routes.insert((n, a));
            }
            Item::IpipRoute(n, a) => {
                self.ipip_routes.insert((n, a));
            }
        }
    }

    /// Takes `item` out.
    pub fn remove(&mut self, item: &Item) {
        match *item {
            Item::Blackhole(n) => {
                self.blackholes.remove(&n);
            }
            Item::VxlanRoute(n, a) => {
                self.vxlan_routes.remove(&(n, a));
            }
            Item::Neighbour(a, m) => {
                self.neighbours.remove(&(a, m));
            }
            Item::Fdb(m, a) => {
                self.fdb.remove(&(m, a));
            }
            Item::DirectRoute(n, a) => {
                self.direct_routes.remove(&(n, a));
            }
            Item::IpipRoute(n, a) => {
                self.ipip_routes.remove(&(n, a));
            }
        }
    }
}

/// Everything of [`Desired`] that is not a block's item or a workload
/// route: the devices, this node's address, the problems; and the
/// [`Context`] the blocks are computed in.
pub fn globals<'s>(
    me: &'s str,
    my_node: Option<&NodeInfo>,
    pools: &[&PoolInfo],
    settings: &Settings,
) -> (Desired, Context<'s>) {
    let mut d = Desired::default();
    let uses_vxlan = pools.iter().any(|p| !p.disabled && p.vxlan != Encap::Never);
    if let Some(me) = my_node
        && uses_vxlan
    {
        match (me.ipv4, me.vxlan_tunnel, me.vxlan_mac) {
            (Some(local), Some(tunnel), Some(mac)) => {
                if let IpAddr::V4(local) = local.addr() {
                    d.vxlan = Some(VxlanDevice {
                        vni: settings.vxlan_vni,
                        port: settings.vxlan_port,
                        local,
                        mac,
                        tunnel,
                        mtu: settings.vxlan_mtu,
                    });
                }
            }
            _ => d.problems.push(
                "VXLAN pools exist but this node has no IPv4 address or tunnel address yet".into(),
            ),
        }
    }
    d.ipip = pools.iter().any(|p| !p.disabled && p.ipip != Encap::Never);
    d.ipip_mtu = settings.ipip_mtu;
    d.local_v4 = my_node.and_then(|m| match m.ipv4?.addr() {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    });
    let ctx = Context {
        me,
        my_subnet: my_node.and_then(|n| n.ipv4).map(|n| n.trunc()),
        vxlan: d.vxlan.is_some(),
        ipip_routes: settings.ipip_routes,
    };
    (d, ctx)
}

/// The addresses of every node (NAT outgoing exclusions, policy's hosts).
pub fn host_ips<'n>(nodes: impl IntoIterator<Item = &'n NodeInfo>) -> Vec<IpAddr> {
    nodes
        .into_iter()
        .flat_map(|n| [n.ipv4, n.ipv6])
        .flatten()
        .map(|n| n.addr())
        .collect()
}

/// Computes the desired dataplane from scratch (the oracle of the
/// incremental engine, `crate::engine`).
pub fn desired(s: &Snapshot) -> Desired {
    let me = s.nodes.iter().find(|n| n.name == s.me);
    let pools: Vec<&PoolInfo> = s.pools.iter().collect();
    let (mut d, ctx) = globals(&s.me, me, &pools, &s.settings);
    for b in &s.blocks {
        let node = b
            .node
            .as_ref()
            .and_then(|o| s.nodes.iter().find(|n| &n.name == o));
        for item in block_items(&ctx, b, pool_of(&s.pools, &b.cidr), node) {
            d.insert(item);
        }
    }
    for w in &s.workloads {
        for n in &w.nets {
            d.workload_routes.insert(*n, w.iface.clone());
        }
    }
    d.nft = super::nat::ruleset(&s.pools, &s.workloads, &host_ips(&s.nodes), &s.settings.nat);
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, ip: &str, tunnel: Option<&str>, mac: u8) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            ipv4: Some(ip.parse().unwrap()),
            ipv6: None,
            vxlan_tunnel: tunnel.map(|t| t.parse().unwrap()),
            vxlan_mac: tunnel.map(|_| [0x66, 0, 0, 0, 0, mac]),
        }
    }

    fn block(cidr: &str, n: Option<&str>) -> BlockInfo {
        BlockInfo {
            cidr: cidr.parse().unwrap(),
            node: n.map(str::to_string),
        }
    }

    fn pool(cidr: &str, vxlan: Encap) -> PoolInfo {
        PoolInfo {
            cidr: cidr.parse().unwrap(),
            vxlan,
            ipip: Encap::Never,
            nat_outgoing: true,
            disabled: false,
        }
    }

    fn snap(vxlan: Encap) -> Snapshot {
        Snapshot {
            me: "a".into(),
            nodes: vec![
                node("a", "172.31.0.1/24", Some("10.81.0.0"), 1),
                node("b", "172.31.0.2/24", Some("10.81.0.64"), 2),
                node("c", "172.30.0.3/24", Some("10.81.0.128"), 3),
            ],
            blocks: vec![
                block("10.81.0.0/26", Some("a")),
                block("10.81.0.64/26", Some("b")),
                block("10.81.0.128/26", Some("c")),
                block("10.81.0.192/26", None),
            ],
            pools: vec![pool("10.81.0.0/16", vxlan)],
            workloads: vec![WorkloadInfo {
                iface: "cali0123456789a".into(),
                nets: vec!["10.81.0.5/32".parse().unwrap()],
                nats: Vec::new(),
                allow_spoof: Vec::new(),
                openstack: false,
            }],
            settings: Settings::default(),
        }
    }

    #[test]
    fn ipv6_blocks_blackholed_here_routed_by_bgp_elsewhere() {
        let mut s = snap(Encap::Always);
        s.pools.push(pool("fd00:81::/112", Encap::Always));
        s.blocks.push(block("fd00:81::/122", Some("a")));
        s.blocks.push(block("fd00:81::40/122", Some("b")));
        let d = desired(&s);
        assert!(d.blackholes.contains(&"fd00:81::/122".parse().unwrap()));
        assert!(
            d.vxlan_routes
                .iter()
                .chain(&d.direct_routes)
                .chain(&d.ipip_routes)
                .all(|(b, _)| b.addr().is_ipv4()),
            "no route to b's IPv6 block through an IPv4 tunnel"
        );
    }

    #[test]
    fn vxlan_always() {
        let d = desired(&snap(Encap::Always));
        assert_eq!(
            d.blackholes
                .iter()
                .map(|b| b.to_string())
                .collect::<Vec<_>>(),
            ["10.81.0.0/26"]
        );
        let dev = d.vxlan.clone().unwrap();
        assert_eq!(
            (dev.vni, dev.port, dev.tunnel.to_string()),
            (4096, 4789, "10.81.0.0".into())
        );
        assert_eq!(d.vxlan_routes.len(), 2);
        assert!(d.vxlan_routes.contains(&(
            "10.81.0.64/26".parse().unwrap(),
            "10.81.0.64".parse().unwrap()
        )));
        assert!(
            d.neighbours
                .contains(&("10.81.0.128".parse().unwrap(), [0x66, 0, 0, 0, 0, 3]))
        );
        assert!(
            d.fdb
                .contains(&([0x66, 0, 0, 0, 0, 2], "172.31.0.2".parse().unwrap()))
        );
        assert!(d.direct_routes.is_empty());
        assert_eq!(d.workload_routes.len(), 1);
        assert!(d.problems.is_empty());
    }

    #[test]
    fn cross_subnet_and_never() {
        let d = desired(&snap(Encap::CrossSubnet));
        // b shares a's subnet: direct; c does not: VXLAN.
        assert_eq!(
            d.direct_routes.iter().cloned().collect::<Vec<_>>(),
            vec![(
                "10.81.0.64/26".parse().unwrap(),
                "172.31.0.2".parse().unwrap()
            )]
        );
        assert_eq!(d.vxlan_routes.len(), 1);
        let d = desired(&snap(Encap::Never));
        assert!(d.vxlan.is_none() && d.vxlan_routes.is_empty() && d.direct_routes.is_empty());
        assert_eq!(
            d.blackholes.len(),
            1,
            "blackholes do not depend on encapsulation"
        );
    }

    #[test]
    fn incomplete_nodes_are_skipped_and_reported() {
        let mut s = snap(Encap::Always);
        s.nodes[1].vxlan_tunnel = None;
        s.nodes[2].ipv4 = None;
        let d = desired(&s);
        assert!(d.vxlan_routes.is_empty(), "{:?}", d.vxlan_routes);
        s.nodes[0].vxlan_tunnel = None;
        let d = desired(&s);
        assert!(d.vxlan.is_none());
        assert_eq!(d.problems.len(), 1);
    }

    #[test]
    fn ipip_routes_through_tunl0() {
        let mut s = snap(Encap::Never);
        s.pools[0].ipip = Encap::Always;
        let d = desired(&s);
        assert!(d.ipip);
        assert_eq!(d.ipip_routes.len(), 2);
        assert!(d.ipip_routes.contains(&(
            "10.81.0.128/26".parse().unwrap(),
            "172.30.0.3".parse().unwrap()
        )));
        assert!(d.vxlan.is_none());
        s.pools[0].ipip = Encap::CrossSubnet;
        let d = desired(&s);
        assert_eq!(d.ipip_routes.len(), 1, "only node c is across subnets");
        assert_eq!(d.direct_routes.len(), 1);
        // With the BGP speaker these routes are BGP's; tunl0 still comes up.
        s.settings.ipip_routes = false;
        let d = desired(&s);
        assert!(d.ipip);
        assert!(d.ipip_routes.is_empty() && d.direct_routes.is_empty());
        // tunl0's MTU: ipipMTU, or (0) worked out from this node's address.
        assert_eq!(d.ipip_mtu, 0);
        assert!(d.local_v4.is_some(), "{d:?}");
        s.settings.ipip_mtu = 1440;
        assert_eq!(desired(&s).ipip_mtu, 1440);
    }
}
