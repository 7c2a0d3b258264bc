//! nft syntax of the ruleset model.
//!
//! Invariants: rendering is deterministic; strings are always quoted and
//! never contain `"` (nft strings have no escapes); the table body lists
//! every object after the objects it refers to, so `nft -f` resolves names
//! on one pass.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Display, Formatter, Write};

use ipnet::IpNet;

use super::{
    Chain, CtState, Element, Family, Hook, Iface, Map, Match, Rule, Ruleset, Set, SetKind, Side,
    Statement, TABLE, Verdict,
};

/// Makes `s` safe inside an nft string: no quotes, no newlines, at most 120 bytes.
pub fn quote(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| match c {
            '"' => '\'',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    if out.len() > 120 {
        let mut end = 117;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push_str("...");
    }
    format!("\"{out}\"")
}

fn ip_kw(f: Family) -> &'static str {
    match f {
        Family::V4 => "ip",
        Family::V6 => "ip6",
    }
}

fn side_kw(s: Side) -> &'static str {
    match s {
        Side::Src => "saddr",
        Side::Dst => "daddr",
    }
}

fn port_kw(s: Side) -> &'static str {
    match s {
        Side::Src => "sport",
        Side::Dst => "dport",
    }
}

fn iface_kw(d: Iface) -> &'static str {
    match d {
        Iface::In => "iifname",
        Iface::Out => "oifname",
    }
}

fn neg(n: bool) -> &'static str {
    if n { "!= " } else { "" }
}

fn range(f: &mut Formatter<'_>, (a, b): (u16, u16)) -> fmt::Result {
    if a == b {
        write!(f, "{a}")
    } else {
        write!(f, "{a}-{b}")
    }
}

impl Display for Match {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Match::Iface { dir, name } => write!(f, "{} {}", iface_kw(*dir), quote(name)),
            Match::Ct(CtState::EstablishedRelated) => f.write_str("ct state established,related"),
            Match::Ct(CtState::Invalid) => f.write_str("ct state invalid"),
            Match::Mark { bits, set } => {
                let value = if *set { *bits } else { 0 };
                write!(f, "meta mark & {bits:#010x} == {value:#010x}")
            }
            Match::NfProto(Family::V4) => f.write_str("meta nfproto ipv4"),
            Match::NfProto(Family::V6) => f.write_str("meta nfproto ipv6"),
            Match::L4Proto { proto, neg: n } => write!(f, "meta l4proto {}{proto}", neg(*n)),
            Match::Addr {
                family,
                side,
                neg: n,
                set,
            } => {
                write!(f, "{} {} {}@{set}", ip_kw(*family), side_kw(*side), neg(*n))
            }
            Match::Ports {
                side,
                neg: n,
                ranges,
            } => {
                write!(f, "th {} {}", port_kw(*side), neg(*n))?;
                match ranges.as_slice() {
                    [one] => range(f, *one),
                    many => {
                        f.write_str("{ ")?;
                        for (i, r) in many.iter().enumerate() {
                            if i > 0 {
                                f.write_str(", ")?;
                            }
                            range(f, *r)?;
                        }
                        f.write_str(" }")
                    }
                }
            }
            Match::NamedPort {
                family,
                side,
                neg: n,
                set,
            } => write!(
                f,
                "{} {} . meta l4proto . th {} {}@{set}",
                ip_kw(*family),
                side_kw(*side),
                port_kw(*side),
                neg(*n)
            ),
            Match::IcmpType {
                family,
                value,
                neg: n,
            } => {
                write!(f, "{} type {}{value}", icmp_kw(*family), neg(*n))
            }
            Match::IcmpCode {
                family,
                value,
                neg: n,
            } => {
                write!(f, "{} code {}{value}", icmp_kw(*family), neg(*n))
            }
        }
    }
}

fn icmp_kw(f: Family) -> &'static str {
    match f {
        Family::V4 => "icmp",
        Family::V6 => "icmpv6",
    }
}

impl Display for Statement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Statement::SetMark(b) => write!(f, "meta mark set meta mark | {b:#010x}"),
            Statement::ClearMark(b) => write!(f, "meta mark set meta mark & {:#010x}", !b),
            Statement::Log(p) => write!(f, "log prefix {}", quote(p)),
        }
    }
}

impl Display for Verdict {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Accept => f.write_str("accept"),
            Verdict::Drop => f.write_str("drop"),
            Verdict::Return => f.write_str("return"),
            Verdict::Jump(c) => write!(f, "jump {c}"),
            Verdict::Goto(c) => write!(f, "goto {c}"),
            Verdict::Vmap { dir, map } => write!(f, "{} vmap @{map}", iface_kw(*dir)),
        }
    }
}

impl Display for Rule {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self.matches.iter().map(ToString::to_string).collect();
        parts.extend(self.statements.iter().map(ToString::to_string));
        parts.extend(self.verdict.iter().map(ToString::to_string));
        if let Some(c) = &self.comment {
            parts.push(format!("comment {}", quote(c)));
        }
        f.write_str(&parts.join(" "))
    }
}

fn net(f: &mut Formatter<'_>, n: &IpNet) -> fmt::Result {
    if n.prefix_len() == n.max_prefix_len() {
        write!(f, "{}", n.addr())
    } else {
        write!(f, "{n}")
    }
}

impl Display for Element {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Element::Net(n) => net(f, n),
            Element::NamedPort(n, proto, port) => {
                net(f, n)?;
                write!(f, " . {proto} . {port}")
            }
        }
    }
}

impl Display for Hook {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Hook::Forward => "forward",
            Hook::Input => "input",
            Hook::Output => "output",
        })
    }
}

/// `type …; flags interval; comment …;` of a set.
pub(super) fn set_spec(s: &Set) -> String {
    let ty = match s.kind {
        SetKind::Addr(Family::V4) => "ipv4_addr",
        SetKind::Addr(Family::V6) => "ipv6_addr",
        SetKind::NamedPort(Family::V4) => "ipv4_addr . inet_proto . inet_service",
        SetKind::NamedPort(Family::V6) => "ipv6_addr . inet_proto . inet_service",
    };
    format!("type {ty}; flags interval; comment {};", quote(&s.comment))
}

/// `{ a, b }` of elements.
pub(super) fn elements<T: Display>(items: impl IntoIterator<Item = T>) -> String {
    let items: Vec<String> = items.into_iter().map(|e| e.to_string()).collect();
    format!("{{ {} }}", items.join(", "))
}

/// `"cali1" : jump x` map entries.
pub(super) fn map_entry(key: &str, v: &Verdict) -> String {
    format!("{} : {v}", quote(key))
}

pub(super) const MAP_SPEC: &str = "type ifname : verdict;";

/// `type filter hook …` / `comment …;` header lines of a chain.
pub(super) fn chain_header(c: &Chain) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(h) = c.hook {
        lines.push(format!(
            "type filter hook {h} priority filter; policy accept;"
        ));
    }
    if let Some(cm) = &c.comment {
        lines.push(format!("comment {};", quote(cm)));
    }
    lines
}

/// `elements = { … }` with one element per line (nothing when empty).
fn write_elements(out: &mut String, items: impl IntoIterator<Item = String>) {
    let items: Vec<String> = items.into_iter().collect();
    if !items.is_empty() {
        let _ = writeln!(
            out,
            "\t\telements = {{\n\t\t\t{}\n\t\t}}",
            items.join(",\n\t\t\t")
        );
    }
}

fn write_set(out: &mut String, name: &str, s: &Set) {
    let _ = writeln!(
        out,
        "\tset {name} {{\n\t\t{}",
        set_spec(s).replace("; ", ";\n\t\t")
    );
    write_elements(out, s.elements.iter().map(ToString::to_string));
    out.push_str("\t}\n");
}

fn write_map(out: &mut String, name: &str, m: &Map) {
    let _ = writeln!(out, "\tmap {name} {{\n\t\t{MAP_SPEC}");
    write_elements(out, m.elements.iter().map(|(k, v)| map_entry(k, v)));
    out.push_str("\t}\n");
}

fn write_chain(out: &mut String, name: &str, c: &Chain) {
    let _ = writeln!(out, "\tchain {name} {{");
    for l in chain_header(c) {
        let _ = writeln!(out, "\t\t{l}");
    }
    for r in &c.rules {
        let _ = writeln!(out, "\t\t{r}");
    }
    out.push_str("\t}\n");
}

/// Names in an order where each comes after everything it refers to
/// (ties broken by name; cycles, which the compiler never makes, last).
pub(super) fn dependency_order(r: &Ruleset) -> Vec<String> {
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for name in r.sets.keys() {
        deps.entry(name.clone()).or_default();
    }
    for (name, m) in &r.maps {
        let d = deps.entry(name.clone()).or_default();
        d.extend(
            m.elements
                .values()
                .filter_map(Verdict::target)
                .map(String::from),
        );
    }
    for (name, c) in &r.chains {
        let d = deps.entry(name.clone()).or_default();
        for rule in &c.rules {
            d.extend(rule.references().map(String::from));
        }
    }
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut order = Vec::new();
    loop {
        let ready: Vec<String> = deps
            .iter()
            .filter(|(n, d)| {
                !done.contains(*n) && d.iter().all(|x| done.contains(x) || !deps.contains_key(x))
            })
            .map(|(n, _)| n.clone())
            .collect();
        if ready.is_empty() {
            break;
        }
        for n in ready {
            done.insert(n.clone());
            order.push(n);
        }
    }
    order.extend(deps.keys().filter(|n| !done.contains(*n)).cloned());
    order
}

pub(super) fn full(r: &Ruleset) -> String {
    let mut out = format!("table {TABLE} {{}}\ndelete table {TABLE}\ntable {TABLE} {{\n");
    for name in dependency_order(r) {
        if let Some(s) = r.sets.get(&name) {
            write_set(&mut out, &name, s);
        } else if let Some(m) = r.maps.get(&name) {
            write_map(&mut out, &name, m);
        } else if let Some(c) = r.chains.get(&name) {
            write_chain(&mut out, &name, c);
        }
    }
    out.push_str("}\n");
    out
}
