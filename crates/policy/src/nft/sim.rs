//! A reference interpreter of the ruleset model: runs one packet through a
//! hook's base chain the way nftables does (jump/goto/return, verdict maps,
//! mark statements, implicit protocol dependencies of `ip saddr`, `icmp type`
//! and friends). Tests run the compiler's output through it and compare with
//! the oracle; it is also handy to explain a verdict.

use std::net::IpAddr;

use super::{
    CtState, Element, Family, Hook, Iface, Match, Rule, Ruleset, Side, Statement, Verdict,
};
use crate::model::proto;

/// A packet as a hook sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimPacket {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol number.
    pub protocol: u8,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// ICMP type.
    pub icmp_type: u8,
    /// ICMP code.
    pub icmp_code: u8,
    /// Input interface (`""` for locally generated packets).
    pub iif: String,
    /// Output interface (`""` for packets to the host).
    pub oif: String,
    /// Conntrack state (`None`: a new connection).
    pub ct: Option<CtState>,
}

/// What happened to the packet in one hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Accepted by this table.
    pub accepted: bool,
    /// Log statements executed.
    pub logs: usize,
}

enum Flow {
    /// Fell off the end of a chain or returned.
    Return,
    Accept,
    Drop,
}

struct Run<'a> {
    r: &'a Ruleset,
    p: &'a SimPacket,
    mark: u32,
    logs: usize,
}

const MAX_DEPTH: usize = 64;

/// Runs `p` through the base chain of `hook` (none: accepted untouched).
pub fn run(r: &Ruleset, hook: Hook, p: &SimPacket) -> Result<Outcome, String> {
    let Some((name, _)) = r.chains.iter().find(|(_, c)| c.hook == Some(hook)) else {
        return Ok(Outcome {
            accepted: true,
            logs: 0,
        });
    };
    let mut run = Run {
        r,
        p,
        mark: 0,
        logs: 0,
    };
    let flow = run.chain(name, 0)?;
    Ok(Outcome {
        accepted: !matches!(flow, Flow::Drop),
        logs: run.logs,
    })
}

fn family(ip: IpAddr) -> Family {
    match ip {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    }
}

impl Run<'_> {
    fn chain(&mut self, name: &str, depth: usize) -> Result<Flow, String> {
        if depth > MAX_DEPTH {
            return Err(format!("chain {name}: too deep (a loop?)"));
        }
        let c = self
            .r
            .chains
            .get(name)
            .ok_or_else(|| format!("no chain {name}"))?;
        for rule in &c.rules {
            if !rule.matches.iter().all(|m| self.matches(m)) {
                continue;
            }
            self.statements(rule);
            let Some(v) = &rule.verdict else { continue };
            match self.verdict(v, depth)? {
                None => continue,
                Some(flow) => return Ok(flow),
            }
        }
        Ok(Flow::Return)
    }

    /// `None`: go on with the next rule of the current chain.
    fn verdict(&mut self, v: &Verdict, depth: usize) -> Result<Option<Flow>, String> {
        Ok(match v {
            Verdict::Accept => Some(Flow::Accept),
            Verdict::Drop => Some(Flow::Drop),
            Verdict::Return => Some(Flow::Return),
            Verdict::Jump(c) => match self.chain(c, depth + 1)? {
                Flow::Return => None,
                other => Some(other),
            },
            Verdict::Goto(c) => Some(self.chain(c, depth + 1)?),
            Verdict::Vmap { dir, map } => {
                let key = match dir {
                    Iface::In => &self.p.iif,
                    Iface::Out => &self.p.oif,
                };
                let m = self
                    .r
                    .maps
                    .get(map)
                    .ok_or_else(|| format!("no map {map}"))?;
                match m.elements.get(key) {
                    None => None,
                    Some(v) => self.verdict(v, depth)?,
                }
            }
        })
    }

    fn statements(&mut self, rule: &Rule) {
        for s in &rule.statements {
            match s {
                Statement::SetMark(b) => self.mark |= b,
                Statement::ClearMark(b) => self.mark &= !b,
                Statement::Log(_) => self.logs += 1,
            }
        }
    }

    fn addr(&self, side: Side) -> IpAddr {
        match side {
            Side::Src => self.p.src,
            Side::Dst => self.p.dst,
        }
    }

    fn port(&self, side: Side) -> u16 {
        match side {
            Side::Src => self.p.src_port,
            Side::Dst => self.p.dst_port,
        }
    }

    fn in_set(&self, set: &str, f: impl Fn(&Element) -> bool) -> bool {
        self.r
            .sets
            .get(set)
            .is_some_and(|s| s.elements.iter().any(f))
    }

    fn matches(&self, m: &Match) -> bool {
        let p = self.p;
        match m {
            Match::Iface { dir, name } => {
                let v = match dir {
                    Iface::In => &p.iif,
                    Iface::Out => &p.oif,
                };
                match name.strip_suffix('*') {
                    Some(prefix) => v.starts_with(prefix),
                    None => v == name,
                }
            }
            Match::Ct(state) => p.ct == Some(*state),
            Match::Mark { bits, set } => {
                let v = self.mark & bits;
                if *set { v == *bits } else { v == 0 }
            }
            Match::NfProto(f) => family(p.src) == *f,
            Match::L4Proto { proto, neg } => (p.protocol == *proto) != *neg,
            Match::Addr {
                family: f,
                side,
                neg,
                set,
            } => {
                let ip = self.addr(*side);
                family(ip) == *f
                    && self.in_set(set, |e| matches!(e, Element::Net(n) if n.contains(&ip))) != *neg
            }
            Match::Ports { side, neg, ranges } => {
                let port = self.port(*side);
                ranges.iter().any(|&(a, b)| (a..=b).contains(&port)) != *neg
            }
            Match::NamedPort {
                family: f,
                side,
                neg,
                set,
            } => {
                let (ip, port) = (self.addr(*side), self.port(*side));
                let hit = self.in_set(set, |e| {
                    matches!(e, Element::NamedPort(n, pr, po) if n.contains(&ip) && *pr == p.protocol && *po == port)
                });
                family(ip) == *f && hit != *neg
            }
            Match::IcmpType {
                family: f,
                value,
                neg,
            } => icmp_dep(p, *f) && (p.icmp_type == *value) != *neg,
            Match::IcmpCode {
                family: f,
                value,
                neg,
            } => icmp_dep(p, *f) && (p.icmp_code == *value) != *neg,
        }
    }
}

/// `icmp …` implies `meta l4proto icmp`, `icmpv6 …` implies `meta l4proto ipv6-icmp`.
fn icmp_dep(p: &SimPacket, f: Family) -> bool {
    p.protocol
        == match f {
            Family::V4 => proto::ICMP,
            Family::V6 => proto::ICMPV6,
        }
}
