//! The nftables form of policy: a small typed model of one table (sets,
//! verdict maps, chains of rules), its text rendering for `nft -f`, the
//! compiler that produces it ([`compile`]), the transaction that turns one
//! compiled state into another ([`diff`]) and a reference interpreter
//! ([`sim`]) used to test the compiler against the oracle.
//!
//! Invariants:
//! - every name a rule or map element refers to (chain, set, map) exists in
//!   the same [`Ruleset`];
//! - names are pure functions of what they stand for (see [`compile`]), so two
//!   compilations of the same input are equal and a diff touches only what
//!   changed;
//! - interval sets hold disjoint elements (nested networks are dropped when
//!   a wider one is present), so any element can be added or deleted alone.

pub mod compile;
pub mod diff;
mod render;
pub use render::quote;
pub mod sim;

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;

pub use crate::model::Family;

/// The table's family and name.
pub const TABLE: &str = "inet calico-policy";

/// A base chain's netfilter hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hook {
    /// Forwarded packets.
    Forward,
    /// Packets to the host.
    Input,
    /// Packets from the host.
    Output,
}

/// Source or destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// Source address or port.
    Src,
    /// Destination address or port.
    Dst,
}

/// Input or output interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Iface {
    /// `iifname`.
    In,
    /// `oifname`.
    Out,
}

/// Connection-tracking states matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CtState {
    /// `established,related`.
    EstablishedRelated,
    /// `invalid`.
    Invalid,
}

/// One condition of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Match {
    /// Interface name; a trailing `*` is a prefix wildcard.
    Iface {
        /// In or out.
        dir: Iface,
        /// Name or `prefix*`.
        name: String,
    },
    /// Connection-tracking state.
    Ct(CtState),
    /// `meta mark & bits == bits` (set) or `== 0` (clear).
    Mark {
        /// The bits tested.
        bits: u32,
        /// Set or clear.
        set: bool,
    },
    /// IP version.
    NfProto(Family),
    /// IP protocol number.
    L4Proto {
        /// Protocol number.
        proto: u8,
        /// Negated.
        neg: bool,
    },
    /// Address in a named set.
    Addr {
        /// Family of the set.
        family: Family,
        /// Source or destination address.
        side: Side,
        /// Negated.
        neg: bool,
        /// Set name.
        set: String,
    },
    /// Transport port in a list of ranges.
    Ports {
        /// Source or destination port.
        side: Side,
        /// Negated.
        neg: bool,
        /// Inclusive ranges.
        ranges: Vec<(u16, u16)>,
    },
    /// (address, protocol, port) in a named-port set.
    NamedPort {
        /// Family of the set.
        family: Family,
        /// Source or destination.
        side: Side,
        /// Negated.
        neg: bool,
        /// Set name.
        set: String,
    },
    /// ICMP (v4 or v6 by family) type.
    IcmpType {
        /// ICMP or ICMPv6.
        family: Family,
        /// Type.
        value: u8,
        /// Negated.
        neg: bool,
    },
    /// ICMP (v4 or v6 by family) code.
    IcmpCode {
        /// ICMP or ICMPv6.
        family: Family,
        /// Code.
        value: u8,
        /// Negated.
        neg: bool,
    },
}

/// A non-terminal statement.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Statement {
    /// `meta mark set meta mark | bits`.
    SetMark(u32),
    /// `meta mark set meta mark & ~bits`.
    ClearMark(u32),
    /// `log prefix "<prefix>"`.
    Log(String),
}

/// How a rule ends.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    /// Accept (ends this table's evaluation of the packet).
    Accept,
    /// Drop.
    Drop,
    /// Back to the calling chain.
    Return,
    /// Call a chain.
    Jump(String),
    /// Continue in a chain without coming back here.
    Goto(String),
    /// Look the interface up in a verdict map; no entry: next rule.
    Vmap {
        /// Which interface is the key.
        dir: Iface,
        /// Map name.
        map: String,
    },
}

/// A rule: all matches hold → statements run → verdict (none: next rule).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Rule {
    /// Conditions, all required.
    pub matches: Vec<Match>,
    /// Statements.
    pub statements: Vec<Statement>,
    /// Verdict.
    pub verdict: Option<Verdict>,
    /// Comment.
    pub comment: Option<String>,
}

impl Rule {
    /// A rule with these matches and verdict.
    pub fn new(matches: Vec<Match>, verdict: Verdict) -> Rule {
        Rule {
            matches,
            verdict: Some(verdict),
            ..Rule::default()
        }
    }

    /// With a comment.
    pub fn comment(mut self, c: impl Into<String>) -> Rule {
        self.comment = Some(c.into());
        self
    }

    /// Names of the chains, sets and maps the rule refers to.
    pub fn references(&self) -> impl Iterator<Item = &str> {
        let from_matches = self.matches.iter().filter_map(|m| match m {
            Match::Addr { set, .. } | Match::NamedPort { set, .. } => Some(set.as_str()),
            _ => None,
        });
        from_matches.chain(self.verdict.iter().filter_map(Verdict::target))
    }
}

impl Verdict {
    /// The chain or map this verdict refers to.
    pub fn target(&self) -> Option<&str> {
        match self {
            Verdict::Jump(c) | Verdict::Goto(c) => Some(c),
            Verdict::Vmap { map, .. } => Some(map),
            _ => None,
        }
    }
}

/// A chain.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chain {
    /// Hook for base chains (type filter, priority filter, policy accept).
    pub hook: Option<Hook>,
    /// Comment (what the chain is for).
    pub comment: Option<String>,
    /// Rules in order.
    pub rules: Vec<Rule>,
}

/// What a set holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SetKind {
    /// Addresses and networks of one family.
    Addr(Family),
    /// (address or network, protocol, port) of one family.
    NamedPort(Family),
}

/// A set element.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Element {
    /// An address or network.
    Net(IpNet),
    /// A named port: network, protocol, port.
    NamedPort(IpNet, u8, u16),
}

/// A named set (always `flags interval`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    /// Element type.
    pub kind: SetKind,
    /// What the set stands for.
    pub comment: String,
    /// Elements (disjoint).
    pub elements: BTreeSet<Element>,
}

/// A verdict map keyed by interface name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Map {
    /// Interface name → verdict.
    pub elements: BTreeMap<String, Verdict>,
}

/// The whole table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ruleset {
    /// Named sets.
    pub sets: BTreeMap<String, Set>,
    /// Verdict maps.
    pub maps: BTreeMap<String, Map>,
    /// Chains.
    pub chains: BTreeMap<String, Chain>,
}

impl Ruleset {
    /// The whole table as `nft -f` input. It starts by creating and deleting
    /// the table, so it replaces whatever the table held, atomically, and
    /// works whether or not the table exists.
    pub fn full(&self) -> String {
        render::full(self)
    }

    /// Every name something refers to, with who refers to it.
    pub fn references(&self) -> Vec<(String, &str)> {
        let mut out = Vec::new();
        for (name, c) in &self.chains {
            for r in &c.rules {
                out.extend(r.references().map(|t| (format!("chain {name}"), t)));
            }
        }
        for (name, m) in &self.maps {
            out.extend(
                m.elements
                    .values()
                    .filter_map(Verdict::target)
                    .map(|t| (format!("map {name}"), t)),
            );
        }
        out
    }

    /// Checks that every reference resolves (the table would load).
    pub fn check_references(&self) -> Result<(), String> {
        for (from, to) in self.references() {
            if !self.chains.contains_key(to)
                && !self.sets.contains_key(to)
                && !self.maps.contains_key(to)
            {
                return Err(format!("{from} refers to {to}, which does not exist"));
            }
        }
        Ok(())
    }
}

/// A short, stable hash of `s` (64-bit FNV-1a, 16 hex digits): names of
/// chains and sets are derived from what they stand for with it.
pub fn short_hash(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Drops networks contained in another of the list; sorts and de-duplicates.
/// The result is disjoint, as an interval set needs.
pub fn disjoint_nets(nets: impl IntoIterator<Item = IpNet>) -> Vec<IpNet> {
    let mut all: Vec<IpNet> = nets.into_iter().collect();
    // Wider networks first among equal addresses, so containment is seen early.
    all.sort_by(|a, b| {
        a.network()
            .cmp(&b.network())
            .then(a.prefix_len().cmp(&b.prefix_len()))
    });
    all.dedup();
    let mut out: Vec<IpNet> = Vec::with_capacity(all.len());
    for n in all {
        if !out.last().is_some_and(|last: &IpNet| last.contains(&n)) {
            out.push(n);
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests;
