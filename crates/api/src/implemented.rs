//! Which fields calico-rs acts on. Every field of Calico's schema is
//! accepted, validated and stored; [`not_implemented`] names the ones a
//! resource sets that no calico-rs component acts on, so calicoctl can warn
//! and calico-node can say so, instead of ignoring them silently.
//!
//! Invariant: the tables name the fields as Calico's schema does (field
//! paths under `spec`, `[]` for a list's items); a new field is "not acted
//! on" for FelixConfiguration (a list of what Felix's part of calico-node
//! reads) and "acted on" elsewhere unless listed here.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::kind::Kind;
use crate::meta::Resource;

/// The FelixConfiguration fields calico-node reads.
pub const FELIX_ACTED_ON: &[&str] = &[
    "allowIPIPPacketsFromWorkloads",
    "allowVXLANPacketsFromWorkloads",
    "chainInsertMode",
    "defaultEndpointToHostAction",
    "disableConntrackInvalidCheck",
    "failsafeInboundHostPorts",
    "failsafeOutboundHostPorts",
    "floatingIPs",
    "healthEnabled",
    "healthHost",
    "healthPort",
    "interfacePrefix",
    "ipipMTU",
    "iptablesMarkMask",
    "ipv6Support",
    "logPrefix",
    "logSeverityScreen",
    "natOutgoingAddress",
    "natOutgoingExclusions",
    "prometheusMetricsEnabled",
    "prometheusMetricsPort",
    "routeRefreshInterval",
    "vxlanMTU",
    "vxlanPort",
    "vxlanVNI",
    "workloadSourceSpoofing",
];

const POLICY_RULES: &[&str] = &["ingress[].http", "egress[].http", "performanceHints"];

/// Fields of the other kinds that calico-rs stores but does not act on.
fn not_acted_on(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::IPPool => &["namespaceSelector"],
        Kind::BGPPeer => &[
            "localASNumber",
            "reversePeering",
            "localWorkloadSelector",
            "nextHopMode",
            "numAllowedLocalASNumbers",
            "reachableBy",
            "ttlSecurity",
        ],
        Kind::BGPConfiguration => &[
            "bindMode",
            "ignoredInterfaces",
            "localWorkloadPeeringIPV4",
            "localWorkloadPeeringIPV6",
            "serviceLoadBalancerAggregation",
        ],
        Kind::BGPFilter => &[
            "exportV4[].peerType",
            "exportV4[].communities",
            "exportV4[].asPathPrefix",
            "exportV4[].priority",
            "exportV4[].operations",
            "exportV6[].peerType",
            "exportV6[].communities",
            "exportV6[].asPathPrefix",
            "exportV6[].priority",
            "exportV6[].operations",
            "importV4[].peerType",
            "importV4[].communities",
            "importV4[].asPathPrefix",
            "importV4[].priority",
            "importV4[].operations",
            "importV6[].peerType",
            "importV6[].communities",
            "importV6[].asPathPrefix",
            "importV6[].priority",
            "importV6[].operations",
        ],
        Kind::NetworkPolicy => POLICY_RULES,
        Kind::GlobalNetworkPolicy => &[
            "ingress[].http",
            "egress[].http",
            "performanceHints",
            "applyOnForward",
        ],
        _ => &[],
    }
}

/// Kinds stored and validated, of which calico-rs acts on nothing (with why).
pub fn kind_not_implemented(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::KubeControllersConfiguration => Some("calico-rs runs no kube-controllers"),
        Kind::StagedNetworkPolicy
        | Kind::StagedGlobalNetworkPolicy
        | Kind::StagedKubernetesNetworkPolicy => Some(
            "a staged policy is a preview that Calico never enforces either, and calico-rs has no flow logs to preview it in",
        ),
        _ => None,
    }
}

/// A one-line note for a user: what of `r` calico-rs stores but does not
/// act on, or `None` when it acts on everything `r` sets.
pub fn not_implemented_note(r: &Resource) -> Option<String> {
    let fields = not_implemented(r);
    if fields.is_empty() {
        return None;
    }
    Some(match kind_not_implemented(r.kind()) {
        Some(why) => format!("{}: accepted, not implemented ({why})", r.key()),
        None => format!(
            "{}: accepted, not implemented: {} (stored and validated; calico-rs does not act on {})",
            r.key(),
            fields.join(", "),
            if fields.len() == 1 { "it" } else { "them" }
        ),
    })
}

/// The fields `r` sets that calico-rs accepts but does not act on, as
/// `spec.<path>` (`[]` for list items), sorted, each once. A kind of which
/// nothing is acted on ([`kind_not_implemented`]) gives `spec`.
pub fn not_implemented(r: &Resource) -> Vec<String> {
    let kind = r.kind();
    if kind != Kind::FelixConfiguration
        && kind_not_implemented(kind).is_none()
        && not_acted_on(kind).is_empty()
    {
        return Vec::new();
    }
    let json = r.to_json();
    let Some(spec) = json.get("spec").and_then(Value::as_object) else {
        return Vec::new();
    };
    if kind_not_implemented(kind).is_some() {
        return if spec.is_empty() {
            Vec::new()
        } else {
            vec!["spec".into()]
        };
    }
    let mut out = BTreeSet::new();
    if kind == Kind::FelixConfiguration {
        for k in spec.keys() {
            if !FELIX_ACTED_ON.contains(&k.as_str()) {
                out.insert(format!("spec.{k}"));
            }
        }
        return out.into_iter().collect();
    }
    let mut set = BTreeSet::new();
    for (k, v) in spec {
        paths(v, k, &mut set);
    }
    for field in not_acted_on(kind) {
        if set.contains(*field) {
            out.insert(format!("spec.{field}"));
        }
    }
    out.into_iter().collect()
}

/// Every path set under `v` (itself included), `[]` for list items.
fn paths(v: &Value, path: &str, out: &mut BTreeSet<String>) {
    if v.is_null() {
        return;
    }
    out.insert(path.to_string());
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                paths(x, &format!("{path}.{k}"), out);
            }
        }
        Value::Array(a) => {
            for x in a {
                paths(x, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn res(v: Value) -> Resource {
        crate::decode_value(v).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn names_set_fields_not_acted_on() {
        let felix = res(
            json!({"apiVersion": "projectcalico.org/v3", "kind": "FelixConfiguration",
            "metadata": {"name": "default"},
            "spec": {"vxlanVNI": 4096, "bpfLogLevel": "Off", "flowLogsFlushInterval": "5m", "programClusterRoutes": "Enabled"}}),
        );
        assert_eq!(
            not_implemented(&felix),
            [
                "spec.bpfLogLevel",
                "spec.flowLogsFlushInterval",
                "spec.programClusterRoutes"
            ]
        );
        let peer = res(
            json!({"apiVersion": "projectcalico.org/v3", "kind": "BGPPeer",
            "metadata": {"name": "p"},
            "spec": {"peerIP": "10.0.0.1", "asNumber": 64512, "localASNumber": 64513, "reversePeering": "Manual"}}),
        );
        assert_eq!(
            not_implemented(&peer),
            ["spec.localASNumber", "spec.reversePeering"]
        );
        let filter = res(
            json!({"apiVersion": "projectcalico.org/v3", "kind": "BGPFilter",
            "metadata": {"name": "f"},
            "spec": {"importV4": [{"action": "Accept"}, {"action": "Reject", "peerType": "eBGP"}]}}),
        );
        assert_eq!(not_implemented(&filter), ["spec.importV4[].peerType"]);
        let pool = res(
            json!({"apiVersion": "projectcalico.org/v3", "kind": "IPPool",
            "metadata": {"name": "p"}, "spec": {"cidr": "10.0.0.0/16"}}),
        );
        assert!(not_implemented(&pool).is_empty());
        let kcc = res(
            json!({"apiVersion": "projectcalico.org/v3", "kind": "KubeControllersConfiguration",
            "metadata": {"name": "default"}, "spec": {"controllers": {}}}),
        );
        assert_eq!(not_implemented(&kcc), ["spec"]);
        assert_eq!(
            not_implemented_note(&peer).as_deref(),
            Some(
                "BGPPeer(p): accepted, not implemented: spec.localASNumber, spec.reversePeering (stored and validated; calico-rs does not act on them)"
            )
        );
        assert!(not_implemented_note(&kcc).is_some_and(|n| n.contains("no kube-controllers")));
        assert_eq!(not_implemented_note(&pool), None);
    }
}
