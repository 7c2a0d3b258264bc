//! NetworkPolicy, GlobalNetworkPolicy, Profile, NetworkSet, GlobalNetworkSet
//! and the rule model they share.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::common::{Port, Protocol, check_selector, is_false};
use crate::meta::{ObjectMeta, SpecImpl};
use crate::validate::{self, Errors};

/// Rule actions.
pub const ACTIONS: &[&str] = &["Allow", "Deny", "Log", "Pass"];
/// Policy types.
pub const POLICY_TYPES: &[&str] = &["Ingress", "Egress"];

/// ICMP type and code match.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IcmpFields {
    /// ICMP type, 0..=254.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<u8>,
    /// ICMP code, 0..=255 (requires a type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u8>,
}

/// Service-account match.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceAccountMatch {
    /// Service account names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Selector over service-account labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
}

/// Kubernetes service match.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceMatch {
    /// Service name.
    pub name: String,
    /// Service namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

/// The source or destination side of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EntityRule {
    /// Networks (CIDRs or addresses).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nets: Vec<String>,
    /// Networks excluded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_nets: Vec<String>,
    /// Endpoint selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Endpoint selector, negated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_selector: Option<String>,
    /// Namespace selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<String>,
    /// Ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    /// Ports excluded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ports: Vec<Port>,
    /// Service accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_accounts: Option<ServiceAccountMatch>,
    /// A Kubernetes service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<ServiceMatch>,
}

/// HTTP match of a rule (application layer).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpMatch {
    /// Methods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Paths, each `{exact: ...}` or `{prefix: ...}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<BTreeMap<String, String>>,
}

/// Metadata of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleMetadata {
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A policy rule.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// Allow, Deny, Log or Pass.
    pub action: String,
    /// 4 or 6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_version: Option<u8>,
    /// Protocol matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// Protocol excluded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_protocol: Option<Protocol>,
    /// ICMP match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp: Option<IcmpFields>,
    /// ICMP excluded.
    #[serde(default, rename = "notICMP", skip_serializing_if = "Option::is_none")]
    pub not_icmp: Option<IcmpFields>,
    /// Source match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<EntityRule>,
    /// Destination match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<EntityRule>,
    /// HTTP match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpMatch>,
    /// Rule metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<RuleMetadata>,
}

fn check_entity(errs: &mut Errors, f: &str, e: &EntityRule, proto: Option<&Protocol>) {
    for (name, list) in [("nets", &e.nets), ("notNets", &e.not_nets)] {
        for (i, n) in list.iter().enumerate() {
            errs.check(
                format!("{f}.{name}[{i}]"),
                validate::cidr_or_ip(n).map(|_| ()),
            );
        }
    }
    check_selector(errs, &format!("{f}.selector"), &e.selector);
    check_selector(errs, &format!("{f}.notSelector"), &e.not_selector);
    check_selector(
        errs,
        &format!("{f}.namespaceSelector"),
        &e.namespace_selector,
    );
    if let Some(sa) = &e.service_accounts {
        check_selector(errs, &format!("{f}.serviceAccounts.selector"), &sa.selector);
    }
    if !e.ports.is_empty() || !e.not_ports.is_empty() {
        match proto {
            Some(p) if p.supports_ports() => {}
            _ => errs.add(
                format!("{f}.ports"),
                "rules that match on ports must set protocol to TCP, UDP or SCTP",
            ),
        }
    }
}

fn check_rules(errs: &mut Errors, dir: &str, rules: &[Rule]) {
    for (i, r) in rules.iter().enumerate() {
        let f = format!("spec.{dir}[{i}]");
        errs.check(format!("{f}.action"), validate::one_of(&r.action, ACTIONS));
        if let Some(v) = r.ip_version
            && v != 4
            && v != 6
        {
            errs.add(
                format!("{f}.ipVersion"),
                format!("{v} is not an IP version: use 4 or 6"),
            );
        }
        for (name, icmp) in [("icmp", &r.icmp), ("notICMP", &r.not_icmp)] {
            let Some(icmp) = icmp else { continue };
            if !r.protocol.as_ref().is_some_and(Protocol::is_icmp) {
                errs.add(
                    format!("{f}.{name}"),
                    "ICMP fields require protocol ICMP or ICMPv6",
                );
            }
            if icmp.icmp_type == Some(255) {
                errs.add(
                    format!("{f}.{name}.type"),
                    "ICMP type 255 is not valid (0 to 254)",
                );
            }
            if icmp.code.is_some() && icmp.icmp_type.is_none() {
                errs.add(
                    format!("{f}.{name}.code"),
                    "an ICMP code requires an ICMP type",
                );
            }
        }
        if let Some(s) = &r.source {
            check_entity(errs, &format!("{f}.source"), s, r.protocol.as_ref());
        }
        if let Some(d) = &r.destination {
            check_entity(errs, &format!("{f}.destination"), d, r.protocol.as_ref());
        }
    }
}

/// Fields shared by namespaced and global policies.
fn check_policy_common(
    errs: &mut Errors,
    order: Option<f64>,
    selector: &Option<String>,
    types: &[String],
    ingress: &[Rule],
    egress: &[Rule],
) {
    if let Some(o) = order.filter(|o| !o.is_finite()) {
        errs.add("spec.order", format!("{o} is not a finite number"));
    }
    check_selector(errs, "spec.selector", selector);
    for (i, t) in types.iter().enumerate() {
        errs.check(
            format!("spec.types[{i}]"),
            validate::one_of(t, POLICY_TYPES),
        );
    }
    if !types.is_empty() {
        if !ingress.is_empty() && !types.iter().any(|t| t == "Ingress") {
            errs.add(
                "spec.types",
                "ingress rules are present but types does not include Ingress",
            );
        }
        if !egress.is_empty() && !types.iter().any(|t| t == "Egress") {
            errs.add(
                "spec.types",
                "egress rules are present but types does not include Egress",
            );
        }
    }
    check_rules(errs, "ingress", ingress);
    check_rules(errs, "egress", egress);
}

/// Prefix of the Calico NetworkPolicies that enforce Kubernetes NetworkPolicies
/// (`knp.default.<name>`).
pub const K8S_POLICY_NAME_PREFIX: &str = "knp.default.";
/// Prefix of the policies derived from OpenStack security groups.
const OPENSTACK_POLICY_NAME_PREFIX: &str = "ossg.default.";

/// Calico's policy naming and tier rules (libcalico-go `networkPolicyNameRegex`,
/// `globalNetworkPolicyNameRegex`): a name is a DNS-1123 label or two labels
/// joined by one dot (`<tier>.<name>`, a prefix Calico no longer requires);
/// a NetworkPolicy may also be `knp.default.<subdomain>` or
/// `ossg.default.<subdomain>`. `spec.tier`, when set, names a tier (a label).
fn check_policy_identity(
    errs: &mut Errors,
    meta: &ObjectMeta,
    tier: Option<&str>,
    namespaced: bool,
) {
    let name = meta.name.as_str();
    let prefixed = namespaced
        && [K8S_POLICY_NAME_PREFIX, OPENSTACK_POLICY_NAME_PREFIX]
            .iter()
            .any(|p| name.starts_with(p));
    // Names that are not even subdomains are reported by the generic check.
    if !prefixed && validate::dns1123_subdomain(name).is_ok() && name.split('.').count() > 2 {
        errs.add(
            "metadata.name",
            format!("policy name {name:?} must be a DNS-1123 label, or two joined by a dot (<tier>.<name>)"),
        );
    }
    if let Some(t) = tier.filter(|t| !t.is_empty()) {
        errs.check("spec.tier", validate::dns1123_label(t));
    }
}

/// Calico's `performanceHints`: each `AssumeNeededOnEveryNode`, none twice.
fn check_performance_hints(errs: &mut Errors, hints: &[String]) {
    for (i, h) in hints.iter().enumerate() {
        let field = format!("spec.performanceHints[{i}]");
        errs.check(&field, validate::one_of(h, &["AssumeNeededOnEveryNode"]));
        if hints[..i].contains(h) {
            errs.add(field, format!("{h:?} is given twice"));
        }
    }
}

/// Spec of a NetworkPolicy.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkPolicySpec {
    /// Tier the policy belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// Order within the tier; lower applies first.
    #[serde(
        default,
        with = "super::common::order_float",
        skip_serializing_if = "Option::is_none"
    )]
    pub order: Option<f64>,
    /// Endpoints the policy applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Ingress, Egress or both.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    /// Ingress rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<Rule>,
    /// Egress rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<Rule>,
    /// Endpoints selected by service account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_selector: Option<String>,
    /// Performance hints (`AssumeNeededOnEveryNode`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub performance_hints: Vec<String>,
}

impl SpecImpl for NetworkPolicySpec {
    fn check(&self, meta: &ObjectMeta, errs: &mut Errors) {
        check_policy_identity(errs, meta, self.tier.as_deref(), true);
        check_policy_common(
            errs,
            self.order,
            &self.selector,
            &self.types,
            &self.ingress,
            &self.egress,
        );
        check_selector(
            errs,
            "spec.serviceAccountSelector",
            &self.service_account_selector,
        );
        check_performance_hints(errs, &self.performance_hints);
    }
}

/// Spec of a GlobalNetworkPolicy.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GlobalNetworkPolicySpec {
    /// Tier the policy belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// Order within the tier; lower applies first.
    #[serde(
        default,
        with = "super::common::order_float",
        skip_serializing_if = "Option::is_none"
    )]
    pub order: Option<f64>,
    /// Endpoints the policy applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Ingress, Egress or both.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    /// Ingress rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<Rule>,
    /// Egress rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<Rule>,
    /// Endpoints selected by service account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_selector: Option<String>,
    /// Endpoints selected by namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<String>,
    /// Apply before connection tracking.
    #[serde(default, skip_serializing_if = "is_false")]
    pub do_not_track: bool,
    /// Apply before DNAT.
    #[serde(default, rename = "preDNAT", skip_serializing_if = "is_false")]
    pub pre_dnat: bool,
    /// Apply to forwarded traffic too.
    #[serde(default, skip_serializing_if = "is_false")]
    pub apply_on_forward: bool,
    /// Performance hints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub performance_hints: Vec<String>,
}

impl SpecImpl for GlobalNetworkPolicySpec {
    fn check(&self, meta: &ObjectMeta, errs: &mut Errors) {
        check_policy_identity(errs, meta, self.tier.as_deref(), false);
        check_policy_common(
            errs,
            self.order,
            &self.selector,
            &self.types,
            &self.ingress,
            &self.egress,
        );
        check_selector(
            errs,
            "spec.serviceAccountSelector",
            &self.service_account_selector,
        );
        check_performance_hints(errs, &self.performance_hints);
        check_selector(errs, "spec.namespaceSelector", &self.namespace_selector);
        if self.do_not_track && self.pre_dnat {
            errs.add("spec", "preDNAT and doNotTrack cannot both be true");
        }
        if (self.do_not_track || self.pre_dnat) && !self.apply_on_forward {
            errs.add(
                "spec.applyOnForward",
                "applyOnForward must be true when preDNAT or doNotTrack is set",
            );
        }
        if self.pre_dnat && !self.egress.is_empty() {
            errs.add("spec.egress", "preDNAT policies cannot have egress rules");
        }
    }
}

/// Spec of a Profile.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileSpec {
    /// Ingress rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<Rule>,
    /// Egress rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<Rule>,
    /// Labels applied to endpoints using the profile.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels_to_apply: BTreeMap<String, String>,
}

impl SpecImpl for ProfileSpec {
    fn check(&self, _meta: &ObjectMeta, errs: &mut Errors) {
        check_rules(errs, "ingress", &self.ingress);
        check_rules(errs, "egress", &self.egress);
        for (k, v) in &self.labels_to_apply {
            errs.check(format!("spec.labelsToApply[{k}]"), validate::label_key(k));
            errs.check(format!("spec.labelsToApply[{k}]"), validate::label_value(v));
        }
    }
}

/// Spec of a NetworkSet.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkSetSpec {
    /// Networks (CIDRs or addresses).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nets: Vec<String>,
}

/// Spec of a GlobalNetworkSet (same shape as a NetworkSet).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GlobalNetworkSetSpec {
    /// Networks (CIDRs or addresses).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nets: Vec<String>,
}

fn check_nets(errs: &mut Errors, nets: &[String]) {
    for (i, n) in nets.iter().enumerate() {
        errs.check(
            format!("spec.nets[{i}]"),
            validate::cidr_or_ip(n).map(|_| ()),
        );
    }
}

impl SpecImpl for NetworkSetSpec {
    fn check(&self, _meta: &ObjectMeta, errs: &mut Errors) {
        check_nets(errs, &self.nets);
    }
}

impl SpecImpl for GlobalNetworkSetSpec {
    fn check(&self, _meta: &ObjectMeta, errs: &mut Errors) {
        check_nets(errs, &self.nets);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(name: &str, tier: Option<&str>, namespaced: bool) -> Vec<String> {
        let mut errs = Errors::default();
        let meta = ObjectMeta {
            name: name.into(),
            ..Default::default()
        };
        if namespaced {
            let spec = NetworkPolicySpec {
                tier: tier.map(Into::into),
                ..Default::default()
            };
            spec.check(&meta, &mut errs);
        } else {
            let spec = GlobalNetworkPolicySpec {
                tier: tier.map(Into::into),
                ..Default::default()
            };
            spec.check(&meta, &mut errs);
        }
        errs.list.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn policy_names_and_tiers_as_calico() {
        for ns in [true, false] {
            assert!(fields("allow-dns", None, ns).is_empty());
            assert!(fields("security.allow-dns", Some("security"), ns).is_empty());
            assert_eq!(fields("a.b.c", None, ns), vec!["metadata.name"]);
            assert_eq!(fields("p", Some("Bad.Tier"), ns), vec!["spec.tier"]);
            assert!(fields("p", Some(""), ns).is_empty());
        }
        // Converted Kubernetes policies keep their (dotted) names; only namespaced.
        assert!(fields("knp.default.web.v2", None, true).is_empty());
        assert!(fields("ossg.default.sg-1", None, true).is_empty());
        assert_eq!(
            fields("knp.default.web.v2", None, false),
            vec!["metadata.name"]
        );
    }
}
