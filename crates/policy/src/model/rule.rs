//! One policy or profile rule, resolved: protocol numbers, parsed nets, the
//! effective selectors libcalico-go computes (`GetEntityRuleSelector` in
//! `updateprocessors/rules.go`), ports split into numbers and names.

use calico_api::resources::{EntityRule, IcmpFields, Port, Rule as ApiRule};
use calico_api::selector::Selector;
use ipnet::IpNet;

use super::{LABEL_NAMESPACE, LABEL_SERVICE_ACCOUNT, NS_PREFIX, SA_PREFIX, parse_net, proto};

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// The packet is allowed (in this direction).
    Allow,
    /// The packet is dropped.
    Deny,
    /// Skip the rest of the tier: the next tier (or the profiles) decides.
    Pass,
    /// Write a kernel log line and go on with the next rule.
    Log,
}

/// An IP version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// Both, v4 first.
    pub const BOTH: [Family; 2] = [Family::V4, Family::V6];

    /// The family of a network.
    pub fn of(n: &IpNet) -> Family {
        match n {
            IpNet::V4(_) => Family::V4,
            IpNet::V6(_) => Family::V6,
        }
    }
}

/// An ICMP type and optional code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Icmp {
    /// ICMP type.
    pub icmp_type: u8,
    /// ICMP code.
    pub code: Option<u8>,
}

/// The ports part of a source or destination: numbers and ranges, and names
/// resolved against the endpoints the side's selector picks.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Ports {
    /// Inclusive ranges (a single port is `(p, p)`).
    pub ranges: Vec<(u16, u16)>,
    /// Named ports.
    pub names: Vec<String>,
}

impl Ports {
    fn from_api(ports: &[Port]) -> Ports {
        let mut out = Ports::default();
        for p in ports {
            match p {
                Port::Number(n) => out.ranges.push((*n, *n)),
                Port::Range(a, b) => out.ranges.push((*a, *b)),
                Port::Named(n) => out.names.push(n.clone()),
            }
        }
        out.names.sort();
        out.names.dedup();
        out
    }

    /// No port constraint at all.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty() && self.names.is_empty()
    }
}

/// The source or destination side of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Entity {
    /// The address must be in one of these (empty: no constraint).
    pub nets: Vec<IpNet>,
    /// The address must be in none of these.
    pub not_nets: Vec<IpNet>,
    /// The address must belong to an endpoint or network set this selects
    /// (namespace, service-account and endpoint selectors combined).
    pub selector: Option<Selector>,
    /// The address must belong to nothing this selects.
    pub not_selector: Option<Selector>,
    /// The port must be one of these.
    pub ports: Ports,
    /// The port must be none of these.
    pub not_ports: Ports,
}

impl Entity {
    /// The selector named ports are resolved against: the positive selector, or every endpoint.
    pub fn named_port_selector(&self) -> Selector {
        self.selector.clone().unwrap_or_default()
    }
}

/// A resolved rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    /// The action.
    pub action: Action,
    /// Only packets of this IP version.
    pub ip_version: Option<Family>,
    /// IP protocol number the packet must have.
    pub protocol: Option<u8>,
    /// IP protocol number the packet must not have.
    pub not_protocol: Option<u8>,
    /// ICMP type/code the packet must have.
    pub icmp: Option<Icmp>,
    /// ICMP type/code the packet must not have.
    pub not_icmp: Option<Icmp>,
    /// Source side.
    pub src: Entity,
    /// Destination side.
    pub dst: Entity,
}

/// The namespace context of the policy a rule belongs to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope<'a> {
    /// A namespaced NetworkPolicy: selectors are limited to its namespace.
    Namespace(&'a str),
    /// A GlobalNetworkPolicy or a Profile.
    Global,
}

/// Parses a rule; errors name the field below `field` (e.g. `spec.ingress[0]`).
pub(crate) fn resolve(r: &ApiRule, scope: Scope<'_>, field: &str) -> Result<Rule, String> {
    let action = match r.action.as_str() {
        "Allow" => Action::Allow,
        "Deny" => Action::Deny,
        "Pass" => Action::Pass,
        "Log" => Action::Log,
        a => {
            return Err(format!(
                "{field}.action: {a:?} is not Allow, Deny, Pass or Log"
            ));
        }
    };
    let ip_version = match r.ip_version {
        None => None,
        Some(4) => Some(Family::V4),
        Some(6) => Some(Family::V6),
        Some(v) => return Err(format!("{field}.ipVersion: {v} is not 4 or 6")),
    };
    if r.http.is_some() {
        return Err(format!(
            "{field}.http: application-layer (HTTP) rules are not supported"
        ));
    }
    let protocol = r.protocol.as_ref().map(proto::number).transpose();
    let protocol = protocol.map_err(|e| format!("{field}.protocol: {e}"))?;
    let not_protocol = r.not_protocol.as_ref().map(proto::number).transpose();
    let not_protocol = not_protocol.map_err(|e| format!("{field}.notProtocol: {e}"))?;
    for (name, icmp) in [("icmp", &r.icmp), ("notICMP", &r.not_icmp)] {
        if icmp.is_some() && !matches!(protocol, Some(proto::ICMP | proto::ICMPV6)) {
            return Err(format!("{field}.{name}: requires protocol ICMP or ICMPv6"));
        }
    }
    let side = |name: &str, e: &Option<EntityRule>| -> Result<Entity, String> {
        let f = format!("{field}.{name}");
        let e = e.clone().unwrap_or_default();
        let ent = entity(&e, scope, &f)?;
        let uses_ports = !ent.ports.is_empty() || !ent.not_ports.is_empty();
        if uses_ports && !protocol.is_some_and(proto::has_ports) {
            return Err(format!(
                "{f}.ports: rules that match on ports must set protocol to TCP, UDP, SCTP or UDPLite"
            ));
        }
        Ok(ent)
    };
    Ok(Rule {
        action,
        ip_version,
        protocol,
        not_protocol,
        icmp: r
            .icmp
            .as_ref()
            .map(icmp)
            .transpose()
            .map_err(|e| format!("{field}.icmp: {e}"))?,
        not_icmp: r
            .not_icmp
            .as_ref()
            .map(icmp)
            .transpose()
            .map_err(|e| format!("{field}.notICMP: {e}"))?,
        src: side("source", &r.source)?,
        dst: side("destination", &r.destination)?,
    })
}

fn icmp(f: &IcmpFields) -> Result<Icmp, String> {
    match (f.icmp_type, f.code) {
        (Some(t), code) => Ok(Icmp { icmp_type: t, code }),
        (None, Some(_)) => Err("a code requires a type".into()),
        (None, None) => Err("a type is required".into()),
    }
}

/// A selector field: absent or empty means no selector (as Go's empty string).
fn selector_field(s: &Option<String>, field: &str) -> Result<Option<Selector>, String> {
    match s.as_deref() {
        None | Some("") => Ok(None),
        Some(s) => Selector::parse(s)
            .map(Some)
            .map_err(|e| format!("{field}: {e}")),
    }
}

fn nets(list: &[String], field: &str) -> Result<Vec<IpNet>, String> {
    list.iter()
        .enumerate()
        .map(|(i, n)| parse_net(n).map_err(|e| format!("{field}[{i}]: {e}")))
        .collect()
}

/// A namespace selector as libcalico-go rewrites it: keys prefixed `pcns.`,
/// `all()` = "in any namespace", `global()` = "in no namespace".
fn namespace_selector(s: &Selector) -> Selector {
    let in_ns = Selector::has_label(LABEL_NAMESPACE);
    s.with_key_prefix(NS_PREFIX)
        .replace_all_and_global(&in_ns, &in_ns.negated())
}

fn entity(e: &EntityRule, scope: Scope<'_>, f: &str) -> Result<Entity, String> {
    if e.services.is_some() {
        return Err(format!(
            "{f}.services: Kubernetes service matches are not supported"
        ));
    }
    let ns_sel = selector_field(&e.namespace_selector, &format!("{f}.namespaceSelector"))?;
    let sel = selector_field(&e.selector, &format!("{f}.selector"))?;
    let not_selector = selector_field(&e.not_selector, &format!("{f}.notSelector"))?;
    let sa = match &e.service_accounts {
        None => None,
        Some(sa) => {
            let s = selector_field(&sa.selector, &format!("{f}.serviceAccounts.selector"))?;
            let mut parts: Vec<Selector> = s.iter().map(|s| s.with_key_prefix(SA_PREFIX)).collect();
            if !sa.names.is_empty() {
                parts.push(Selector::label_in(
                    LABEL_SERVICE_ACCOUNT,
                    sa.names.iter().cloned(),
                ));
            }
            (!parts.is_empty()).then(|| Selector::and_all(parts))
        }
    };
    let namespace = match (&ns_sel, scope) {
        (Some(s), _) => Some(namespace_selector(s)),
        (None, Scope::Namespace(ns)) => Some(Selector::label_eq(LABEL_NAMESPACE, ns)),
        (None, Scope::Global) => None,
    };
    let mut selector = match (sa, sel) {
        (None, None) => None,
        (a, b) => Some(Selector::and_all(a.into_iter().chain(b))),
    };
    if let Some(ns) = namespace
        && (selector.is_some() || not_selector.is_some() || ns_sel.is_some())
    {
        selector = Some(Selector::and_all([ns].into_iter().chain(selector)));
    }
    Ok(Entity {
        nets: nets(&e.nets, &format!("{f}.nets"))?,
        not_nets: nets(&e.not_nets, &format!("{f}.notNets"))?,
        selector,
        not_selector,
        ports: Ports::from_api(&e.ports),
        not_ports: Ports::from_api(&e.not_ports),
    })
}
