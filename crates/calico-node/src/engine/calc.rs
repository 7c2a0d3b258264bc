//! The calculation: datastore changes in, dataplane deltas out. Pure (no
//! I/O, no clock), like the BGP state machine's `step`: [`Calc::apply`]
//! takes one [`Change`], [`Calc::take`] hands over what the changes since
//! the last call mean for the kernel.
//!
//! Each change costs what it touches:
//! - a block: its own routes (`felix::model::block_items`), with
//!   neighbour and forwarding entries counted by reference, since a node's
//!   blocks share them; and its share of the BGP inputs;
//! - another node: the routes of its blocks (blocks indexed by node); its
//!   address in the hosts set;
//! - a workload endpoint: policy's selector index (`calico_policy::Incremental`),
//!   and for a local one its routes and the `inet calico` table;
//! - a policy, profile, tier or network set: that, in policy;
//! - this node, a pool, the Felix settings (rare): everything is recomputed
//!   from the held state, still without reading the datastore.
//!
//! The from-scratch computations (`felix::model::desired`, `calico_policy::Engine`)
//! are the oracle: `tests/engine.rs` drives random change sequences
//! through both and requires equal results after every step.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

use calico_api::meta::Object;
use calico_api::resources::WorkloadEndpointSpec;
use calico_api::{Document, Kind, Resource};
use calico_datastore::Client;
use calico_policy::incremental::{Incremental, Item as PolicyItem, ItemId};
use ipnet::IpNet;
use serde_json::{Map, Value};

use super::cache::{Change, Class, classify};
use crate::bgp::blocks::{BlockShare, share};
use crate::felix::model::{
    BlockInfo, Context, Desired, Item, NodeInfo, PoolInfo, Settings, WorkloadInfo, block_items,
    globals, host_ips, pool_of,
};
use crate::felix::settings::{self, Effective};
use crate::felix::{nat, sync};

/// The state everything is computed from, and what is computed.
pub struct Calc {
    me: String,
    env: std::collections::BTreeMap<String, Value>,
    bgp: bool,
    felix_default: Map<String, Value>,
    felix_node: Map<String, Value>,
    eff: Effective,
    felix_problems: Vec<String>,
    settings: Settings,
    spoofing: bool,
    locked: bool,
    nodes: BTreeMap<String, NodeInfo>,
    pools: BTreeMap<String, PoolInfo>,
    blocks: HashMap<String, BlockInfo>,
    blocks_of: HashMap<String, BTreeSet<String>>,
    items_of: HashMap<String, Vec<Item>>,
    refs: HashMap<Item, u32>,
    ctx: OwnedContext,
    desired: Desired,
    local: BTreeMap<String, WorkloadInfo>,
    wl_routes: BTreeMap<IpNet, BTreeMap<String, String>>,
    spoofers: BTreeMap<String, Object<WorkloadEndpointSpec>>,
    /// Hashes of the keys of the endpoints admitted (for the count).
    weps: HashSet<u64>,
    dropped: BTreeMap<String, String>,
    skipped: BTreeMap<String, String>,
    policy: Incremental,
    policy_settings_problems: Vec<String>,
    hosts: Vec<IpAddr>,
    bgp_resources: BTreeMap<String, Resource>,
    bgp_blocks: HashMap<String, BlockShare>,
    out: Pending,
}

#[derive(Debug, Clone, Default)]
struct OwnedContext {
    my_subnet: Option<IpNet>,
    vxlan: bool,
    ipip_routes: bool,
}

#[derive(Debug, Default)]
struct Pending {
    items: Vec<(Item, bool)>,
    workload_routes: BTreeMap<IpNet, Option<String>>,
    /// Each changed workload route's interface when the window opened
    /// (as the last flush left it).
    wl_before: BTreeMap<IpNet, Option<String>>,
    full_routes: bool,
    nat_dirty: bool,
    bgp_dirty: bool,
    problems_dirty: bool,
}

/// What the changes since the last [`Calc::take`] mean for the kernel.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Flush {
    /// Items added (`true`) or removed, in order.
    pub items: Vec<(Item, bool)>,
    /// Workload routes whose interface changed (`None`: no longer routed).
    pub workload_routes: BTreeMap<IpNet, Option<String>>,
    /// Workload addresses whose route went or moved to another interface:
    /// their conntrack entries are to be deleted, as Felix does, so no
    /// flow outlives its endpoint or passes to the address's next pod.
    pub forget: BTreeSet<IpAddr>,
    /// Something global changed (devices, this node's address, pools,
    /// settings): the route writer should bring everything in line.
    pub full_routes: bool,
    /// The new `inet calico` document, when it changed.
    pub nat: Option<String>,
    /// The `inet calico-policy` transaction (empty when nothing changed).
    pub policy: calico_policy::Transaction,
    /// The BGP inputs, when they changed.
    pub bgp: Option<BgpView>,
}

impl Flush {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
            && self.workload_routes.is_empty()
            && self.forget.is_empty()
            && !self.full_routes
            && self.nat.is_none()
            && self.policy.is_empty()
            && self.bgp.is_none()
    }
}

/// What the BGP speaker plans from (the datastore part of `bgp::plan::Inputs`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BgpView {
    /// Nodes, BGPConfigurations, BGPPeers, BGPFilters and IPPools, in key order.
    pub resources: Vec<Resource>,
    /// Blocks affine to this node.
    pub my_blocks: Vec<IpNet>,
    /// Addresses this node took from other nodes' blocks.
    pub borrowed: Vec<IpNet>,
    /// This node's workload addresses in its blocks.
    pub workloads: Vec<IpNet>,
}

fn is_bgp_kind(k: Kind) -> bool {
    matches!(
        k,
        Kind::Node | Kind::BGPConfiguration | Kind::BGPPeer | Kind::BGPFilter | Kind::IPPool
    )
}

fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// `(namespace, name)` of a resource key (`…/<plural>/[<ns>/]<name>`).
fn key_names(key: &str, namespaced: bool) -> (Option<String>, String) {
    let mut parts = key.rsplitn(3, '/');
    let name = parts.next().unwrap_or("").to_string();
    let ns = namespaced.then(|| parts.next().unwrap_or("").to_string());
    (ns, name)
}

fn policy_id(kind: Kind, key: &str) -> Option<ItemId> {
    let (ns, name) = key_names(key, kind.namespaced());
    let namespace = ns.unwrap_or_default();
    Some(match kind {
        Kind::Tier => ItemId::Tier(name),
        Kind::NetworkPolicy => ItemId::NetworkPolicy { namespace, name },
        Kind::GlobalNetworkPolicy => ItemId::GlobalNetworkPolicy(name),
        Kind::Profile => ItemId::Profile(name),
        Kind::NetworkSet => ItemId::NetworkSet { namespace, name },
        Kind::GlobalNetworkSet => ItemId::GlobalNetworkSet(name),
        Kind::WorkloadEndpoint => ItemId::WorkloadEndpoint { namespace, name },
        Kind::HostEndpoint => ItemId::HostEndpoint(name),
        _ => return None,
    })
}

impl Calc {
    /// Nothing known yet. `env` is the `FELIX_*` layer; `bgp` says whether
    /// this node's BGP speaker programs routes into IP-in-IP pools.
    pub fn new(me: &str, env: BTreeMap<String, Value>, bgp: bool) -> Calc {
        let mut c = Calc {
            me: me.to_string(),
            env,
            bgp,
            felix_default: Map::new(),
            felix_node: Map::new(),
            eff: Effective::default(),
            felix_problems: Vec::new(),
            settings: Settings::default(),
            spoofing: false,
            locked: false,
            nodes: BTreeMap::new(),
            pools: BTreeMap::new(),
            blocks: HashMap::new(),
            blocks_of: HashMap::new(),
            items_of: HashMap::new(),
            refs: HashMap::new(),
            ctx: OwnedContext::default(),
            desired: Desired::default(),
            local: BTreeMap::new(),
            wl_routes: BTreeMap::new(),
            spoofers: BTreeMap::new(),
            weps: HashSet::new(),
            dropped: BTreeMap::new(),
            skipped: BTreeMap::new(),
            policy: Incremental::new(calico_policy::Settings::default()),
            policy_settings_problems: Vec::new(),
            hosts: Vec::new(),
            bgp_resources: BTreeMap::new(),
            bgp_blocks: HashMap::new(),
            out: Pending::default(),
        };
        c.felix_changed(true);
        c.recompute_globals();
        c.out.nat_dirty = true;
        c
    }

    /// Takes in one change.
    pub fn apply(&mut self, change: Change) {
        let key = change.key().to_string();
        match classify(&key) {
            Class::Ignored => {}
            Class::Block => {
                let decoded = match &change {
                    Change::Put(kv) => match sync::decode_block(kv) {
                        Ok(b) => Some(b),
                        Err(e) => {
                            self.skip(&key, e);
                            None
                        }
                    },
                    Change::Delete(_) => None,
                };
                if decoded.is_some() || matches!(change, Change::Delete(_)) {
                    self.unskip(&key);
                }
                self.set_block(&key, decoded);
            }
            Class::KubernetesNetworkPolicy => {
                let (ns, name) = key_names(&key, true);
                let id = ItemId::KubernetesNetworkPolicy {
                    namespace: ns.unwrap_or_default(),
                    name,
                };
                match Self::decode(&change) {
                    Some(Ok(Document::KubernetesNetworkPolicy(np))) => {
                        self.unskip(&key);
                        self.policy.upsert(PolicyItem::KubernetesNetworkPolicy(np));
                    }
                    other => {
                        if let Some(Err(e)) = other {
                            self.skip(&key, e);
                        } else {
                            self.unskip(&key);
                        }
                        self.policy.remove(&id);
                    }
                }
            }
            Class::Resource(kind) => {
                let r = match Self::decode(&change) {
                    Some(Ok(Document::Calico(r))) if r.kind() == kind => {
                        self.unskip(&key);
                        Some(r)
                    }
                    Some(Ok(_)) => {
                        self.skip(&key, format!("{key}: not a {kind:?}"));
                        None
                    }
                    Some(Err(e)) => {
                        self.skip(&key, e);
                        None
                    }
                    None => {
                        self.unskip(&key);
                        None
                    }
                };
                self.set_resource(kind, &key, r, &change);
            }
        }
    }

    fn decode(change: &Change) -> Option<Result<Document, String>> {
        match change {
            Change::Put(kv) => Some(Client::decode(kv).map_err(|e| e.to_string())),
            Change::Delete(_) => None,
        }
    }

    fn skip(&mut self, key: &str, why: String) {
        if self.skipped.get(key) != Some(&why) {
            log::warn!("skipped {why}");
            self.skipped.insert(key.to_string(), why);
        }
    }

    fn unskip(&mut self, key: &str) {
        self.skipped.remove(key);
    }

    fn set_resource(&mut self, kind: Kind, key: &str, r: Option<Resource>, change: &Change) {
        if is_bgp_kind(kind) {
            let changed = match &r {
                Some(r) => {
                    self.bgp_resources
                        .insert(key.to_string(), r.clone())
                        .as_ref()
                        != Some(r)
                }
                None => self.bgp_resources.remove(key).is_some(),
            };
            self.out.bgp_dirty |= changed;
        }
        match kind {
            Kind::Node => {
                let (_, name) = key_names(key, false);
                let info = match &r {
                    Some(Resource::Node(n)) => Some(sync::node_info(n)),
                    _ => None,
                };
                self.set_node(&name, info);
            }
            Kind::IPPool => {
                let (_, name) = key_names(key, false);
                let info = match &r {
                    Some(Resource::IPPool(p)) => sync::pool_info(p),
                    _ => None,
                };
                let changed = match info {
                    Some(i) => self.pools.insert(name, i.clone()) != Some(i),
                    None => self.pools.remove(&name).is_some(),
                };
                if changed {
                    self.recompute_all();
                    self.out.nat_dirty = true;
                }
            }
            Kind::FelixConfiguration => {
                let (_, name) = key_names(key, false);
                let spec = match change {
                    Change::Put(kv) => settings::spec_from_json(&kv.value).unwrap_or_default(),
                    Change::Delete(_) => Map::new(),
                };
                if name == "default" {
                    self.felix_default = spec;
                } else if name == format!("node.{}", self.me) {
                    self.felix_node = spec;
                } else {
                    return;
                }
                self.felix_changed(false);
            }
            Kind::ClusterInformation => {
                let (_, name) = key_names(key, false);
                if name == "default" {
                    self.locked = matches!(&r, Some(Resource::ClusterInformation(ci))
                        if ci.spec.datastore_ready == Some(false));
                }
            }
            Kind::WorkloadEndpoint => {
                let w = match r {
                    Some(Resource::WorkloadEndpoint(w)) => Some(w),
                    _ => None,
                };
                self.set_workload(key, w);
            }
            _ => {
                let Some(id) = policy_id(kind, key) else {
                    return;
                };
                match r.and_then(|r| PolicyItem::from_resource(r, &self.me)) {
                    Some(item) => self.policy.upsert(item),
                    None => self.policy.remove(&id),
                }
            }
        }
    }

    fn set_node(&mut self, name: &str, info: Option<NodeInfo>) {
        let old = match &info {
            Some(i) => self.nodes.insert(name.to_string(), i.clone()),
            None => self.nodes.remove(name),
        };
        if old == info {
            return;
        }
        if old.as_ref().map(|n| (n.ipv4, n.ipv6)) != info.as_ref().map(|n| (n.ipv4, n.ipv6)) {
            self.out.nat_dirty = true;
            self.hosts_changed();
        }
        if name == self.me {
            self.recompute_all();
            return;
        }
        let keys: Vec<String> = self
            .blocks_of
            .get(name)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        for k in keys {
            self.refresh_block(&k);
        }
    }

    fn hosts_changed(&mut self) {
        let hosts: Vec<IpAddr> = self
            .nodes
            .values()
            .filter_map(|n| n.ipv4.map(|a| a.addr()))
            .collect();
        if hosts != self.hosts {
            self.hosts = hosts;
            self.policy_settings();
        }
    }

    fn set_block(&mut self, key: &str, b: Option<(BlockInfo, calico_ipam::Block)>) {
        let (info, block) = match b {
            Some((i, b)) => (Some(i), Some(b)),
            None => (None, None),
        };
        // BGP's share of it.
        let new_share = block.map(|b| share(&b, &self.me)).unwrap_or_default();
        let old_share = if new_share.is_empty() {
            self.bgp_blocks.remove(key)
        } else {
            self.bgp_blocks.insert(key.to_string(), new_share.clone())
        };
        if old_share.unwrap_or_default() != new_share {
            self.out.bgp_dirty = true;
        }
        // Felix's.
        let old = match &info {
            Some(i) => self.blocks.insert(key.to_string(), i.clone()),
            None => self.blocks.remove(key),
        };
        if old.as_ref().and_then(|b| b.node.clone()) != info.as_ref().and_then(|b| b.node.clone()) {
            if let Some(owner) = old.as_ref().and_then(|b| b.node.as_ref())
                && let Some(set) = self.blocks_of.get_mut(owner)
            {
                set.remove(key);
                if set.is_empty() {
                    self.blocks_of.remove(owner);
                }
            }
            if let Some(owner) = info.as_ref().and_then(|b| b.node.as_ref()) {
                self.blocks_of
                    .entry(owner.clone())
                    .or_default()
                    .insert(key.to_string());
            }
        }
        if old != info {
            self.refresh_block(key);
        }
    }

    /// Recomputes one block's items and applies the difference.
    fn refresh_block(&mut self, key: &str) {
        let new = match self.blocks.get(key) {
            Some(b) => {
                let ctx = Context {
                    me: &self.me,
                    my_subnet: self.ctx.my_subnet,
                    vxlan: self.ctx.vxlan,
                    ipip_routes: self.ctx.ipip_routes,
                };
                let node = b.node.as_ref().and_then(|n| self.nodes.get(n));
                block_items(&ctx, b, pool_of(self.pools.values(), &b.cidr), node)
            }
            None => Vec::new(),
        };
        let old = if new.is_empty() {
            self.items_of.remove(key).unwrap_or_default()
        } else {
            self.items_of
                .insert(key.to_string(), new.clone())
                .unwrap_or_default()
        };
        if old == new {
            return;
        }
        for item in &old {
            if !new.contains(item) {
                self.unref(*item);
            }
        }
        for item in new {
            if !old.contains(&item) {
                self.addref(item);
            }
        }
    }

    fn addref(&mut self, item: Item) {
        let n = self.refs.entry(item).or_insert(0);
        *n += 1;
        if *n == 1 {
            self.desired.insert(item);
            self.out.items.push((item, true));
        }
    }

    fn unref(&mut self, item: Item) {
        if let Some(n) = self.refs.get_mut(&item) {
            *n -= 1;
            if *n == 0 {
                self.refs.remove(&item);
                self.desired.remove(&item);
                self.out.items.push((item, false));
            }
        }
    }

    /// This node, the pools or the settings changed: the globals again, and
    /// every block in their light.
    fn recompute_all(&mut self) {
        self.recompute_globals();
        let keys: Vec<String> = self.blocks.keys().cloned().collect();
        for k in keys {
            self.refresh_block(&k);
        }
    }

    fn recompute_globals(&mut self) {
        let pools: Vec<&PoolInfo> = self.pools.values().collect();
        let (g, ctx) = globals(&self.me, self.nodes.get(&self.me), &pools, &self.settings);
        let owned = OwnedContext {
            my_subnet: ctx.my_subnet,
            vxlan: ctx.vxlan,
            ipip_routes: ctx.ipip_routes,
        };
        let d = &mut self.desired;
        if (
            d.vxlan.as_ref(),
            d.ipip,
            d.ipip_mtu,
            d.local_v4,
            &d.problems,
        ) != (
            g.vxlan.as_ref(),
            g.ipip,
            g.ipip_mtu,
            g.local_v4,
            &g.problems,
        ) {
            d.vxlan = g.vxlan;
            d.ipip = g.ipip;
            d.ipip_mtu = g.ipip_mtu;
            d.local_v4 = g.local_v4;
            d.problems = g.problems;
            self.out.full_routes = true;
        }
        self.ctx = owned;
    }

    fn felix_changed(&mut self, first: bool) {
        let (eff, problems) = settings::layered(
            self.felix_default.clone(),
            self.felix_node.clone(),
            &self.env,
            &self.me,
        );
        if !first && eff == self.eff && problems == self.felix_problems {
            return;
        }
        for p in &problems {
            if !self.felix_problems.contains(p) {
                log::warn!("felix configuration: {p}");
            }
        }
        if let Some(level) = eff
            .0
            .log_severity_screen
            .as_deref()
            .and_then(|l| calico_log::parse_level(l).ok())
        {
            calico_log::set_level(level);
        }
        self.eff = eff;
        self.felix_problems = problems;
        self.out.problems_dirty = true;
        let mut dataplane = self.eff.dataplane();
        // With the BGP speaker, routes into IP-in-IP pools come from BGP (as
        // BIRD programs them in Calico).
        dataplane.ipip_routes = !self.bgp;
        if first || dataplane != self.settings {
            if dataplane.nat != self.settings.nat {
                self.out.nat_dirty = true;
            }
            self.settings = dataplane;
            self.recompute_all();
        }
        self.policy_settings();
        let spoofing = self.eff.source_spoofing_allowed();
        if spoofing != self.spoofing {
            self.spoofing = spoofing;
            let again: Vec<(String, Object<WorkloadEndpointSpec>)> = self
                .spoofers
                .iter()
                .map(|(k, w)| (k.clone(), w.clone()))
                .collect();
            for (k, w) in again {
                self.set_workload(&k, Some(w));
            }
        }
    }

    fn policy_settings(&mut self) {
        let (mut s, problems) = self.eff.policy();
        s.hosts = self.hosts.clone();
        self.policy_settings_problems = problems;
        self.policy.set_settings(s);
    }

    fn set_workload(&mut self, key: &str, w: Option<Object<WorkloadEndpointSpec>>) {
        let id = policy_id(Kind::WorkloadEndpoint, key);
        // Felix's validation filter: an endpoint that fails it is missing.
        let w = match w {
            Some(w) => {
                if w.spec.allow_spoofed_source_prefixes.is_empty() {
                    self.spoofers.remove(key);
                } else {
                    self.spoofers.insert(key.to_string(), w.clone());
                }
                let r = Resource::WorkloadEndpoint(w);
                match sync::admit_one(&r, self.spoofing) {
                    Ok(()) => {
                        if self.dropped.remove(key).is_some() {
                            self.out.problems_dirty = true;
                        }
                        match r {
                            Resource::WorkloadEndpoint(w) => Some(w),
                            _ => None,
                        }
                    }
                    Err(why) => {
                        if self.dropped.get(key) != Some(&why) {
                            log::warn!("skipped {why}");
                            self.dropped.insert(key.to_string(), why);
                            self.out.problems_dirty = true;
                        }
                        None
                    }
                }
            }
            None => {
                self.spoofers.remove(key);
                if self.dropped.remove(key).is_some() {
                    self.out.problems_dirty = true;
                }
                None
            }
        };
        let local = w
            .as_ref()
            .filter(|w| w.spec.node == self.me)
            .map(sync::workload_info);
        self.set_local(key, local);
        let h = fnv(key);
        match w.and_then(|w| PolicyItem::from_resource(Resource::WorkloadEndpoint(w), &self.me)) {
            Some(item) => {
                self.weps.insert(h);
                self.policy.upsert(item);
            }
            None => {
                if self.weps.remove(&h)
                    && let Some(id) = &id
                {
                    self.policy.remove(id);
                }
            }
        }
    }

    fn set_local(&mut self, key: &str, info: Option<WorkloadInfo>) {
        let old = match &info {
            Some(i) => self.local.insert(key.to_string(), i.clone()),
            None => self.local.remove(key),
        };
        if old == info {
            return;
        }
        self.out.nat_dirty = true;
        let old_nets = old.map(|o| o.nets).unwrap_or_default();
        let new_nets = info.as_ref().map(|i| i.nets.clone()).unwrap_or_default();
        let mut touched: BTreeSet<IpNet> = BTreeSet::new();
        for n in &old_nets {
            if let Some(m) = self.wl_routes.get_mut(n) {
                m.remove(key);
                if m.is_empty() {
                    self.wl_routes.remove(n);
                }
            }
            touched.insert(*n);
        }
        if let Some(i) = &info {
            for n in &new_nets {
                self.wl_routes
                    .entry(*n)
                    .or_default()
                    .insert(key.to_string(), i.iface.clone());
                touched.insert(*n);
            }
        }
        for n in touched {
            // As the from-scratch computation: the endpoint last in key order wins.
            let now = self
                .wl_routes
                .get(&n)
                .and_then(|m| m.values().next_back().cloned());
            let before = self.desired.workload_routes.get(&n).cloned();
            if now != before {
                self.out
                    .wl_before
                    .entry(n)
                    .or_insert_with(|| before.clone());
                match &now {
                    Some(i) => self.desired.workload_routes.insert(n, i.clone()),
                    None => self.desired.workload_routes.remove(&n),
                };
                self.out.workload_routes.insert(n, now);
            }
        }
    }

    /// Hands over what changed since the last call.
    pub fn take(&mut self) -> Flush {
        self.take_with(false)
    }

    /// [`Calc::take`] for a caller about to load the policy table whole:
    /// the flush carries no policy transaction (making one would cost as
    /// much as the whole table, to be thrown away).
    pub fn take_with(&mut self, policy_whole: bool) -> Flush {
        let out = std::mem::take(&mut self.out);
        // Gone or moved since the last flush (not in between: a route
        // that came and went within one window never reached the kernel).
        let forget = out
            .workload_routes
            .iter()
            .filter(|(n, now)| {
                n.prefix_len() == n.max_prefix_len()
                    && matches!(out.wl_before.get(n), Some(Some(b)) if now.as_ref() != Some(b))
            })
            .map(|(n, _)| n.addr())
            .collect();
        let mut flush = Flush {
            items: out.items,
            workload_routes: out.workload_routes,
            forget,
            full_routes: out.full_routes,
            ..Flush::default()
        };
        if out.nat_dirty {
            let doc = self.nat_document();
            if doc != self.desired.nft {
                self.desired.nft.clone_from(&doc);
                flush.nat = Some(doc);
            }
        }
        if policy_whole {
            self.policy.settle();
        } else {
            flush.policy = self.policy.take_transaction();
        }
        if out.bgp_dirty {
            flush.bgp = Some(self.bgp_view());
        }
        flush
    }

    fn nat_document(&self) -> String {
        let pools: Vec<PoolInfo> = self.pools.values().cloned().collect();
        let workloads: Vec<WorkloadInfo> = self.local.values().cloned().collect();
        nat::ruleset(
            &pools,
            &workloads,
            &host_ips(self.nodes.values()),
            &self.settings.nat,
        )
    }

    /// The BGP inputs as they stand.
    pub fn bgp_view(&self) -> BgpView {
        let mut v = BgpView {
            resources: self.bgp_resources.values().cloned().collect(),
            ..BgpView::default()
        };
        let mut shares: Vec<(&String, &BlockShare)> = self.bgp_blocks.iter().collect();
        shares.sort_by(|a, b| a.0.cmp(b.0));
        for (_, s) in shares {
            v.my_blocks.extend(s.mine);
            v.borrowed.extend(s.borrowed.iter().copied());
            v.workloads.extend(s.workloads.iter().copied());
        }
        v
    }

    /// The whole desired routing state (for the resync and the oracle test).
    pub fn desired(&self) -> &Desired {
        &self.desired
    }

    /// The policy state.
    pub fn policy(&self) -> &Incremental {
        &self.policy
    }

    /// Whether the datastore is locked (ClusterInformation `datastoreReady: false`).
    pub fn locked(&self) -> bool {
        self.locked
    }

    /// The effective Felix settings.
    pub fn felix(&self) -> &Effective {
        &self.eff
    }

    /// (nodes, workload endpoints admitted, local ones).
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.nodes.len(), self.weps.len(), self.local.len())
    }

    /// Routes this node owns, and VXLAN neighbours.
    pub fn route_counts(&self) -> (usize, usize) {
        let d = &self.desired;
        (
            d.blackholes.len()
                + d.vxlan_routes.len()
                + d.direct_routes.len()
                + d.ipip_routes.len()
                + d.workload_routes.len(),
            d.neighbours.len(),
        )
    }

    /// What readiness names besides the writers' own problems.
    pub fn problems(&self) -> Vec<String> {
        let mut p = self.desired.problems.clone();
        p.extend(self.felix_problems.iter().cloned());
        p.extend(settings::not_implemented(&self.eff));
        p.extend(self.dropped.values().cloned());
        p.extend(self.policy_settings_problems.iter().cloned());
        p.extend(self.policy.problems().iter().map(ToString::to_string));
        p
    }

    /// Resources that could not be decoded, by key.
    pub fn skipped(&self) -> &BTreeMap<String, String> {
        &self.skipped
    }
}
