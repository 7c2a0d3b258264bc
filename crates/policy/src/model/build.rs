//! Building the [`Model`] from a [`PolicyInput`]: labels with inheritance,
//! endpoint addresses and named ports, network sets, policies with their
//! effective selectors and inferred types, tiers and the orders Felix uses.
//!
//! Invariant: every problem names its resource and field, and leaves out
//! only that resource (or, for addresses and named ports, that entry).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use calico_api::meta::Object;
use calico_api::resources::{
    DEFAULT_TIER, DEFAULT_TIER_ORDER, EndpointPort as ApiPort, GlobalNetworkPolicySpec,
    GlobalNetworkSetSpec, HostEndpointSpec, NetworkPolicySpec, NetworkSetSpec, ProfileSpec,
    Rule as ApiRule, TierSpec, WorkloadEndpointSpec,
};
use calico_api::selector::Selector;
use ipnet::IpNet;

use super::rule::{self, Rule, Scope};
use super::{
    Endpoint, EndpointId, LABEL_NAMESPACE, LABEL_ORCHESTRATOR, LABEL_SERVICE_ACCOUNT, Labelled,
    Model, NS_PREFIX, NS_PROFILE_PREFIX, NamedPort, Policy, PolicyId, PolicyKind, Profile,
    SA_PREFIX, Tier, parse_net, proto,
};
use crate::input::{PolicyInput, Problem};

/// Resolves the input (see [`Model::build`]).
pub(super) fn build(input: &PolicyInput) -> Model {
    let mut problems = Vec::new();
    let mut profile_labels = ProfileLabels::new();
    let mut profiles = BTreeMap::new();
    for p in &input.profiles {
        profile_labels.insert(p.metadata.name.clone(), p.spec.labels_to_apply.clone());
        match profile(p) {
            Ok(r) => {
                profiles.insert(p.metadata.name.clone(), r);
            }
            Err(e) => problems.push(e),
        }
    }
    let local = &input.local_interfaces;
    let mut endpoints = Vec::new();
    for w in &input.workload_endpoints {
        let is_local = local.contains(&w.spec.interface_name);
        endpoints.push(workload(w, is_local, &profile_labels, &mut problems));
    }
    for h in &input.host_endpoints {
        let is_local = local.contains(&h.spec.interface_name);
        endpoints.extend(host(h, is_local, &profile_labels, &mut problems));
    }
    let mut sets = Vec::new();
    for s in &input.network_sets {
        sets.push(network_set(s, &profile_labels, &mut problems));
    }
    for s in &input.global_network_sets {
        sets.push(global_network_set(s, &mut problems));
    }
    let mut policies = Vec::new();
    let mut add = |(tier, id, r): PolicyResolution, problems: &mut Vec<Problem>| match r {
        Ok(p) => policies.push((tier, p)),
        Err(e) => problems.push(Problem::new(&id, e)),
    };
    for np in &input.network_policies {
        add(calico_network_policy(np), &mut problems);
    }
    for k in &input.kubernetes_network_policies {
        let (r, converted) = kubernetes_network_policy(k);
        problems.extend(converted);
        add(r, &mut problems);
    }
    for g in &input.global_network_policies {
        add(calico_global_network_policy(g), &mut problems);
    }
    let mut labelled: Vec<Labelled> = endpoints.iter().map(|e| e.labelled.clone()).collect();
    labelled.extend(sets);
    assemble(
        &input.settings,
        &input.tiers,
        policies,
        profiles,
        endpoints,
        labelled,
        problems,
    )
}

/// Each profile's `labelsToApply`, by profile name.
pub(crate) type ProfileLabels = BTreeMap<String, BTreeMap<String, String>>;

/// A policy resolved: its tier, its id, and the policy or what is wrong.
pub(crate) type PolicyResolution = (String, PolicyId, Result<Policy, String>);

/// Own labels first, then each profile's in order (earlier wins).
pub(crate) fn with_inherited(
    own: BTreeMap<String, String>,
    profiles: &[String],
    profile_labels: &ProfileLabels,
) -> BTreeMap<String, String> {
    let mut labels = own;
    for p in profiles {
        for (k, v) in profile_labels.get(p).into_iter().flatten() {
            labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    labels
}

fn rules(list: &[ApiRule], scope: Scope<'_>, dir: &str) -> Result<Vec<Rule>, String> {
    list.iter()
        .enumerate()
        .map(|(i, r)| rule::resolve(r, scope, &format!("spec.{dir}[{i}]")))
        .collect()
}

fn selector(s: Option<&str>, field: &str) -> Result<Selector, String> {
    Selector::parse(s.unwrap_or("")).map_err(|e| format!("{field}: {e}"))
}

fn optional_selector(s: Option<&str>, field: &str) -> Result<Option<Selector>, String> {
    match s {
        None | Some("") => Ok(None),
        Some(s) => selector(Some(s), field).map(Some),
    }
}

/// Which directions a policy governs: its `types`, or inferred.
fn governs(
    types: &[String],
    ingress: &[ApiRule],
    egress: &[ApiRule],
) -> Result<(bool, bool), String> {
    if types.is_empty() {
        return Ok(match (ingress.is_empty(), egress.is_empty()) {
            (_, true) => (true, false),
            (true, false) => (false, true),
            (false, false) => (true, true),
        });
    }
    let mut r = (false, false);
    for (i, t) in types.iter().enumerate() {
        match t.as_str() {
            "Ingress" => r.0 = true,
            "Egress" => r.1 = true,
            other => {
                return Err(format!(
                    "spec.types[{i}]: {other:?} is not Ingress or Egress"
                ));
            }
        }
    }
    Ok(r)
}

/// The parts of NetworkPolicy and GlobalNetworkPolicy specs policy needs.
struct PolicyParts<'a> {
    order: Option<f64>,
    types: &'a [String],
    ingress: &'a [ApiRule],
    egress: &'a [ApiRule],
}

fn resolve_policy(
    id: PolicyId,
    parts: &PolicyParts<'_>,
    selector: Selector,
    scope: Scope<'_>,
) -> Result<Policy, String> {
    if parts.order.is_some_and(|o| !o.is_finite()) {
        return Err("spec.order: not a finite number".into());
    }
    let (ingress, egress) = governs(parts.types, parts.ingress, parts.egress)?;
    Ok(Policy {
        id,
        order: parts.order,
        selector,
        ingress: if ingress {
            Some(rules(parts.ingress, scope, "ingress")?)
        } else {
            None
        },
        egress: if egress {
            Some(rules(parts.egress, scope, "egress")?)
        } else {
            None
        },
    })
}

/// A profile's rules, or the problem that leaves it out.
pub(crate) fn profile(p: &Object<ProfileSpec>) -> Result<Profile, Problem> {
    let name = &p.metadata.name;
    rules(&p.spec.ingress, Scope::Global, "ingress")
        .and_then(|ingress| {
            Ok(Profile {
                ingress,
                egress: rules(&p.spec.egress, Scope::Global, "egress")?,
            })
        })
        .map_err(|e| Problem::new(format!("Profile({name})"), e))
}

/// Host networks of a list of addresses; bad ones are reported.
fn addresses(
    id: &EndpointId,
    field: &str,
    list: &[String],
    problems: &mut Vec<Problem>,
) -> Vec<IpNet> {
    let mut out = Vec::new();
    for (i, a) in list.iter().enumerate() {
        match calico_api::validate::cidr_or_ip(a) {
            Ok(n) => out.push(IpNet::from(n.addr())),
            Err(e) => problems.push(Problem::new(id, format!("spec.{field}[{i}]: {e}"))),
        }
    }
    out
}

fn named_ports(id: &EndpointId, ports: &[ApiPort], problems: &mut Vec<Problem>) -> Vec<NamedPort> {
    let mut out = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        match proto::number(&p.protocol) {
            Ok(protocol) => out.push(NamedPort {
                name: p.name.clone(),
                protocol,
                port: p.port,
            }),
            Err(e) => problems.push(Problem::new(id, format!("spec.ports[{i}].protocol: {e}"))),
        }
    }
    out
}

/// A workload endpoint as policy sees it; its bad addresses and ports are
/// reported and left out.
pub(crate) fn workload(
    w: &Object<WorkloadEndpointSpec>,
    local: bool,
    profile_labels: &ProfileLabels,
    problems: &mut Vec<Problem>,
) -> Endpoint {
    let ns = w
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let id = EndpointId::workload(&ns, &w.metadata.name);
    let mut own = w.metadata.labels.clone();
    own.insert(LABEL_NAMESPACE.into(), ns.clone());
    if !w.spec.orchestrator.is_empty() {
        own.insert(LABEL_ORCHESTRATOR.into(), w.spec.orchestrator.clone());
    }
    if !w.spec.service_account_name.is_empty() {
        own.insert(
            LABEL_SERVICE_ACCOUNT.into(),
            w.spec.service_account_name.clone(),
        );
    }
    let nets = addresses(&id, "ipNetworks", &w.spec.ip_networks, problems);
    let ports = named_ports(&id, &w.spec.ports, problems);
    Endpoint {
        labelled: Labelled {
            labels: with_inherited(own, &w.spec.profiles, profile_labels),
            global: false,
            nets,
        },
        local,
        interface: w.spec.interface_name.clone(),
        ports,
        profiles: w.spec.profiles.clone(),
        id,
    }
}

/// A host endpoint as policy sees it, or nothing (reported) when it has
/// no named interface.
pub(crate) fn host(
    h: &Object<HostEndpointSpec>,
    local: bool,
    profile_labels: &ProfileLabels,
    problems: &mut Vec<Problem>,
) -> Option<Endpoint> {
    let id = EndpointId::host(&h.metadata.name);
    if h.spec.interface_name.is_empty() || h.spec.interface_name == "*" {
        problems.push(Problem::new(
            &id,
            "spec.interfaceName: host endpoints without a named interface (\"*\" or expectedIPs only) are not enforced yet",
        ));
        return None;
    }
    let nets = addresses(&id, "expectedIPs", &h.spec.expected_ips, problems);
    let ports = named_ports(&id, &h.spec.ports, problems);
    Some(Endpoint {
        labelled: Labelled {
            labels: with_inherited(h.metadata.labels.clone(), &h.spec.profiles, profile_labels),
            global: true,
            nets,
        },
        local,
        interface: h.spec.interface_name.clone(),
        ports,
        profiles: h.spec.profiles.clone(),
        id,
    })
}

fn set_nets(resource: &str, nets: &[String], problems: &mut Vec<Problem>) -> Vec<IpNet> {
    let mut out = Vec::new();
    for (i, n) in nets.iter().enumerate() {
        match parse_net(n) {
            Ok(n) => out.push(n),
            Err(e) => problems.push(Problem::new(resource, format!("spec.nets[{i}]: {e}"))),
        }
    }
    out
}

/// The namespace profile whose labels a NetworkSet in `ns` inherits.
pub(crate) fn network_set_profile(ns: &str) -> String {
    format!("{NS_PROFILE_PREFIX}{ns}")
}

/// A NetworkSet as selectors see it (it inherits its namespace's labels).
pub(crate) fn network_set(
    s: &Object<NetworkSetSpec>,
    profile_labels: &ProfileLabels,
    problems: &mut Vec<Problem>,
) -> Labelled {
    let ns = s
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let resource = format!("NetworkSet({ns}/{})", s.metadata.name);
    let nets = set_nets(&resource, &s.spec.nets, problems);
    let mut own = s.metadata.labels.clone();
    own.insert(LABEL_NAMESPACE.into(), ns.clone());
    let profiles = [network_set_profile(&ns)];
    Labelled {
        labels: with_inherited(own, &profiles, profile_labels),
        global: false,
        nets,
    }
}

/// A GlobalNetworkSet as selectors see it.
pub(crate) fn global_network_set(
    s: &Object<GlobalNetworkSetSpec>,
    problems: &mut Vec<Problem>,
) -> Labelled {
    let resource = format!("GlobalNetworkSet({})", s.metadata.name);
    Labelled {
        labels: s.metadata.labels.clone(),
        global: true,
        nets: set_nets(&resource, &s.spec.nets, problems),
    }
}

fn tier_of(tier: Option<&str>) -> String {
    tier.filter(|t| !t.is_empty())
        .unwrap_or(DEFAULT_TIER)
        .to_string()
}

/// A Calico NetworkPolicy resolved.
pub(crate) fn calico_network_policy(np: &Object<NetworkPolicySpec>) -> PolicyResolution {
    let ns = np
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let id = PolicyId {
        kind: PolicyKind::NetworkPolicy,
        namespace: Some(ns.clone()),
        name: np.metadata.name.clone(),
    };
    let r = network_policy(id.clone(), &ns, &np.spec);
    (tier_of(np.spec.tier.as_deref()), id, r)
}

/// A Kubernetes NetworkPolicy resolved through its Calico conversion, with
/// the conversion's problems.
pub(crate) fn kubernetes_network_policy(
    k: &calico_api::k8s::NetworkPolicy,
) -> (PolicyResolution, Vec<Problem>) {
    let (np, problems) = crate::k8s::convert(k);
    (calico_network_policy(&np), problems)
}

/// A GlobalNetworkPolicy resolved.
pub(crate) fn calico_global_network_policy(
    g: &Object<GlobalNetworkPolicySpec>,
) -> PolicyResolution {
    let id = PolicyId {
        kind: PolicyKind::GlobalNetworkPolicy,
        namespace: None,
        name: g.metadata.name.clone(),
    };
    let r = global_network_policy(id.clone(), &g.spec);
    (tier_of(g.spec.tier.as_deref()), id, r)
}

/// The model from resolved parts: tiers made and sorted as Felix sorts
/// them (a tier with policies but no resource is reported), policies
/// sorted, endpoints sorted by id.
pub(crate) fn assemble(
    settings: &crate::settings::Settings,
    tier_specs: &[crate::input::Tier],
    policies: Vec<(String, Policy)>,
    profiles: BTreeMap<String, Profile>,
    mut endpoints: Vec<Endpoint>,
    labelled: Vec<Labelled>,
    mut problems: Vec<Problem>,
) -> Model {
    let mut specs: BTreeMap<String, TierSpec> = tier_specs
        .iter()
        .map(|t| (t.name.clone(), t.spec.clone()))
        .collect();
    specs.entry(DEFAULT_TIER.into()).or_insert(TierSpec {
        order: Some(DEFAULT_TIER_ORDER),
        default_action: None,
    });
    let mut tiers: BTreeMap<String, Tier> = BTreeMap::new();
    for (tier, p) in policies {
        let entry = tiers.entry(tier.clone()).or_insert_with(|| {
            let spec = specs.get(&tier);
            Tier {
                name: tier.clone(),
                order: spec.and_then(|s| s.order),
                pass_by_default: spec.is_some_and(TierSpec::passes_by_default),
                exists: spec.is_some(),
                policies: Vec::new(),
            }
        });
        if !entry.exists && entry.policies.is_empty() {
            problems.push(Problem::new(
                format!("Tier({tier})"),
                "does not exist: its policies apply after every other tier, with default action Deny (as Felix)",
            ));
        }
        entry.policies.push(p);
    }
    let mut tiers: Vec<Tier> = tiers.into_values().collect();
    for t in &mut tiers {
        t.policies.sort_by(policy_order);
    }
    tiers.sort_by(tier_order);
    endpoints.sort_by(|a, b| a.id.cmp(&b.id));
    Model {
        endpoints,
        labelled,
        tiers,
        profiles,
        settings: settings.clone(),
        problems,
    }
}

fn network_policy(id: PolicyId, ns: &str, spec: &NetworkPolicySpec) -> Result<Policy, String> {
    let mut parts = vec![selector(spec.selector.as_deref(), "spec.selector")?];
    parts.push(Selector::label_eq(LABEL_NAMESPACE, ns));
    if let Some(sa) = optional_selector(
        spec.service_account_selector.as_deref(),
        "spec.serviceAccountSelector",
    )? {
        parts.push(sa.with_key_prefix(SA_PREFIX));
    }
    let p = PolicyParts {
        order: spec.order,
        types: &spec.types,
        ingress: &spec.ingress,
        egress: &spec.egress,
    };
    resolve_policy(id, &p, Selector::and_all(parts), Scope::Namespace(ns))
}

fn global_network_policy(id: PolicyId, spec: &GlobalNetworkPolicySpec) -> Result<Policy, String> {
    if spec.do_not_track || spec.pre_dnat {
        return Err(
            "spec.doNotTrack/preDNAT: untracked and pre-DNAT policies are not supported".into(),
        );
    }
    let mut parts = vec![selector(spec.selector.as_deref(), "spec.selector")?];
    if let Some(ns) =
        optional_selector(spec.namespace_selector.as_deref(), "spec.namespaceSelector")?
    {
        let in_ns = Selector::has_label(LABEL_NAMESPACE);
        parts.push(
            ns.with_key_prefix(NS_PREFIX)
                .replace_all_and_global(&in_ns, &Selector::global()),
        );
    }
    if let Some(sa) = optional_selector(
        spec.service_account_selector.as_deref(),
        "spec.serviceAccountSelector",
    )? {
        let has_sa = Selector::has_label(LABEL_SERVICE_ACCOUNT);
        parts.push(
            sa.with_key_prefix(SA_PREFIX)
                .replace_all_and_global(&has_sa, &Selector::global()),
        );
    }
    let p = PolicyParts {
        order: spec.order,
        types: &spec.types,
        ingress: &spec.ingress,
        egress: &spec.egress,
    };
    resolve_policy(id, &p, Selector::and_all(parts), Scope::Global)
}

/// Felix's `PolKVLess`: order (none = +inf), then name, namespace, kind.
fn policy_order(a: &Policy, b: &Policy) -> Ordering {
    let o = |p: &Policy| p.order.unwrap_or(f64::INFINITY);
    o(a).total_cmp(&o(b)).then_with(|| {
        let key = |p: &Policy| {
            format!(
                "{}/{}/{:?}",
                p.id.name,
                p.id.namespace.as_deref().unwrap_or(""),
                p.id.kind
            )
        };
        key(a).cmp(&key(b))
    })
}

/// Felix's `TierLess`: existing first, then order (none last), then name.
fn tier_order(a: &Tier, b: &Tier) -> Ordering {
    b.exists
        .cmp(&a.exists)
        .then_with(|| match (a.order, b.order) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        })
        .then_with(|| a.name.cmp(&b.name))
}
