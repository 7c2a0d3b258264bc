//! Routes: the [`Route`] value (pure: to and from its netlink message) and
//! the [`Netlink`] requests over routes (`ip route add|replace|del|show`).
//! Deleting takes only a route of the route's own protocol, its owner.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{Error, Netlink, Result, family};

/// A route in the main table (or the table given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dst: IpNet,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    pub scope: Scope,
    pub kind: Kind,
    /// The `proto` field: who owns the route.
    pub protocol: u8,
    pub table: u32,
    /// `onlink`: the gateway is reachable on the device without a covering route.
    pub onlink: bool,
}

/// Route scope (`scope link` or `scope global`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Universe,
    Link,
    Host,
}

/// Route type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Unicast,
    Blackhole,
}

/// `proto boot`: what `ip route add` uses, and what Calico's CNI plugin uses.
pub const PROTO_BOOT: u8 = 3;
/// The main routing table.
pub const TABLE_MAIN: u32 = 254;

impl Route {
    /// A unicast route in the main table with `proto boot`.
    pub fn new(dst: IpNet) -> Route {
        Route {
            dst,
            gateway: None,
            oif: None,
            scope: Scope::Universe,
            kind: Kind::Unicast,
            protocol: PROTO_BOOT,
            table: TABLE_MAIN,
            onlink: false,
        }
    }

    pub fn via(mut self, gateway: IpAddr) -> Route {
        self.gateway = Some(gateway);
        self
    }

    pub fn dev(mut self, index: u32) -> Route {
        self.oif = Some(index);
        self
    }

    pub fn scope(mut self, scope: Scope) -> Route {
        self.scope = scope;
        self
    }

    pub fn kind(mut self, kind: Kind) -> Route {
        self.kind = kind;
        self
    }

    pub fn protocol(mut self, protocol: u8) -> Route {
        self.protocol = protocol;
        self
    }

    pub fn onlink(mut self) -> Route {
        self.onlink = true;
        self
    }

    pub(super) fn to_message(&self) -> RouteMessage {
        let mut msg = RouteMessage::default();
        msg.header.address_family = family(self.dst.addr());
        msg.header.destination_prefix_length = self.dst.prefix_len();
        msg.header.table = if self.table < 256 {
            self.table as u8
        } else {
            RouteHeader::RT_TABLE_UNSPEC
        };
        msg.header.protocol = RouteProtocol::from(self.protocol);
        msg.header.scope = match self.scope {
            Scope::Universe => RouteScope::Universe,
            Scope::Link => RouteScope::Link,
            Scope::Host => RouteScope::Host,
        };
        msg.header.kind = match self.kind {
            Kind::Unicast => RouteType::Unicast,
            Kind::Blackhole => RouteType::BlackHole,
        };
        if self.onlink {
            msg.header.flags |= netlink_packet_route::route::RouteFlags::Onlink;
        }
        msg.attributes
            .push(RouteAttribute::Destination(self.dst.network().into()));
        if self.table >= 256 {
            msg.attributes.push(RouteAttribute::Table(self.table));
        }
        if let Some(gw) = self.gateway {
            msg.attributes.push(RouteAttribute::Gateway(gw.into()));
        }
        if let Some(oif) = self.oif {
            msg.attributes.push(RouteAttribute::Oif(oif));
        }
        msg
    }

    pub(super) fn from_message(msg: &RouteMessage) -> Option<Route> {
        let mut dst = None;
        let mut gateway = None;
        let mut oif = None;
        let mut table = u32::from(msg.header.table);
        for attr in &msg.attributes {
            match attr {
                RouteAttribute::Destination(a) => dst = route_addr(a),
                RouteAttribute::Gateway(a) => gateway = route_addr(a),
                RouteAttribute::Oif(i) => oif = Some(*i),
                RouteAttribute::Table(t) => table = *t,
                _ => {}
            }
        }
        let len = msg.header.destination_prefix_length;
        let dst = match (dst, msg.header.address_family) {
            (Some(a), _) => IpNet::new(a, len).ok()?,
            (None, AddressFamily::Inet) => IpNet::new(Ipv4Addr::UNSPECIFIED.into(), len).ok()?,
            (None, AddressFamily::Inet6) => IpNet::new(Ipv6Addr::UNSPECIFIED.into(), len).ok()?,
            _ => return None,
        };
        let kind = match msg.header.kind {
            RouteType::Unicast => Kind::Unicast,
            RouteType::BlackHole => Kind::Blackhole,
            _ => return None,
        };
        let scope = match msg.header.scope {
            RouteScope::Link => Scope::Link,
            RouteScope::Host => Scope::Host,
            _ => Scope::Universe,
        };
        Some(Route {
            dst,
            gateway,
            oif,
            scope,
            kind,
            protocol: u8::from(msg.header.protocol),
            table,
            onlink: msg
                .header
                .flags
                .contains(netlink_packet_route::route::RouteFlags::Onlink),
        })
    }
}

fn route_addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

impl Netlink {
    /// `ip route add ...`; fails with `EEXIST` when the destination is taken.
    pub fn add_route(&mut self, route: &Route) -> Result<()> {
        self.request(
            &|| format!("add route {}", route.dst),
            RouteNetlinkMessage::NewRoute(route.to_message()),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }

    /// `ip route replace ...`
    pub fn replace_route(&mut self, route: &Route) -> Result<()> {
        self.request(
            &|| format!("replace route {}", route.dst),
            RouteNetlinkMessage::NewRoute(route.to_message()),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        )?;
        Ok(())
    }

    /// `ip route del DST proto PROTO`: only a route of the route's protocol
    /// (its owner; any scope and metric, and any gateway or device unless
    /// the route names them), never another owner's at the same
    /// destination. A route without a protocol is refused: it would match
    /// anyone's.
    pub fn delete_route(&mut self, route: &Route) -> Result<()> {
        self.delete_owned(route, None)
    }

    /// `ip route add ... metric METRIC` (`NLM_F_EXCL`): fails with `EEXIST`
    /// when the destination already has a route with that metric, whoever
    /// owns it. Routes with different metrics are separate routes.
    pub fn add_route_at(&mut self, route: &Route, metric: u32) -> Result<()> {
        let mut msg = route.to_message();
        msg.attributes.push(RouteAttribute::Priority(metric));
        self.request(
            &|| format!("add route {} metric {metric}", route.dst),
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }

    /// `ip route replace ... metric METRIC`: takes the place of the route
    /// to the destination with that metric, whoever owns it — for a caller
    /// that knows that route to be its own — and leaves routes with other
    /// metrics alone.
    pub fn replace_route_at(&mut self, route: &Route, metric: u32) -> Result<()> {
        let mut msg = route.to_message();
        msg.attributes.push(RouteAttribute::Priority(metric));
        self.request(
            &|| format!("replace route {} metric {metric}", route.dst),
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        )?;
        Ok(())
    }

    /// `ip route del DST proto PROTO metric METRIC`: as
    /// [`Self::delete_route`], at that metric only (the kernel takes metric
    /// 0 as any metric).
    pub fn delete_route_at(&mut self, route: &Route, metric: u32) -> Result<()> {
        self.delete_owned(route, Some(metric))
    }

    fn delete_owned(&mut self, route: &Route, metric: Option<u32>) -> Result<()> {
        let what = || {
            let at = metric.map(|m| format!(" metric {m}")).unwrap_or_default();
            format!("delete route {} proto {}{at}", route.dst, route.protocol)
        };
        if route.protocol == 0 {
            return Err(Error {
                op: what(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "a route to delete names its protocol (its owner)",
                ),
            });
        }
        let mut msg = route.to_message();
        // Any scope; the protocol (set from the route) picks the owner.
        msg.header.scope = RouteScope::NoWhere;
        if let Some(m) = metric {
            msg.attributes.push(RouteAttribute::Priority(m));
        }
        self.request(&what, RouteNetlinkMessage::DelRoute(msg), NLM_F_ACK)?;
        Ok(())
    }

    /// `ip [-6] route show table all` for one family (unicast and blackhole routes).
    pub fn routes(&mut self, v6: bool) -> Result<Vec<Route>> {
        self.routes_where(v6, &|_| true)
    }

    /// The routes of a family that `keep` takes; the others are dropped as
    /// the dump is read (a table of 100,000 BGP routes costs a caller that
    /// wants a few nothing but the reading).
    pub fn routes_where(&mut self, v6: bool, keep: &dyn Fn(&Route) -> bool) -> Result<Vec<Route>> {
        let mut out = Vec::new();
        self.for_each_route(v6, &mut |r| {
            if keep(&r) {
                out.push(r);
            }
        })?;
        Ok(out)
    }

    /// Every route of a family, handed to `each` as the dump is read.
    pub fn for_each_route(&mut self, v6: bool, each: &mut dyn FnMut(Route)) -> Result<()> {
        self.for_each_route_metric(v6, &mut |r, _| each(r))
    }

    /// Like [`Self::for_each_route`], with each route's metric
    /// (`RTA_PRIORITY`; 0 when the kernel gives none).
    pub fn for_each_route_metric(
        &mut self,
        v6: bool,
        each: &mut dyn FnMut(Route, u32),
    ) -> Result<()> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = if v6 {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        self.request_each(
            &|| "list routes".into(),
            RouteNetlinkMessage::GetRoute(msg),
            NLM_F_DUMP,
            &mut |m| {
                if let RouteNetlinkMessage::NewRoute(r) = &m
                    && let Some(route) = Route::from_message(r)
                {
                    let metric = r
                        .attributes
                        .iter()
                        .find_map(|a| match a {
                            RouteAttribute::Priority(p) => Some(*p),
                            _ => None,
                        })
                        .unwrap_or(0);
                    each(route, metric);
                }
            },
        )
    }
}

/// One route change of a [`Netlink::route_batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteOp {
    /// `ip route replace`.
    Replace(Route),
    /// `ip route del … proto P`: the route's owner's only (see
    /// [`Netlink::delete_route`]); one already gone is no error.
    Delete(Route),
}

/// Bytes of requests sent at once by [`Netlink::route_batch`] at most.
const BATCH_BYTES: usize = 32 * 1024;

/// Requests sent at once by [`Netlink::route_batch`] at most. The kernel
/// handles a whole send before the caller reads anything, so every ack of
/// it waits in the socket's receive queue at once; each costs the queue
/// its buffer's true size (about 1 KiB, not its 36 bytes), and an ack that
/// does not fit the default 208 KiB is dropped. 100 stay well inside.
const BATCH_OPS: usize = 100;

impl Netlink {
    /// Many route changes in few system calls: the requests go to the
    /// kernel packed together (up to 32 KiB a send), then their acks are
    /// read. Each op succeeds or fails on its own, as one request would;
    /// returns the failures with the op's position.
    pub fn route_batch(&mut self, ops: &[RouteOp]) -> Vec<(usize, Error)> {
        use netlink_packet_core::{NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload};
        let mut failures = Vec::new();
        let what = |op: &RouteOp| match op {
            RouteOp::Replace(r) => format!("replace route {}", r.dst),
            RouteOp::Delete(r) => format!("delete route {} proto {}", r.dst, r.protocol),
        };
        let mut start = 0;
        while start < ops.len() {
            let mut out: Vec<u8> = Vec::with_capacity(BATCH_BYTES + 512);
            let first_seq = self.seq.wrapping_add(1);
            // Failures from here on are this send's ops refused before sending.
            let pending_from = failures.len();
            let mut end = start;
            while end < ops.len() && end - start < BATCH_OPS && out.len() < BATCH_BYTES {
                let (msg, flags) = match &ops[end] {
                    RouteOp::Replace(r) => (
                        RouteNetlinkMessage::NewRoute(r.to_message()),
                        NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
                    ),
                    RouteOp::Delete(r) => {
                        if r.protocol == 0 {
                            failures.push((
                                end,
                                Error::new(
                                    what(&ops[end]),
                                    std::io::Error::new(
                                        std::io::ErrorKind::InvalidInput,
                                        "a route to delete names its protocol (its owner)",
                                    ),
                                ),
                            ));
                            end += 1;
                            // Keep sequence numbers aligned with positions.
                            self.seq = self.seq.wrapping_add(1);
                            continue;
                        }
                        let mut m = r.to_message();
                        m.header.scope = RouteScope::NoWhere;
                        (RouteNetlinkMessage::DelRoute(m), NLM_F_ACK)
                    }
                };
                self.seq = self.seq.wrapping_add(1);
                let mut header = NetlinkHeader::default();
                header.flags = NLM_F_REQUEST | flags;
                header.sequence_number = self.seq;
                let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
                packet.finalize();
                let at = out.len();
                out.resize(at + packet.buffer_len(), 0);
                packet.serialize(&mut out[at..]);
                end += 1;
            }
            let count = end - start;
            let sent = out.is_empty()
                || match self.socket.send(&out, 0) {
                    Ok(_) => true,
                    Err(e) => {
                        let refused: Vec<usize> =
                            failures[pending_from..].iter().map(|(i, _)| *i).collect();
                        for (i, op) in ops.iter().enumerate().take(end).skip(start) {
                            if !refused.contains(&i) {
                                failures.push((
                                    i,
                                    Error::new(
                                        what(op),
                                        std::io::Error::new(e.kind(), e.to_string()),
                                    ),
                                ));
                            }
                        }
                        false
                    }
                };
            if sent && !out.is_empty() {
                // Whether each op of this send is settled: refused before
                // sending, or its ack read.
                let mut settled = vec![false; count];
                for (i, _) in &failures[pending_from..] {
                    settled[i - start] = true;
                }
                let mut waiting = settled.iter().filter(|s| !**s).count();
                while waiting > 0 {
                    self.buf.clear();
                    let n = match self.socket.recv(&mut self.buf, 0) {
                        Ok(n) => n,
                        Err(e) => {
                            // Acks lost (ENOBUFS) or no socket: what became of
                            // the ops still waiting is unknown; each fails.
                            for (pos, _) in settled.iter().enumerate().filter(|(_, s)| !**s) {
                                failures.push((
                                    start + pos,
                                    Error::new(
                                        format!("{} (its ack)", what(&ops[start + pos])),
                                        std::io::Error::new(e.kind(), e.to_string()),
                                    ),
                                ));
                            }
                            break;
                        }
                    };
                    // Read by hand: an error answer may carry attributes
                    // (extended acks) a typed parser refuses, and a reply
                    // skipped here would leave this loop waiting forever.
                    let data = &self.buf[..n.min(self.buf.len())];
                    let mut offset = 0;
                    while offset + 16 <= data.len() {
                        let word = |at: usize| [data[at], data[at + 1], data[at + 2], data[at + 3]];
                        let len = u32::from_ne_bytes(word(offset)) as usize;
                        if len < 16 || offset + len > data.len() {
                            break;
                        }
                        let kind = u16::from_ne_bytes([data[offset + 4], data[offset + 5]]);
                        let seq = u32::from_ne_bytes(word(offset + 8));
                        let code = (len >= 20).then(|| i32::from_ne_bytes(word(offset + 16)));
                        offset += (len + 3) & !3;
                        let pos = seq.wrapping_sub(first_seq) as usize;
                        // NLMSG_ERROR (2): an ack (code 0) or an error.
                        let (2, Some(code)) = (kind, code) else {
                            continue;
                        };
                        if pos >= count {
                            continue;
                        }
                        if std::mem::replace(&mut settled[pos], true) {
                            continue;
                        }
                        waiting -= 1;
                        if code < 0 {
                            let e = Error::new(
                                what(&ops[start + pos]),
                                std::io::Error::from_raw_os_error(-code),
                            );
                            let gone =
                                matches!(ops[start + pos], RouteOp::Delete(_)) && e.is_not_found();
                            if !gone {
                                failures.push((start + pos, e));
                            }
                        }
                    }
                }
            }
            start = end;
        }
        failures
    }
}
