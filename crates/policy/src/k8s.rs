//! Kubernetes NetworkPolicy → Calico NetworkPolicy, as libcalico-go's
//! `K8sNetworkPolicyToCalico` (`lib/backend/k8s/conversion/conversion.go`).
//!
//! - name `knp.default.<name>`, same namespace, order 1000, default tier;
//! - `podSelector` → `projectcalico.org/orchestrator == 'k8s' && <labels>`;
//! - per rule: peers × ports grouped by protocol (sorted by name), one Allow
//!   rule per (protocol, peer); numeric ports coalesced into ranges
//!   (`SimplifyPorts`), named ports kept; a port without protocol is TCP;
//! - a peer's `namespaceSelector` of `{}` is `all()`; `ipBlock` gives `nets`
//!   (masked to the network) and `notNets` from `except`;
//! - `policyTypes` copied; none means `[Ingress]`.
//!
//! A rule that cannot be converted is dropped and reported, the rest of the
//! policy is kept (as Calico). One deviation: Calico turns an unparsable
//! `ipBlock` CIDR into a peer that matches everything (it logs and returns no
//! nets); here such a rule is dropped and reported instead, which can only
//! allow less. The Kubernetes API server refuses such CIDRs anyway.

use std::collections::BTreeMap;

use calico_api::ObjectMeta;
use calico_api::k8s::{self, IntOrString, LabelSelector, Peer, PolicyPort};
use calico_api::meta::Object;
use calico_api::resources::{EntityRule, NetworkPolicySpec, Port, Protocol, Rule};
use ipnet::IpNet;

use crate::Problem;

/// Prefix of the names of converted policies.
pub const NAME_PREFIX: &str = "knp.default.";
/// Order of converted policies.
pub const ORDER: f64 = 1000.0;

#[derive(Clone, Copy, PartialEq, Eq)]
enum SelectorKind {
    Pod,
    Namespace,
}

/// The Calico NetworkPolicy that enforces `np`, and the rules that could not
/// be converted (dropped).
pub fn convert(np: &k8s::NetworkPolicy) -> (Object<NetworkPolicySpec>, Vec<Problem>) {
    let ns = np.namespace();
    let resource = format!("NetworkPolicy.networking.k8s.io({ns}/{})", np.metadata.name);
    let mut problems = Vec::new();
    let mut convert_rules = |dir: &str, rules: Vec<(&[Peer], &[PolicyPort])>, ingress: bool| {
        let mut out = Vec::new();
        for (i, (peers, ports)) in rules.into_iter().enumerate() {
            match rule_to_calico(peers, ports, ingress) {
                Ok(r) => out.extend(r),
                Err(e) => problems.push(Problem::new(
                    &resource,
                    format!("spec.{dir}[{i}] dropped: {e}"),
                )),
            }
        }
        out
    };
    let ingress = convert_rules(
        "ingress",
        np.spec
            .ingress
            .iter()
            .map(|r| (&r.from[..], &r.ports[..]))
            .collect(),
        true,
    );
    let egress = convert_rules(
        "egress",
        np.spec
            .egress
            .iter()
            .map(|r| (&r.to[..], &r.ports[..]))
            .collect(),
        false,
    );
    let has = |t: &str| np.spec.policy_types.iter().any(|p| p == t);
    let mut types = Vec::new();
    if has("Ingress") {
        types.push("Ingress".to_string());
    }
    if has("Egress") {
        types.push("Egress".to_string());
    }
    if types.is_empty() {
        types.push("Ingress".to_string());
    }
    let spec = NetworkPolicySpec {
        order: Some(ORDER),
        selector: non_empty(selector_to_calico(
            Some(&np.spec.pod_selector),
            SelectorKind::Pod,
        )),
        types,
        ingress,
        egress,
        ..Default::default()
    };
    let metadata = ObjectMeta {
        name: format!("{NAME_PREFIX}{}", np.metadata.name),
        namespace: Some(ns.to_string()),
        uid: np.metadata.uid.clone(),
        creation_timestamp: np.metadata.creation_timestamp.clone(),
        resource_version: np.metadata.resource_version.clone(),
        ..Default::default()
    };
    (
        Object {
            metadata,
            spec,
            status: None,
        },
        problems,
    )
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// libcalico-go's `k8sSelectorToCalico`.
fn selector_to_calico(s: Option<&LabelSelector>, kind: SelectorKind) -> String {
    let mut parts = Vec::new();
    if kind == SelectorKind::Pod {
        parts.push("projectcalico.org/orchestrator == 'k8s'".to_string());
    }
    let Some(s) = s else {
        return parts.join(" && ");
    };
    if kind == SelectorKind::Namespace
        && s.match_labels.is_empty()
        && s.match_expressions.is_empty()
    {
        return "all()".into();
    }
    for (k, v) in &s.match_labels {
        parts.push(format!("{k} == '{v}'"));
    }
    for e in &s.match_expressions {
        let values = e.values.join("', '");
        match e.operator.as_str() {
            "In" => parts.push(format!("{} in {{ '{values}' }}", e.key)),
            "NotIn" => parts.push(format!("{} not in {{ '{values}' }}", e.key)),
            "Exists" => parts.push(format!("has({})", e.key)),
            "DoesNotExist" => parts.push(format!("! has({})", e.key)),
            _ => {}
        }
    }
    parts.join(" && ")
}

/// Ports by protocol name; `None` means every port of that protocol, the
/// empty name means no port match at all.
type ProtocolPorts = BTreeMap<String, Option<Vec<Port>>>;

/// libcalico-go's `k8sRuleToCalico`.
fn rule_to_calico(
    peers: &[Peer],
    ports: &[PolicyPort],
    ingress: bool,
) -> Result<Vec<Rule>, String> {
    let peers: Vec<Option<&Peer>> = if peers.is_empty() {
        vec![None]
    } else {
        peers.iter().map(Some).collect()
    };
    let entities = peers
        .into_iter()
        .map(peer_to_calico)
        .collect::<Result<Vec<_>, _>>()?;
    let mut by_protocol = ProtocolPorts::new();
    if ports.is_empty() {
        by_protocol.insert(String::new(), None);
    }
    for p in ports {
        let (protocol, port) = port_to_calico(p)?;
        match (port, by_protocol.get_mut(&protocol)) {
            (None, _) => {
                by_protocol.insert(protocol, None);
            }
            (Some(port), None) => {
                by_protocol.insert(protocol, Some(vec![port]));
            }
            (Some(port), Some(Some(list))) => list.push(port),
            (Some(_), Some(None)) => {}
        }
    }
    let mut rules = Vec::new();
    for (protocol, ports) in by_protocol {
        let protocol = non_empty(protocol).map(Protocol::Named);
        let ports = simplify_ports(ports.unwrap_or_default());
        for peer in &entities {
            let mut entity = peer.clone();
            entity.ports = ports.clone();
            let (source, destination) = if ingress {
                let dst = EntityRule {
                    ports: std::mem::take(&mut entity.ports),
                    ..Default::default()
                };
                (entity, dst)
            } else {
                (EntityRule::default(), entity)
            };
            rules.push(Rule {
                action: "Allow".into(),
                protocol: protocol.clone(),
                source: Some(source).filter(|e| *e != EntityRule::default()),
                destination: Some(destination).filter(|e| *e != EntityRule::default()),
                ..Default::default()
            });
        }
    }
    Ok(rules)
}

/// libcalico-go's `k8sPeerToCalicoFields`, as an EntityRule without ports.
fn peer_to_calico(peer: Option<&Peer>) -> Result<EntityRule, String> {
    let Some(peer) = peer else {
        return Ok(EntityRule::default());
    };
    if let Some(block) = &peer.ip_block {
        let net = |s: &str| {
            s.parse::<IpNet>()
                .map(|n| n.trunc().to_string())
                .map_err(|_| format!("ipBlock CIDR {s:?} is not a CIDR"))
        };
        return Ok(EntityRule {
            nets: vec![net(&block.cidr)?],
            not_nets: block
                .except
                .iter()
                .map(|e| net(e))
                .collect::<Result<_, _>>()?,
            ..Default::default()
        });
    }
    Ok(EntityRule {
        selector: non_empty(selector_to_calico(
            peer.pod_selector.as_ref(),
            SelectorKind::Pod,
        )),
        namespace_selector: non_empty(selector_to_calico(
            peer.namespace_selector.as_ref(),
            SelectorKind::Namespace,
        )),
        ..Default::default()
    })
}

/// The protocol name (TCP when absent) and port (`None`: every port).
fn port_to_calico(p: &PolicyPort) -> Result<(String, Option<Port>), String> {
    let protocol = p.protocol.clone().unwrap_or_else(|| "TCP".into());
    Protocol::parse(&protocol)?;
    let Some(port) = &p.port else {
        return Ok((protocol, None));
    };
    let mut text = match port {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => s.clone(),
    };
    if let Some(end) = p.end_port {
        text = format!("{text}:{end}");
    }
    let port = Port::parse(&text).map_err(|e| format!("invalid port {text:?}: {e}"))?;
    Ok((protocol, Some(port)))
}

/// libcalico-go's `SimplifyPorts`: numeric ports coalesced into the fewest
/// ranges, after the named ports; unchanged when there is nothing to merge.
fn simplify_ports(ports: Vec<Port>) -> Vec<Port> {
    if ports.len() <= 1 {
        return ports;
    }
    let mut named = Vec::new();
    let mut numbers: Vec<u32> = Vec::new();
    for p in &ports {
        match p {
            Port::Named(_) => named.push(p.clone()),
            Port::Number(n) => numbers.push(u32::from(*n)),
            Port::Range(a, b) => numbers.extend(u32::from(*a)..=u32::from(*b)),
        }
    }
    if numbers.len() <= 1 {
        return ports;
    }
    numbers.sort_unstable();
    let mut out = named;
    let mut i = 0;
    while i < numbers.len() {
        let first = numbers[i];
        let mut last = first;
        i += 1;
        while i < numbers.len() && numbers[i] <= last + 1 {
            last = numbers[i];
            i += 1;
        }
        out.push(port_range(first, last));
    }
    out
}

fn port_range(first: u32, last: u32) -> Port {
    // Both come from u16 ports.
    let (a, b) = (
        u16::try_from(first).unwrap_or(u16::MAX),
        u16::try_from(last).unwrap_or(u16::MAX),
    );
    if a == b {
        Port::Number(a)
    } else {
        Port::Range(a, b)
    }
}

#[cfg(test)]
mod tests;
