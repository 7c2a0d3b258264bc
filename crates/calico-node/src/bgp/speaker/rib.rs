//! What a session sends and takes in, through [`calico_bgp::rib`]: the
//! routes a peer should have from this node ([`PeerThread::rib_out`], sent
//! by `advertise`), and an UPDATE's routes taken in through the peer's
//! import rules and its prefix limit (`receive`).

use std::net::IpAddr;
use std::time::Instant;

use calico_bgp::fsm::{Event, State};
use calico_bgp::msg::{Afi, Message, Update};
use calico_bgp::rib::{self, AdjRibOut, Neighbor, RibEvent, RibOutput};

use super::{PeerThread, family, lock};
use crate::bgp::plan::LogLevel;

impl PeerThread {
    /// What the peer should have from us ([`calico_bgp::rib::Rib::export`]).
    /// Only prefixes of the session's family; next hop self is this end of
    /// the session (as BIRD's source address), which is the node's address
    /// of the family.
    pub(super) fn rib_out(&self) -> Option<AdjRibOut> {
        let st = lock(&self.shared.state);
        let router_id = st.rib.router_id?;
        let afi = family(self.plan.address);
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
        st.rib.export(
            &Neighbor {
                address: self.plan.address,
                asn: self.plan.asn,
                rr_client: self.plan.rr_client,
                keep_original_next_hop: self.plan.keep_original_next_hop,
                export: &self.plan.export,
                own,
            },
            Instant::now(),
        )
    }

    /// Sends the peer what it lacks from [`Self::rib_out`] (everything with
    /// `full`) and withdraws what it should no longer have; End-of-RIB
    /// after a full send.
    pub(super) fn advertise(&mut self, full: bool) {
        if self.session.state() != State::Established {
            return;
        }
        let Some(want) = self.rib_out() else { return };
        let updates = rib::updates(&self.advertised, &want, &self.ctx);
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

    /// The other sessions re-check what they send, when the RIB says so
    /// (on a route reflector).
    pub(super) fn tell_others(&self, out: RibOutput) {
        if !out.readvertise {
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
    /// go at once, and the event that ends the session is returned; with
    /// what the RIB says the others should do.
    pub(super) fn receive(&mut self, u: Update) -> (Option<Event>, RibOutput) {
        let address = self.plan.address;
        let import = &self.plan.import;
        let limit = self.plan.max_prefixes;
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
        let out = self.shared.with(|s| {
            s.rib.apply(RibEvent::Update {
                peer: address,
                peer_as: self.plan.asn,
                update: &u,
                import,
                max_prefixes: limit,
            })
        });
        if !out.prefix_limit_exceeded {
            return (None, out);
        }
        log::warn!(
            "BGP: {address} sent more than {limit} prefixes (CALICO_BGP_MAX_PREFIXES): \
                 its routes are dropped and the session ends; it may connect again"
        );
        let over = Event::PrefixLimitExceeded {
            afi: family(address),
            limit,
        };
        (Some(over), out)
    }
}
