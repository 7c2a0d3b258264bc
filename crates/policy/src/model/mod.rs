//! The resolved policy model that the oracle and the compiler share: the
//! input after Calico's conversions (libcalico-go's `updateprocessors` and
//! Felix's calculation graph), with every selector, net, protocol and port
//! parsed once.
//!
//! What it computes, as Calico does:
//! - endpoint labels: the endpoint's own, plus `projectcalico.org/namespace`,
//!   `projectcalico.org/orchestrator` and `projectcalico.org/serviceaccount`
//!   for workloads, plus the `labelsToApply` of its profiles (the endpoint's
//!   own labels win, then earlier profiles); NetworkSets inherit their
//!   namespace's `kns.<ns>` profile labels too;
//! - each policy's effective selector: a NetworkPolicy's is limited to its
//!   namespace, a GlobalNetworkPolicy's `namespaceSelector` is evaluated on
//!   `pcns.`-prefixed namespace labels (`all()` = any namespace), service
//!   account selectors on `pcsa.` labels;
//! - `types` inferred when absent (no egress rules: Ingress; egress rules
//!   only: Egress; both: both), as libcalico-go's `defaultPolicyTypesField`;
//! - tiers sorted as Felix (`TierLess`): tiers that exist before missing
//!   ones, then by order (none last), then name; the `default` tier exists
//!   with order 1 000 000 and default action Deny when not given; policies
//!   by order (none last), then name, namespace and kind (`PolKVLess`).
//!
//! Invariant: a policy, profile or set with a problem is reported in
//! [`Model::problems`] and left out; nothing else is affected.

pub(crate) mod build;
mod rule;

use std::collections::BTreeMap;
use std::fmt;

use calico_api::selector::Selector;
use ipnet::IpNet;

pub use rule::{Action, Entity, Family, Icmp, Ports, Rule};

use crate::input::{PolicyInput, Problem};
use crate::settings::Settings;

/// Label holding an endpoint's namespace.
pub const LABEL_NAMESPACE: &str = "projectcalico.org/namespace";
/// Label holding a workload's orchestrator.
pub const LABEL_ORCHESTRATOR: &str = "projectcalico.org/orchestrator";
/// Label holding a workload's service account.
pub const LABEL_SERVICE_ACCOUNT: &str = "projectcalico.org/serviceaccount";
/// Prefix of namespace labels in `kns.` profiles.
pub const NS_PREFIX: &str = "pcns.";
/// Prefix of service-account labels in `ksa.` profiles.
pub const SA_PREFIX: &str = "pcsa.";
/// Prefix of the profiles Kubernetes namespaces become.
pub const NS_PROFILE_PREFIX: &str = "kns.";
/// Calico's built-in profile that allows everything.
pub const DEFAULT_ALLOW_PROFILE: &str = "projectcalico-default-allow";

/// IP protocol numbers and Calico's protocol names.
pub mod proto {
    use calico_api::resources::Protocol;

    /// ICMP.
    pub const ICMP: u8 = 1;
    /// IP-in-IP.
    pub const IPIP: u8 = 4;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// SCTP.
    pub const SCTP: u8 = 132;
    /// UDP-Lite.
    pub const UDPLITE: u8 = 136;

    /// The number of a Calico protocol (`TCP`, `udp`, `ICMPv6`, `132`, ...).
    pub fn number(p: &Protocol) -> Result<u8, String> {
        match p.canonical().as_str() {
            "TCP" => Ok(TCP),
            "UDP" => Ok(UDP),
            "ICMP" => Ok(ICMP),
            "ICMPv6" => Ok(ICMPV6),
            "SCTP" => Ok(SCTP),
            "UDPLite" => Ok(UDPLITE),
            other => other.parse::<u8>().map_err(|_| {
                format!("{other:?} is not TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a number")
            }),
        }
    }

    /// Whether packets of this protocol have ports.
    pub fn has_ports(p: u8) -> bool {
        matches!(p, TCP | UDP | SCTP | UDPLITE)
    }
}

/// Parses a CIDR or a bare address (a host network), masked to its network.
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    calico_api::validate::cidr_or_ip(s).map(|n| n.trunc())
}

/// Workload or host endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EndpointKind {
    /// A workload (pod) interface.
    Workload,
    /// A host interface.
    Host,
}

/// Names an endpoint: `WorkloadEndpoint(ns/name)` or `HostEndpoint(name)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointId {
    /// Workload or host.
    pub kind: EndpointKind,
    /// Namespace (workloads).
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl EndpointId {
    /// A workload endpoint's id.
    pub fn workload(namespace: &str, name: &str) -> EndpointId {
        EndpointId {
            kind: EndpointKind::Workload,
            namespace: Some(namespace.into()),
            name: name.into(),
        }
    }

    /// A host endpoint's id.
    pub fn host(name: &str) -> EndpointId {
        EndpointId {
            kind: EndpointKind::Host,
            namespace: None,
            name: name.into(),
        }
    }
}

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.kind, &self.namespace) {
            (EndpointKind::Workload, Some(ns)) => write!(f, "WorkloadEndpoint({ns}/{})", self.name),
            (EndpointKind::Workload, None) => write!(f, "WorkloadEndpoint({})", self.name),
            (EndpointKind::Host, _) => write!(f, "HostEndpoint({})", self.name),
        }
    }
}

/// A named port of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NamedPort {
    /// Name.
    pub name: String,
    /// IP protocol number.
    pub protocol: u8,
    /// Port.
    pub port: u16,
}

/// Something selectors can pick: its labels and addresses.
#[derive(Debug, Clone, PartialEq)]
pub struct Labelled {
    /// Labels as selectors see them.
    pub labels: BTreeMap<String, String>,
    /// Not namespaced (host endpoints, global network sets): what `global()` tests.
    pub global: bool,
    /// Addresses (host networks for endpoints, CIDRs for network sets).
    pub nets: Vec<IpNet>,
}

impl Labelled {
    /// Whether `sel` picks this.
    pub fn matches(&self, sel: &Selector) -> bool {
        sel.matches_with(&self.labels, self.global)
    }
}

/// An endpoint with everything policy needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// Identity.
    pub id: EndpointId,
    /// Interface name (`cali…` for workloads).
    pub interface: String,
    /// Labels and addresses.
    pub labelled: Labelled,
    /// Named ports.
    pub ports: Vec<NamedPort>,
    /// Profiles, in order.
    pub profiles: Vec<String>,
    /// On this node (its interface is one of the input's local interfaces).
    pub local: bool,
}

/// Kind of a policy, for ordering ties and names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyKind {
    /// A (namespaced) NetworkPolicy, including converted Kubernetes ones.
    NetworkPolicy,
    /// A GlobalNetworkPolicy.
    GlobalNetworkPolicy,
}

/// Names a policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyId {
    /// Kind.
    pub kind: PolicyKind,
    /// Namespace (NetworkPolicy).
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl fmt::Display for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{:?}({ns}/{})", self.kind, self.name),
            None => write!(f, "{:?}({})", self.kind, self.name),
        }
    }
}

/// Ingress (towards the endpoint) or egress (from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// Traffic to the endpoint.
    Ingress,
    /// Traffic from the endpoint.
    Egress,
}

/// A resolved policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Identity.
    pub id: PolicyId,
    /// Order within its tier (`None`: last).
    pub order: Option<f64>,
    /// Endpoints it applies to (namespace and service-account limits included).
    pub selector: Selector,
    /// Ingress rules, `None` when the policy does not govern ingress.
    pub ingress: Option<Vec<Rule>>,
    /// Egress rules, `None` when the policy does not govern egress.
    pub egress: Option<Vec<Rule>>,
}

impl Policy {
    /// The rules for `dir`, if the policy governs that direction.
    pub fn rules(&self, dir: Direction) -> Option<&[Rule]> {
        match dir {
            Direction::Ingress => self.ingress.as_deref(),
            Direction::Egress => self.egress.as_deref(),
        }
    }

    /// Whether the policy applies to `ep` in `dir`.
    pub fn applies(&self, ep: &Endpoint, dir: Direction) -> bool {
        self.rules(dir).is_some() && ep.labelled.matches(&self.selector)
    }
}

/// A tier with its policies in evaluation order.
#[derive(Debug, Clone, PartialEq)]
pub struct Tier {
    /// Name.
    pub name: String,
    /// Order (`None`: last).
    pub order: Option<f64>,
    /// Default action `Pass` (else Deny).
    pub pass_by_default: bool,
    /// Whether the Tier resource exists (missing tiers sort last).
    pub exists: bool,
    /// Policies, sorted.
    pub policies: Vec<Policy>,
}

/// A resolved profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Ingress rules.
    pub ingress: Vec<Rule>,
    /// Egress rules.
    pub egress: Vec<Rule>,
}

impl Profile {
    /// The rules for `dir`.
    pub fn rules(&self, dir: Direction) -> &[Rule] {
        match dir {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }

    fn allow_all() -> Profile {
        let allow = Rule {
            action: Action::Allow,
            ip_version: None,
            protocol: None,
            not_protocol: None,
            icmp: None,
            not_icmp: None,
            src: Entity::default(),
            dst: Entity::default(),
        };
        Profile {
            ingress: vec![allow.clone()],
            egress: vec![allow],
        }
    }
}

/// The whole resolved model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Model {
    /// Every endpoint (workloads, then host endpoints), sorted by id.
    pub endpoints: Vec<Endpoint>,
    /// Everything selectors pick addresses from: endpoints and network sets.
    pub labelled: Vec<Labelled>,
    /// Tiers in evaluation order.
    pub tiers: Vec<Tier>,
    /// Profiles by name.
    pub profiles: BTreeMap<String, Profile>,
    /// Settings.
    pub settings: Settings,
    /// What could not be used.
    pub problems: Vec<Problem>,
}

impl Model {
    /// Resolves the input. Never fails: what cannot be used is in `problems`.
    pub fn build(input: &PolicyInput) -> Model {
        build::build(input)
    }

    /// The profile named `name` as enforcement sees it: a missing `kns.`
    /// profile (a namespace Calico has not seen) allows, like Kubernetes; the
    /// built-in `projectcalico-default-allow` allows; other missing profiles
    /// have no rules.
    pub fn profile(&self, name: &str) -> Option<Profile> {
        match self.profiles.get(name) {
            Some(p) => Some(p.clone()),
            None if name.starts_with(NS_PROFILE_PREFIX) || name == DEFAULT_ALLOW_PROFILE => {
                Some(Profile::allow_all())
            }
            None => None,
        }
    }

    /// The endpoint with this id.
    pub fn endpoint(&self, id: &EndpointId) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.id == *id)
    }

    /// The tiers that apply to `ep` in `dir`, each with the policies that do.
    pub fn applicable(&self, ep: &Endpoint, dir: Direction) -> Vec<(&Tier, Vec<&Policy>)> {
        self.tiers
            .iter()
            .map(|t| {
                (
                    t,
                    t.policies
                        .iter()
                        .filter(|p| p.applies(ep, dir))
                        .collect::<Vec<_>>(),
                )
            })
            .filter(|(_, ps)| !ps.is_empty())
            .collect()
    }
}
