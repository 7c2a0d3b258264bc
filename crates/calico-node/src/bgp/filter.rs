//! BGPFilter rules and which learned routes a node takes (pure): the
//! import and export rules of a peer's BGPFilters, and the prefixes no
//! peer may take over.
//!
//! A learned prefix that covers or equals something of the node's own
//! ([`Local`]: its affine blocks, the networks on its interfaces, its own
//! addresses), or equals the address of one of its workloads, is kept (and
//! passed on as any route) but never put in the kernel, where it would
//! stand beside or over the node's own routes — unless an import rule of
//! the peer's BGPFilters accepts it. A rule that rejects a prefix drops it when it is
//! received, as BIRD's import filter does in Calico. See [`decide`].
//!
//! Rules, as Calico renders them into BIRD filters: tried in the order the
//! BGPPeer names its filters and each filter lists them; the first that
//! matches decides. `Equal`/`NotEqual` compare the prefix with the CIDR,
//! `In`/`NotIn` ask whether it lies inside it (equal included), within
//! `prefixLength` `min..=max` (default: the CIDR's length to the family's
//! maximum); `source: RemotePeers` holds for routes learned from peers
//! (every imported one; on export, not the node's own blocks and
//! services). An `interface` match is not known to this speaker: such a
//! rule never matches (and [`Rules::compile`] reports it). On export a
//! rule decides among what the speaker would send a peer (its exports and
//! the learned routes it passes on; `Accept` also passes on a learned route
//! Calico's default export filter holds back); it adds no other routes.

use std::net::IpAddr;

use calico_api::resources::{BGPFilterRule, BGPFilterSpec};
use ipnet::IpNet;

/// What a rule does with a prefix it matches.
pub use calico_bgp::rib::Verdict;

/// `matchOperator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Equal,
    NotEqual,
    In,
    NotIn,
}

/// Which rules of a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Import,
    Export,
}

/// One rule, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The CIDR (truncated), the operator and the prefix lengths `In`
    /// and `NotIn` take; `None`: every prefix.
    pub cidr: Option<(IpNet, Op, (u8, u8))>,
    /// `source: RemotePeers`: only routes learned from peers.
    pub learned_only: bool,
    /// The rule has a condition this speaker cannot evaluate: it never
    /// matches.
    pub never: bool,
    pub verdict: Verdict,
}

impl Rule {
    /// Whether the rule matches `prefix` (`learned`: from a peer, not one
    /// of the node's own exports).
    pub fn matches(&self, prefix: &IpNet, learned: bool) -> bool {
        if self.never || (self.learned_only && !learned) {
            return false;
        }
        let Some((cidr, op, (min, max))) = self.cidr else {
            return true;
        };
        let inside = || {
            prefix.addr().is_ipv4() == cidr.addr().is_ipv4()
                && cidr.contains(&prefix.network())
                && (min..=max).contains(&prefix.prefix_len())
        };
        match op {
            Op::Equal => prefix.trunc() == cidr,
            Op::NotEqual => prefix.trunc() != cidr,
            Op::In => inside(),
            Op::NotIn => !inside(),
        }
    }
}

/// A peer's import (or export) rules for the family of its session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules(pub Vec<Rule>);

impl Rules {
    /// The verdict of the first rule that matches `prefix` (`learned`:
    /// from a peer), if any.
    pub fn verdict(&self, prefix: &IpNet, learned: bool) -> Option<Verdict> {
        self.0
            .iter()
            .find(|r| r.matches(prefix, learned))
            .map(|r| r.verdict)
    }

    /// The rules of `filters` for `dir` and the family (`importV4`, or
    /// `importV6` with `v6`, ...), in order; with what is not applied as
    /// it is written, one line each.
    pub fn compile(
        filters: &[(&str, &BGPFilterSpec)],
        dir: Direction,
        v6: bool,
    ) -> (Rules, Vec<String>) {
        let mut rules = Vec::new();
        let mut problems = Vec::new();
        for (name, spec) in filters {
            let (list, field) = match (dir, v6) {
                (Direction::Import, false) => (&spec.import_v4, "importV4"),
                (Direction::Import, true) => (&spec.import_v6, "importV6"),
                (Direction::Export, false) => (&spec.export_v4, "exportV4"),
                (Direction::Export, true) => (&spec.export_v6, "exportV6"),
            };
            for (i, r) in list.iter().enumerate() {
                match rule(r, v6) {
                    Ok(rule) => {
                        if rule.never {
                            problems.push(format!(
                                "BGPFilter {name}: {field}[{i}] matches an interface, \
                                 which routes do not have here: the rule never matches"
                            ));
                        }
                        rules.push(rule);
                    }
                    Err(e) => problems.push(format!(
                        "BGPFilter {name}: {field}[{i}]: {e}: the rule is left out"
                    )),
                }
            }
        }
        (Rules(rules), problems)
    }
}

impl calico_bgp::rib::Policy for Rules {
    fn verdict(&self, prefix: &IpNet, learned: bool) -> Option<Verdict> {
        Rules::verdict(self, prefix, learned)
    }
}

fn rule(r: &BGPFilterRule, v6: bool) -> Result<Rule, String> {
    let verdict = match r.action.as_str() {
        "Accept" => Verdict::Accept,
        "Reject" => Verdict::Reject,
        a => return Err(format!("action {a:?} is neither Accept nor Reject")),
    };
    let full: u8 = if v6 { 128 } else { 32 };
    let cidr = match (r.cidr.as_deref(), r.match_operator.as_deref()) {
        (None | Some(""), None | Some("")) => None,
        (Some(c), Some(o)) if !c.is_empty() && !o.is_empty() => {
            let net: IpNet = c.parse().map_err(|_| format!("{c:?} is not a CIDR"))?;
            if net.addr().is_ipv6() != v6 {
                return Err(format!("{c:?} is not of the list's family"));
            }
            let op = match o {
                "Equal" => Op::Equal,
                "NotEqual" => Op::NotEqual,
                "In" => Op::In,
                "NotIn" => Op::NotIn,
                _ => return Err(format!("matchOperator {o:?} is not known")),
            };
            let clamp = |v: Option<i32>, default: u8| {
                v.map_or(default, |v| {
                    u8::try_from(v.clamp(0, i32::from(full))).unwrap_or(full)
                })
            };
            let pl = r.prefix_length.unwrap_or_default();
            let min = clamp(pl.min, 0).max(net.prefix_len());
            let max = clamp(pl.max, full);
            Some((net.trunc(), op, (min, max)))
        }
        _ => return Err("cidr and matchOperator go together".into()),
    };
    Ok(Rule {
        cidr,
        learned_only: r.source.is_some(),
        never: r.interface.is_some(),
        verdict,
    })
}

/// The node's own prefixes: its affine blocks, the networks on its
/// interfaces and its own addresses, which a learned prefix may neither
/// cover nor equal; and the host prefixes of its workloads, which it may
/// not equal. (A workload may have its address from another node's block,
/// an `ipAddrs` annotation: that block stays routable, and the workload's
/// own host route, more specific, wins over it.) Sorted and truncated,
/// looked up without a scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Local {
    own: Vec<IpNet>,
    hosts: Vec<IpNet>,
}

fn sorted(nets: impl IntoIterator<Item = IpNet>) -> Vec<IpNet> {
    let mut v: Vec<IpNet> = nets.into_iter().map(|n| n.trunc()).collect();
    v.sort();
    v.dedup();
    v
}

impl Local {
    pub fn new(
        own: impl IntoIterator<Item = IpNet>,
        hosts: impl IntoIterator<Item = IpNet>,
    ) -> Local {
        Local {
            own: sorted(own),
            hosts: sorted(hosts),
        }
    }

    /// The prefixes a learned prefix may not cover or equal.
    pub fn own(&self) -> &[IpNet] {
        &self.own
    }

    /// Whether `prefix` covers or equals one of the node's own prefixes,
    /// or equals one of its workloads' host prefixes.
    pub fn protects(&self, prefix: &IpNet) -> bool {
        if self.hosts.binary_search(&prefix.trunc()).is_ok() {
            return true;
        }
        // Those inside `prefix` have their network address between its
        // first and last address (and sort there: by address, then length).
        let first = match prefix.network() {
            IpAddr::V4(a) => IpNet::V4(ipnet::Ipv4Net::new(a, 0).unwrap_or_default()),
            IpAddr::V6(a) => IpNet::V6(ipnet::Ipv6Net::new(a, 0).unwrap_or_default()),
        };
        let last = prefix.broadcast();
        let from = self.own.partition_point(|n| *n < first);
        self.own[from..]
            .iter()
            .take_while(|n| n.addr().is_ipv4() == last.is_ipv4() && n.network() <= last)
            .any(|n| n.prefix_len() >= prefix.prefix_len())
    }
}

/// What becomes of a learned route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Import {
    /// Kept, and the kernel may have it (if it is the best path).
    Kernel,
    /// Kept (passed on to peers as any route) but never installed.
    Kept,
    /// Not kept: as if never received.
    Dropped,
}

/// What becomes of a learned `prefix`, given the node's own prefixes and
/// the verdict of the peer's import rules on it.
pub fn decide(prefix: &IpNet, local: &Local, verdict: Option<Verdict>) -> Import {
    match verdict {
        Some(Verdict::Reject) => Import::Dropped,
        Some(Verdict::Accept) => Import::Kernel,
        None if local.protects(prefix) => Import::Kept,
        None => Import::Kernel,
    }
}

#[cfg(test)]
mod tests;
