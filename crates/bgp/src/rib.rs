//! The RIB (pure): what each peer sent us (one [`AdjRibIn`] per peer),
//! the best path per prefix, and what each peer should have from us
//! ([`Rib::export`]), with Calico's BIRD semantics. No sockets, no threads;
//! time comes in as an [`Instant`] argument.
//!
//! Events go in through [`Rib::apply`] ([`RibEvent`]: our own routes, a
//! session up or down, an UPDATE received) and what they call for comes
//! out ([`RibOutput`]: other sessions must look again at what they send;
//! a peer went past its prefix limit). A session turns [`Rib::export`]
//! into the UPDATEs that bring the peer from what it has to what it should
//! have with [`updates`]; the kernel takes [`Rib::best`] of every prefix.
//!
//! Invariants:
//! - Best path ([`Path::rank`]): highest LOCAL_PREF, then shortest AS path,
//!   then lowest peer address.
//! - An UPDATE whose AS path holds our AS (from another AS), whose
//!   ORIGINATOR_ID is our router id, or whose CLUSTER_LIST holds our
//!   cluster id is a loop: its prefixes are dropped (RFC 4271 §9.1.2,
//!   RFC 4456 §8).
//! - Our own routes ([`Rib::exports`]) go to every peer (its export rules
//!   permitting) with us as next hop; a learned route never replaces one.
//! - Learned routes are passed on by a route reflector (RFC 4456: from a
//!   client to every iBGP peer, from a non-client to clients only;
//!   ORIGINATOR_ID set, our cluster id prepended to CLUSTER_LIST, next hop
//!   kept) and to eBGP peers when inside an exported pool (our AS
//!   prepended, iBGP-only attributes removed, us as next hop unless
//!   `keep_original_next_hop`); never back to the peer they came from, and
//!   a plain iBGP speaker passes none on (split horizon).
//! - A peer's routes kept across its graceful restart (RFC 4724) count
//!   until their stale time; its End-of-RIB removes those it did not send
//!   again.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use ipnet::IpNet;

use crate::msg::{Afi, Attributes, Origin, Segment, Update};
use crate::wire::{self, Context};

/// One learned path (the prefixes of one UPDATE share it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// Where the route goes.
    pub next_hop: IpAddr,
    /// [`Attributes::as_path_len`].
    pub as_path_len: usize,
    /// LOCAL_PREF (100 when the peer sent none).
    pub local_pref: u32,
    /// As received (a route reflector passes them on).
    pub attributes: Attributes,
}

/// The order of paths: the smallest is the best.
pub type Rank = (Reverse<u32>, usize, IpAddr);

impl Path {
    /// The path of `attributes` via `next_hop`.
    pub fn new(next_hop: IpAddr, attributes: &Attributes) -> Path {
        Path {
            next_hop,
            as_path_len: attributes.as_path_len(),
            local_pref: attributes.local_pref.unwrap_or(100),
            attributes: attributes.clone(),
        }
    }

    /// Path preference as `peer`'s: highest LOCAL_PREF, shortest AS path,
    /// lowest peer address (smallest rank first).
    pub fn rank(&self, peer: IpAddr) -> Rank {
        (Reverse(self.local_pref), self.as_path_len, peer)
    }
}

/// What a rule of a peer's import or export policy does with a prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Take (or send) it, even where the defaults would not.
    Accept,
    /// Drop it (or do not send it).
    Reject,
}

/// A peer's import or export policy.
pub trait Policy {
    /// The verdict on `prefix` (`learned`: from a peer, not one of our own
    /// routes), or none: the defaults apply.
    fn verdict(&self, prefix: &IpNet, learned: bool) -> Option<Verdict>;
}

/// No rules: the defaults apply to everything.
impl Policy for () {
    fn verdict(&self, _: &IpNet, _: bool) -> Option<Verdict> {
        None
    }
}

/// Communities attached to one of our own routes.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Communities {
    /// RFC 1997: `aa << 16 | nn`.
    pub standard: Vec<u32>,
    /// RFC 8092: `aa:nn:mm`.
    pub large: Vec<[u32; 3]>,
}

/// Routes from one peer (Adj-RIB-In, after its import policy).
#[derive(Debug, Clone, Default)]
pub struct AdjRibIn {
    /// The prefixes of one UPDATE share their path.
    pub routes: BTreeMap<IpNet, Arc<Path>>,
    /// The session went down gracefully (RFC 4724): its routes are kept,
    /// marked stale, until then, or until the peer's End-of-RIB after it
    /// comes back removes those it did not announce again.
    pub stale_until: Option<Instant>,
    /// The routes kept across the peer's restart and not yet sent again.
    pub stale: BTreeSet<IpNet>,
    /// The peer's BGP identifier (ORIGINATOR_ID of what we reflect).
    pub router_id: Option<Ipv4Addr>,
    /// We reflect for this peer (it is a route reflection client).
    pub rr_client: bool,
    /// Prefixes an import rule of the peer accepted (the caller may let
    /// them where the defaults would not).
    pub accepted: BTreeSet<IpNet>,
}

impl AdjRibIn {
    /// Whether the route to `prefix` is stale past the peer's restart time.
    pub fn expired(&self, prefix: &IpNet, now: Instant) -> bool {
        self.stale_until.is_some_and(|t| t <= now) && self.stale.contains(prefix)
    }

    /// Whether an import rule of the peer accepted `prefix`.
    pub fn accepted(&self, prefix: &IpNet) -> bool {
        !self.accepted.is_empty() && self.accepted.contains(prefix)
    }

    fn remove(&mut self, prefix: &IpNet) {
        self.routes.remove(prefix);
        self.accepted.remove(prefix);
    }
}

/// The RIB of one speaker: its identity, its own routes and every peer's
/// [`AdjRibIn`].
#[derive(Debug, Clone, Default)]
pub struct Rib {
    /// Our AS.
    pub local_as: u32,
    /// Our BGP identifier (none yet: nothing is exported).
    pub router_id: Option<Ipv4Addr>,
    /// We are a route reflector with this cluster id.
    pub cluster_id: Option<Ipv4Addr>,
    /// Our own routes.
    pub exports: BTreeSet<IpNet>,
    /// Communities of our own routes that have any.
    pub communities: BTreeMap<IpNet, Communities>,
    /// Learned routes inside these prefixes pass on to eBGP peers (Calico:
    /// the pools without `disableBGPExport`).
    pub ebgp_passed_on: Vec<IpNet>,
    /// What each peer sent, by peer address.
    pub peers: BTreeMap<IpAddr, AdjRibIn>,
    /// Peers that sent End-of-RIB.
    pub end_of_rib: BTreeSet<IpAddr>,
}

/// Something that changes the RIB.
pub enum RibEvent<'a> {
    /// Our identity and own routes (every reconfiguration).
    Local {
        /// Our AS.
        local_as: u32,
        /// Our BGP identifier.
        router_id: Ipv4Addr,
        /// We reflect routes with this cluster id.
        cluster_id: Option<Ipv4Addr>,
        /// Our own routes.
        exports: BTreeSet<IpNet>,
        /// Their communities.
        communities: BTreeMap<IpNet, Communities>,
        /// See [`Rib::ebgp_passed_on`].
        ebgp_passed_on: Vec<IpNet>,
    },
    /// A peer is configured (again): whether it is a reflection client.
    PeerConfigured {
        /// The peer's address.
        peer: IpAddr,
        /// We reflect for it.
        rr_client: bool,
    },
    /// A session came up (OPEN exchanged).
    PeerUp {
        /// The peer's address.
        peer: IpAddr,
        /// Its BGP identifier.
        router_id: Ipv4Addr,
        /// We reflect for it.
        rr_client: bool,
    },
    /// A session went down: its routes go, or with `stale_until` (a
    /// graceful restart) stay, stale, until then.
    PeerDown {
        /// The peer's address.
        peer: IpAddr,
        /// The end of the peer's restart time.
        stale_until: Option<Instant>,
    },
    /// A peer is no longer configured: its routes go.
    PeerRemoved {
        /// The peer's address.
        peer: IpAddr,
    },
    /// An UPDATE from a peer.
    Update {
        /// The peer's address.
        peer: IpAddr,
        /// The peer's AS.
        peer_as: u32,
        /// The message.
        update: &'a Update,
        /// The peer's import policy (a rejected prefix is not kept).
        import: &'a dyn Policy,
        /// The peer may hold at most this many prefixes.
        max_prefixes: u32,
    },
}

/// What an event calls for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RibOutput {
    /// What other peers should have may have changed: their sessions look
    /// again at [`Rib::export`] (our own routes changed; on a route
    /// reflector, a peer's routes changed).
    pub readvertise: bool,
    /// The peer holds more than its `max_prefixes`: its routes are gone
    /// and its session should end (Cease, Maximum Number of Prefixes
    /// Reached).
    pub prefix_limit_exceeded: bool,
}

/// What we send a peer for one prefix: its attributes and, for an IPv6
/// prefix, its next hop (MP_REACH_NLRI).
pub type Out = (Attributes, Option<IpAddr>);

/// What a peer has (or should have) from us (Adj-RIB-Out).
pub type AdjRibOut = BTreeMap<IpNet, Out>;

/// A peer as seen by the export side.
pub struct Neighbor<'a> {
    /// Its address (its own routes do not go back to it).
    pub address: IpAddr,
    /// Its AS (another than ours: eBGP).
    pub asn: u32,
    /// We reflect for it.
    pub rr_client: bool,
    /// eBGP: pass learned routes on with their next hop, not ours.
    pub keep_original_next_hop: bool,
    /// Its export policy.
    pub export: &'a dyn Policy,
    /// Next hop self: our end of the session, of the session's family.
    pub own: IpAddr,
}

impl Rib {
    /// Applies one event.
    pub fn apply(&mut self, event: RibEvent<'_>) -> RibOutput {
        let reflector = self.cluster_id.is_some();
        match event {
            RibEvent::Local {
                local_as,
                router_id,
                cluster_id,
                exports,
                communities,
                ebgp_passed_on,
            } => {
                let changed = self.exports != exports || self.communities != communities;
                self.local_as = local_as;
                self.router_id = Some(router_id);
                self.cluster_id = cluster_id;
                self.exports = exports;
                self.communities = communities;
                self.ebgp_passed_on = ebgp_passed_on;
                RibOutput {
                    readvertise: changed,
                    ..RibOutput::default()
                }
            }
            RibEvent::PeerConfigured { peer, rr_client } => {
                if let Some(l) = self.peers.get_mut(&peer) {
                    l.rr_client = rr_client;
                }
                RibOutput::default()
            }
            RibEvent::PeerUp {
                peer,
                router_id,
                rr_client,
            } => {
                let l = self.peers.entry(peer).or_default();
                l.router_id = Some(router_id);
                l.rr_client = rr_client;
                RibOutput::default()
            }
            RibEvent::PeerDown { peer, stale_until } => {
                match stale_until {
                    Some(t) => {
                        if let Some(l) = self.peers.get_mut(&peer) {
                            l.stale_until = Some(t);
                            l.stale = l.routes.keys().copied().collect();
                        }
                    }
                    None => {
                        self.peers.remove(&peer);
                    }
                }
                RibOutput {
                    readvertise: reflector,
                    ..RibOutput::default()
                }
            }
            RibEvent::PeerRemoved { peer } => {
                let had = self.peers.remove(&peer).is_some();
                RibOutput {
                    readvertise: reflector && had,
                    ..RibOutput::default()
                }
            }
            RibEvent::Update {
                peer,
                peer_as,
                update,
                import,
                max_prefixes,
            } => {
                let over = self.receive(peer, peer_as, update, import, max_prefixes);
                RibOutput {
                    readvertise: reflector,
                    prefix_limit_exceeded: over,
                }
            }
        }
    }

    /// Takes in an UPDATE: End-of-RIB; else withdrawals, then each
    /// announced prefix the import policy does not reject (none of a
    /// loop). Returns whether the peer went past `limit` (its routes gone).
    fn receive(
        &mut self,
        peer: IpAddr,
        peer_as: u32,
        u: &Update,
        import: &dyn Policy,
        limit: u32,
    ) -> bool {
        let (local_as, router_id, cluster_id) = (self.local_as, self.router_id, self.cluster_id);
        let l = self.peers.entry(peer).or_default();
        if u.end_of_rib.is_some() {
            self.end_of_rib.insert(peer);
            // The peer re-sent everything after a restart: what it did not
            // re-send is gone.
            l.stale_until = None;
            for p in std::mem::take(&mut l.stale) {
                l.remove(&p);
            }
            return false;
        }
        for w in &u.withdrawn {
            l.remove(w);
            l.stale.remove(w);
        }
        let a = &u.attributes;
        let looped = (peer_as != local_as
            && a.as_path.iter().any(|seg| match seg {
                Segment::Set(v) | Segment::Sequence(v) => v.contains(&local_as),
            }))
            || (a.originator_id.is_some() && a.originator_id == router_id)
            || cluster_id.is_some_and(|c| a.cluster_list.contains(&c));
        let v4 = a.next_hop.map(|nh| Arc::new(Path::new(IpAddr::V4(nh), a)));
        let v6 = u.ipv6_next_hop.map(|nh| Arc::new(Path::new(nh, a)));
        for p in &u.announced {
            let path = match p {
                IpNet::V4(_) => &v4,
                IpNet::V6(_) => &v6,
            };
            let Some(path) = path else { continue };
            l.stale.remove(p);
            let verdict = import.verdict(p, true);
            if looped || verdict == Some(Verdict::Reject) {
                l.remove(p);
                continue;
            }
            if verdict == Some(Verdict::Accept) {
                l.accepted.insert(*p);
            } else if !l.accepted.is_empty() {
                l.accepted.remove(p);
            }
            l.routes.insert(*p, path.clone());
        }
        let over = l.routes.len() > limit as usize;
        if over {
            self.peers.remove(&peer);
        }
        over
    }

    /// The best path to `prefix` among those `usable` lets count (given
    /// the peer's routes): (peer, path).
    pub fn best(
        &self,
        prefix: &IpNet,
        usable: impl Fn(&AdjRibIn) -> bool,
    ) -> Option<(IpAddr, &Path)> {
        let mut best: Option<(IpAddr, &Path)> = None;
        for (peer, l) in &self.peers {
            let Some(path) = l.routes.get(prefix) else {
                continue;
            };
            if !usable(l) {
                continue;
            }
            if best.is_none_or(|(bpeer, b)| path.rank(*peer) < b.rank(bpeer)) {
                best = Some((*peer, path));
            }
        }
        best
    }

    /// Whether `peer`'s `path` to `prefix` is no worse than every other
    /// usable one (`usable` is not asked about `peer` itself): [`Rib::best`]
    /// seen from one path, without look-ups when there is one peer.
    pub fn is_best(
        &self,
        peer: IpAddr,
        prefix: &IpNet,
        path: &Path,
        usable: impl Fn(&AdjRibIn) -> bool,
    ) -> bool {
        let mine = path.rank(peer);
        !self.peers.iter().any(|(other, ol)| {
            *other != peer
                && ol
                    .routes
                    .get(prefix)
                    .is_some_and(|op| usable(ol) && op.rank(*other) < mine)
        })
    }

    /// What `to` should have from us (of its session's family, that of
    /// `to.own`): our own routes with their communities and, on a route
    /// reflector or to an eBGP peer, the learned routes passed on (see the
    /// module's invariants). Nothing without a router id.
    pub fn export(&self, to: &Neighbor<'_>, now: Instant) -> Option<AdjRibOut> {
        self.router_id?;
        let own = to.own;
        let afi = match own {
            IpAddr::V4(_) => Afi::Ipv4,
            IpAddr::V6(_) => Afi::Ipv6,
        };
        let own_hop = own.is_ipv6().then_some(own);
        let local_as = self.local_as;
        let ebgp = to.asn != local_as;
        let base = Attributes {
            origin: Origin::Igp,
            as_path: if ebgp {
                vec![Segment::Sequence(vec![local_as])]
            } else {
                Vec::new()
            },
            next_hop: match own {
                IpAddr::V4(a) => Some(a),
                IpAddr::V6(_) => None,
            },
            local_pref: (!ebgp).then_some(100),
            ..Attributes::default()
        };
        // The peer's export policy: a rejected prefix is not sent; an
        // accepted learned one is, inside an exported pool or not.
        let rules = to.export;
        let mut want = AdjRibOut::new();
        for p in self
            .exports
            .iter()
            .filter(|p| Afi::of(p) == afi && rules.verdict(p, false) != Some(Verdict::Reject))
        {
            let mut a = base.clone();
            if let Some(c) = self.communities.get(p) {
                a.communities = c.standard.clone();
                if !c.large.is_empty() {
                    let value = c
                        .large
                        .iter()
                        .flat_map(|l| l.iter().flat_map(|v| v.to_be_bytes()))
                        .collect();
                    // LARGE_COMMUNITY (RFC 8092): optional transitive, type 32.
                    a.other.push((0xc0, 32, value));
                }
            }
            want.insert(*p, (a, own_hop));
        }
        let reflect = self.cluster_id.filter(|_| !ebgp);
        if reflect.is_none() && !ebgp {
            // iBGP split horizon: a plain iBGP speaker passes nothing on.
            return Some(want);
        }
        let exported = |prefix: &IpNet| self.ebgp_passed_on.iter().any(|p| p.contains(prefix));
        let mut best: BTreeMap<IpNet, (&Path, IpAddr, Option<Ipv4Addr>)> = BTreeMap::new();
        for (peer, l) in &self.peers {
            if *peer == to.address || (reflect.is_some() && !(l.rr_client || to.rr_client)) {
                continue;
            }
            let expired = l.stale_until.is_some_and(|t| t <= now);
            for (prefix, path) in &l.routes {
                if Afi::of(prefix) != afi
                    || want.contains_key(prefix)
                    || (expired && l.stale.contains(prefix))
                {
                    continue;
                }
                match rules.verdict(prefix, true) {
                    Some(Verdict::Reject) => continue,
                    Some(Verdict::Accept) => {}
                    None if ebgp && !exported(prefix) => continue,
                    None => {}
                }
                let better = best
                    .get(prefix)
                    .is_none_or(|(b, bpeer, _)| path.rank(*peer) < b.rank(*bpeer));
                if better {
                    best.insert(*prefix, (path, *peer, l.router_id));
                }
            }
        }
        for (prefix, (path, _, source_id)) in best {
            let mut a = path.attributes.clone();
            let mut hop = path.next_hop;
            match reflect {
                Some(cluster_id) => {
                    if a.originator_id.is_none() {
                        a.originator_id = source_id;
                    }
                    a.cluster_list.insert(0, cluster_id);
                    a.local_pref.get_or_insert(100);
                }
                None => {
                    // To another AS: no iBGP-only attributes.
                    a.local_pref = None;
                    a.med = None;
                    a.originator_id = None;
                    a.cluster_list.clear();
                    match a.as_path.first_mut() {
                        Some(Segment::Sequence(v)) if v.len() < 255 => v.insert(0, local_as),
                        _ => a.as_path.insert(0, Segment::Sequence(vec![local_as])),
                    }
                    if !to.keep_original_next_hop {
                        hop = own;
                    }
                }
            }
            let v6_hop = match hop {
                IpAddr::V4(nh) => {
                    a.next_hop = Some(nh);
                    None
                }
                IpAddr::V6(_) => Some(hop),
            };
            want.insert(prefix, (a, v6_hop));
        }
        Some(want)
    }
}

/// The UPDATEs that bring a peer from `sent` to `want`: withdrawals of
/// what it should no longer have, then the new or changed prefixes grouped
/// by their attributes, packed for `ctx`.
pub fn updates(sent: &AdjRibOut, want: &AdjRibOut, ctx: &Context) -> Vec<Update> {
    let del: Vec<IpNet> = sent
        .keys()
        .filter(|p| !want.contains_key(p))
        .copied()
        .collect();
    let mut groups: Vec<(&Out, Vec<IpNet>)> = Vec::new();
    for (p, a) in want {
        if sent.get(p) == Some(a) {
            continue;
        }
        match groups.iter_mut().find(|(g, _)| *g == a) {
            Some((_, v)) => v.push(*p),
            None => groups.push((a, vec![*p])),
        }
    }
    let mut out = wire::pack(&del, &[], &Attributes::default(), None, ctx);
    for ((a, v6_hop), prefixes) in groups {
        out.extend(wire::pack(&[], &prefixes, a, *v6_hop, ctx));
    }
    out
}

#[cfg(test)]
mod tests;
