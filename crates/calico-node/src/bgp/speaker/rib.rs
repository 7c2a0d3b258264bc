//! What a session sends and takes in: the routes a peer should have from
//! this node ([`PeerThread::rib_out`], sent by `advertise`), and an
//! UPDATE's routes taken in through the peer's import rules and its prefix
//! limit (`receive`).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use calico_bgp::fsm::{Event, State};
use calico_bgp::msg::{Afi, Attributes, Message, Origin, Segment, Update};
use calico_bgp::wire;
use ipnet::IpNet;

use super::{Path, PeerThread, family, lock};
use crate::bgp::filter::Verdict;
use crate::bgp::plan::LogLevel;

/// What we send a peer for one prefix: its attributes and, for an IPv6
/// prefix, its next hop (MP_REACH_NLRI).
pub(super) type Out = (Attributes, Option<IpAddr>);

impl PeerThread {
    /// What the peer should have from us: our exports with their
    /// communities and, on a route reflector, the routes it reflects
    /// (RFC 4456: from a client to every iBGP peer, from a non-client to
    /// clients only; ORIGINATOR_ID set, our cluster id prepended to
    /// CLUSTER_LIST, next hop kept).
    /// Only prefixes of the session's family; IPv6 ones with this node's
    /// IPv6 address as next hop.
    pub(super) fn rib_out(&self) -> Option<BTreeMap<IpNet, Out>> {
        let st = lock(&self.shared.state);
        let router_id = st.router_id?;
        let afi = family(self.plan.address);
        // Next hop self: this end of the session (as BIRD's source
        // address), which is the node's address of the family.
        let local = self
            .conn
            .as_ref()
            .and_then(|c| c.local_addr().ok())
            .map(|a| a.ip().to_canonical())
            .filter(|a| family(*a) == afi);
        let own = match (afi, local) {
            (_, Some(a)) => a,
            (Afi::Ipv4, None) => IpAddr::V4(router_id),
            (Afi::Ipv6, None) => IpAddr::V6(st.ipv6?),
        };
        let own_hop = own.is_ipv6().then_some(own);
        let local_as = st.local_as;
        let ebgp = self.plan.asn != local_as;
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
        // The peer's export rules (BGPFilter): a rejected prefix is not
        // sent; an accepted learned one is, inside a pool or not.
        let rules = &self.plan.export;
        let mut want: BTreeMap<IpNet, Out> = BTreeMap::new();
        for p in st
            .exports
            .iter()
            .filter(|p| Afi::of(p) == afi && rules.verdict(p, false) != Some(Verdict::Reject))
        {
            let mut a = base.clone();
            if let Some(c) = st.communities.get(p) {
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
        // Learned routes passed on: on a route reflector to iBGP peers
        // (RFC 4456), and to eBGP peers those inside exported pools (as
        // Calico's export filter: every route inside a pool, the other
        // nodes' blocks too), with our AS prepended and, unless
        // `keepOriginalNextHop`, us as next hop.
        let reflect = st.cluster_id.filter(|_| !ebgp);
        if reflect.is_none() && !ebgp {
            return Some(want);
        }
        let exported = |prefix: &IpNet| {
            st.pools
                .iter()
                .any(|p| !p.disable_export && p.cidr.contains(prefix))
        };
        let now = Instant::now();
        let mut best: BTreeMap<IpNet, (&Path, IpAddr, Option<Ipv4Addr>)> = BTreeMap::new();
        for (peer, l) in &st.learned {
            if *peer == self.plan.address
                || (reflect.is_some() && !(l.rr_client || self.plan.rr_client))
            {
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
                let better = best.get(prefix).is_none_or(|(b, bpeer, _)| {
                    crate::bgp::routes::rank(path, *peer) < crate::bgp::routes::rank(b, *bpeer)
                });
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
                    if !self.plan.keep_original_next_hop {
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

    /// Sends the peer what it lacks from [`Self::rib_out`] (everything with
    /// `full`) and withdraws what it should no longer have; End-of-RIB
    /// after a full send.
    pub(super) fn advertise(&mut self, full: bool) {
        if self.session.state() != State::Established {
            return;
        }
        let Some(want) = self.rib_out() else { return };
        let del: Vec<IpNet> = self
            .advertised
            .keys()
            .filter(|p| !want.contains_key(p))
            .copied()
            .collect();
        // New or changed prefixes, grouped by their attributes.
        let mut groups: Vec<(&Out, Vec<IpNet>)> = Vec::new();
        for (p, a) in &want {
            if self.advertised.get(p) == Some(a) {
                continue;
            }
            match groups.iter_mut().find(|(g, _)| *g == a) {
                Some((_, v)) => v.push(*p),
                None => groups.push((a, vec![*p])),
            }
        }
        let mut updates = wire::pack(&del, &[], &Attributes::default(), None, &self.ctx);
        for ((a, v6_hop), prefixes) in groups {
            updates.extend(wire::pack(&[], &prefixes, a, *v6_hop, &self.ctx));
        }
        let (announced, withdrawn) = updates.iter().fold((0, 0), |(a, w), u| {
            (a + u.announced.len(), w + u.withdrawn.len())
        });
        if announced + withdrawn > 0 {
            self.note(
                LogLevel::All,
                log::Level::Debug,
                &format!(
                    "BGP: to {}: {announced} announced, {withdrawn} withdrawn",
                    self.plan.address
                ),
            );
        }
        for u in updates {
            if self.send(&Message::Update(u)).is_err() {
                return;
            }
        }
        if full {
            let afi = family(self.plan.address);
            let _ = self.send(&Message::Update(Update::end_of_rib(afi)));
        }
        self.advertised = want;
    }

    /// On a route reflector: the other sessions re-check what they send.
    pub(super) fn tell_others(&self) {
        if lock(&self.shared.state).cluster_id.is_none() {
            return;
        }
        for (a, tx) in lock(&self.senders).iter() {
            if *a != self.plan.address {
                tx.exports_changed();
            }
        }
    }

    /// Takes in an UPDATE: withdrawals, then each announced prefix its
    /// import rules do not reject. Past `max_prefixes` the peer's routes
    /// go at once, and the event that ends the session is returned.
    pub(super) fn receive(&mut self, u: Update) -> Option<Event> {
        let address = self.plan.address;
        let import = &self.plan.import;
        let limit = self.plan.max_prefixes;
        let calico_node = self.plan.calico_node;
        let (local_as, router_id, cluster_id) = {
            let st = lock(&self.shared.state);
            (st.local_as, st.router_id, st.cluster_id)
        };
        self.note(
            LogLevel::All,
            log::Level::Debug,
            &format!(
                "BGP: UPDATE from {address}: {} announced, {} withdrawn{}",
                u.announced.len(),
                u.withdrawn.len(),
                if u.end_of_rib.is_some() {
                    ", End-of-RIB"
                } else {
                    ""
                }
            ),
        );
        if let Some(why) = &u.treated_as_withdraw {
            log::warn!("BGP: update from {address} treated as withdraw: {why}");
        }
        let over = self.shared.with(|s| {
            let l = s.learned.entry(address).or_default();
            l.calico_node = calico_node;
            if u.end_of_rib.is_some() {
                s.end_of_rib.insert(address);
                // The peer re-sent everything after a restart: what it did
                // not re-send is gone.
                l.stale_until = None;
                for p in std::mem::take(&mut l.stale) {
                    l.routes.remove(&p);
                    l.accepted.remove(&p);
                }
                return false;
            }
            for w in &u.withdrawn {
                l.routes.remove(w);
                l.stale.remove(w);
                l.accepted.remove(w);
            }
            // Loops: our own AS in an eBGP path; our own route reflected
            // back (RFC 4456 ORIGINATOR_ID).
            let looped = (u.attributes.as_path.iter().any(|seg| match seg {
                Segment::Set(v) | Segment::Sequence(v) => v.contains(&local_as),
            }) && self.plan.asn != local_as)
                || (u.attributes.originator_id.is_some()
                    && u.attributes.originator_id == router_id)
                || cluster_id.is_some_and(|c| u.attributes.cluster_list.contains(&c));
            let path = |next_hop: IpAddr| {
                Arc::new(Path {
                    next_hop,
                    as_path_len: u.attributes.as_path_len(),
                    local_pref: u.attributes.local_pref.unwrap_or(100),
                    attributes: u.attributes.clone(),
                })
            };
            let v4 = u.attributes.next_hop.map(|nh| path(IpAddr::V4(nh)));
            let v6 = u.ipv6_next_hop.map(path);
            for p in &u.announced {
                let shared_path = match p {
                    IpNet::V4(_) => &v4,
                    IpNet::V6(_) => &v6,
                };
                let Some(shared_path) = shared_path else {
                    continue;
                };
                l.stale.remove(p);
                let verdict = import.verdict(p, true);
                if looped || verdict == Some(Verdict::Reject) {
                    l.routes.remove(p);
                    l.accepted.remove(p);
                    continue;
                }
                if verdict == Some(Verdict::Accept) {
                    l.accepted.insert(*p);
                } else if !l.accepted.is_empty() {
                    l.accepted.remove(p);
                }
                l.routes.insert(*p, shared_path.clone());
            }
            let over = l.routes.len() > limit as usize;
            if over {
                s.learned.remove(&address);
            }
            over
        });
        if !over {
            return None;
        }
        log::warn!(
            "BGP: {address} sent more than {limit} prefixes (CALICO_BGP_MAX_PREFIXES): \
                 its routes are dropped and the session ends; it may connect again"
        );
        Some(Event::PrefixLimitExceeded {
            afi: family(address),
            limit,
        })
    }
}
