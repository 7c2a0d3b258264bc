//! Kubernetes `networking.k8s.io/v1` NetworkPolicy, as users write it.
//!
//! Only the fields Calico reads are modelled (Kubernetes' own validation
//! rules that matter to the conversion are in [`NetworkPolicy::validate`]);
//! unknown fields are refused like everywhere else in this crate. Calico
//! enforces such a policy by converting it to a Calico NetworkPolicy named
//! `knp.default.<name>` (see `calico-policy`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::meta::ObjectMeta;
use crate::validate::{self, Errors, ValidationError};

/// `apiVersion` of Kubernetes network policies.
pub const NETWORKING_API_VERSION: &str = "networking.k8s.io/v1";
/// `kind` of Kubernetes network policies.
pub const NETWORK_POLICY_KIND: &str = "NetworkPolicy";
/// The kind qualified by its API group, as Kubernetes names it in messages.
pub const QUALIFIED_KIND: &str = "NetworkPolicy.networking.k8s.io";
/// Label selector operators.
pub const SELECTOR_OPERATORS: &[&str] = &["In", "NotIn", "Exists", "DoesNotExist"];
/// Protocols a NetworkPolicyPort may name.
pub const PORT_PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP"];

/// A Kubernetes NetworkPolicy.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkPolicy {
    /// `networking.k8s.io/v1`.
    #[serde(default = "api_version")]
    pub api_version: String,
    /// `NetworkPolicy`.
    #[serde(default = "kind")]
    pub kind: String,
    /// Name, namespace, labels.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The policy.
    #[serde(default)]
    pub spec: NetworkPolicySpec,
}

fn api_version() -> String {
    NETWORKING_API_VERSION.to_string()
}

fn kind() -> String {
    NETWORK_POLICY_KIND.to_string()
}

/// Spec of a Kubernetes NetworkPolicy.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkPolicySpec {
    /// Pods the policy applies to (empty: every pod of the namespace).
    #[serde(default)]
    pub pod_selector: LabelSelector,
    /// Ingress rules (an empty list allows no ingress).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<IngressRule>,
    /// Egress rules (an empty list allows no egress).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<EgressRule>,
    /// `Ingress` and/or `Egress`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy_types: Vec<String>,
}

/// A Kubernetes label selector.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    /// Labels that must all be equal.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Requirements that must all hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelectorRequirement {
    /// The label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    /// Values for `In` and `NotIn`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// An ingress rule: traffic from any of `from` to any of `ports`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressRule {
    /// Sources (empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<Peer>,
    /// Destination ports (empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PolicyPort>,
}

/// An egress rule: traffic to any of `to` on any of `ports`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EgressRule {
    /// Destinations (empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<Peer>,
    /// Destination ports (empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PolicyPort>,
}

/// A peer: pods (by pod and/or namespace selector) or an IP block.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Peer {
    /// Pods selected by label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
    /// Namespaces selected by label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// A CIDR with exceptions.
    #[serde(default, rename = "ipBlock", skip_serializing_if = "Option::is_none")]
    pub ip_block: Option<IpBlock>,
}

/// A CIDR and the CIDRs inside it that are excluded.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IpBlock {
    /// The CIDR.
    pub cidr: String,
    /// CIDRs excluded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub except: Vec<String>,
}

/// A port (or range) and protocol.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyPort {
    /// `TCP` (default), `UDP` or `SCTP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// A number or a named port (absent: every port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<IntOrString>,
    /// Last port of a range starting at `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_port: Option<i32>,
}

/// Kubernetes' `IntOrString`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IntOrString {
    /// A number.
    Int(i32),
    /// A name.
    String(String),
}

impl std::fmt::Display for IntOrString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IntOrString::Int(n) => write!(f, "{n}"),
            IntOrString::String(s) => f.write_str(s),
        }
    }
}

impl NetworkPolicy {
    /// Decodes a policy from its JSON form (strict), checking apiVersion and kind.
    pub fn from_json(v: serde_json::Value) -> Result<NetworkPolicy, String> {
        let np: NetworkPolicy = serde_path_to_error::deserialize(v).map_err(|e| {
            let path = e.path().to_string();
            if path == "." {
                e.inner().to_string()
            } else {
                format!("{path}: {}", e.inner())
            }
        })?;
        if np.api_version != NETWORKING_API_VERSION || np.kind != NETWORK_POLICY_KIND {
            return Err(format!(
                "{} {} is not a Kubernetes NetworkPolicy ({NETWORKING_API_VERSION} {NETWORK_POLICY_KIND})",
                np.api_version, np.kind
            ));
        }
        Ok(np)
    }

    /// The policy's namespace (`default` when none is set, as kubectl does).
    pub fn namespace(&self) -> &str {
        self.metadata.namespace.as_deref().unwrap_or("default")
    }

    /// Checks the fields the conversion to Calico relies on.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let mut errs = Errors::default();
        if self.metadata.name.is_empty() {
            errs.add("metadata.name", "a name is required");
        } else {
            errs.check(
                "metadata.name",
                validate::dns1123_subdomain(&self.metadata.name),
            );
        }
        if let Some(ns) = &self.metadata.namespace {
            errs.check("metadata.namespace", validate::dns1123_label(ns));
        }
        for (k, v) in &self.metadata.labels {
            errs.check(format!("metadata.labels[{k}]"), validate::label_key(k));
            errs.check(format!("metadata.labels[{k}]"), validate::label_value(v));
        }
        check_selector(&mut errs, "spec.podSelector", &self.spec.pod_selector);
        for (i, t) in self.spec.policy_types.iter().enumerate() {
            errs.check(
                format!("spec.policyTypes[{i}]"),
                validate::one_of(t, &["Ingress", "Egress"]),
            );
        }
        for (i, r) in self.spec.ingress.iter().enumerate() {
            check_rule(
                &mut errs,
                &format!("spec.ingress[{i}]"),
                "from",
                &r.from,
                &r.ports,
            );
        }
        for (i, r) in self.spec.egress.iter().enumerate() {
            check_rule(
                &mut errs,
                &format!("spec.egress[{i}]"),
                "to",
                &r.to,
                &r.ports,
            );
        }
        if errs.list.is_empty() {
            Ok(())
        } else {
            Err(ValidationError {
                resource: format!(
                    "{QUALIFIED_KIND}({}/{})",
                    self.namespace(),
                    self.metadata.name
                ),
                errors: errs.list,
            })
        }
    }
}

fn check_selector(errs: &mut Errors, field: &str, s: &LabelSelector) {
    for (k, v) in &s.match_labels {
        errs.check(format!("{field}.matchLabels[{k}]"), validate::label_key(k));
        errs.check(
            format!("{field}.matchLabels[{k}]"),
            validate::label_value(v),
        );
    }
    for (i, e) in s.match_expressions.iter().enumerate() {
        let f = format!("{field}.matchExpressions[{i}]");
        errs.check(format!("{f}.key"), validate::label_key(&e.key));
        errs.check(
            format!("{f}.operator"),
            validate::one_of(&e.operator, SELECTOR_OPERATORS),
        );
        let needs_values = matches!(e.operator.as_str(), "In" | "NotIn");
        if needs_values == e.values.is_empty() {
            errs.add(
                format!("{f}.values"),
                if needs_values {
                    "In and NotIn need at least one value"
                } else {
                    "Exists and DoesNotExist take no values"
                },
            );
        }
    }
}

fn check_rule(errs: &mut Errors, f: &str, peers_field: &str, peers: &[Peer], ports: &[PolicyPort]) {
    for (i, p) in peers.iter().enumerate() {
        let pf = format!("{f}.{peers_field}[{i}]");
        match (&p.ip_block, &p.pod_selector, &p.namespace_selector) {
            (Some(b), None, None) => {
                errs.check(
                    format!("{pf}.ipBlock.cidr"),
                    validate::cidr(&b.cidr).map(|_| ()),
                );
                for (j, e) in b.except.iter().enumerate() {
                    errs.check(
                        format!("{pf}.ipBlock.except[{j}]"),
                        validate::cidr(e).map(|_| ()),
                    );
                }
            }
            (Some(_), _, _) => errs.add(
                &pf,
                "ipBlock cannot be combined with podSelector or namespaceSelector",
            ),
            (None, None, None) => errs.add(
                &pf,
                "a peer needs a podSelector, a namespaceSelector or an ipBlock",
            ),
            (None, pod, ns) => {
                if let Some(s) = pod {
                    check_selector(errs, &format!("{pf}.podSelector"), s);
                }
                if let Some(s) = ns {
                    check_selector(errs, &format!("{pf}.namespaceSelector"), s);
                }
            }
        }
    }
    for (i, p) in ports.iter().enumerate() {
        let pf = format!("{f}.ports[{i}]");
        if let Some(proto) = &p.protocol {
            errs.check(
                format!("{pf}.protocol"),
                validate::one_of(proto, PORT_PROTOCOLS),
            );
        }
        match (&p.port, p.end_port) {
            (Some(IntOrString::Int(n)), end) => {
                if !(1..=65535).contains(n) {
                    errs.add(
                        format!("{pf}.port"),
                        format!("port {n} is out of range (1 to 65535)"),
                    );
                }
                if let Some(e) = end
                    && (e < *n || e > 65535)
                {
                    errs.add(
                        format!("{pf}.endPort"),
                        format!("endPort {e} must be between port {n} and 65535"),
                    );
                }
            }
            (Some(IntOrString::String(name)), end) => {
                errs.check(format!("{pf}.port"), validate::dns1123_label(name));
                if end.is_some() {
                    errs.add(format!("{pf}.endPort"), "endPort requires a numeric port");
                }
            }
            (None, Some(_)) => errs.add(format!("{pf}.endPort"), "endPort requires a port"),
            (None, None) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "web"}},
            "policyTypes": ["Ingress"],
            "ingress": [{
                "from": [
                    {"namespaceSelector": {}, "podSelector": {"matchExpressions": [{"key": "role", "operator": "In", "values": ["a"]}]}},
                    {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}
                ],
                "ports": [{"port": 80, "endPort": 81}, {"protocol": "UDP", "port": "dns"}]
            }]
        }
    }"#;

    fn doc() -> NetworkPolicy {
        let v: serde_json::Value = serde_json::from_str(DOC).unwrap_or_default();
        NetworkPolicy::from_json(v).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn decodes_and_round_trips() {
        let np = doc();
        assert_eq!(np.namespace(), "shop");
        let r = &np.spec.ingress[0];
        assert_eq!(r.ports[0].port, Some(IntOrString::Int(80)));
        assert_eq!(r.ports[1].port, Some(IntOrString::String("dns".into())));
        assert_eq!(r.from[0].namespace_selector, Some(LabelSelector::default()));
        assert!(np.validate().is_ok());
        let back = serde_json::to_value(&np).unwrap_or_default();
        assert_eq!(NetworkPolicy::from_json(back).ok(), Some(np));
    }

    #[test]
    fn refuses_other_kinds_and_unknown_fields() {
        let mut v: serde_json::Value = serde_json::from_str(DOC).unwrap_or_default();
        v["kind"] = "Pod".into();
        assert!(NetworkPolicy::from_json(v).is_err());
        let mut v: serde_json::Value = serde_json::from_str(DOC).unwrap_or_default();
        v["spec"]["podSelectr"] = serde_json::json!({});
        let e = NetworkPolicy::from_json(v).err().unwrap_or_default();
        assert!(e.contains("podSelectr"), "{e}");
    }

    #[test]
    fn validation_names_fields() {
        let mut np = doc();
        np.spec.ingress[0].ports[0].end_port = Some(79);
        np.spec.ingress[0].from[1].ip_block = Some(IpBlock {
            cidr: "10.0.0.0/33".into(),
            except: vec![],
        });
        np.spec
            .pod_selector
            .match_expressions
            .push(LabelSelectorRequirement {
                key: "x".into(),
                operator: "Exists".into(),
                values: vec!["y".into()],
            });
        let e = np
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        for field in [
            "spec.ingress[0].ports[0].endPort",
            "spec.ingress[0].from[1].ipBlock.cidr",
            "spec.podSelector.matchExpressions[0].values",
        ] {
            assert!(e.contains(field), "{field} missing in {e}");
        }
    }
}
