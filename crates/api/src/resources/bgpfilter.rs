//! BGPFilter: rules on the routes a node imports from and exports to the
//! BGP peers whose BGPPeer lists the filter in `spec.filters`.
//!
//! Four lists (`importV4`, `importV6`, `exportV4`, `exportV6`) of rules,
//! tried in order; the first that matches a route decides (`Accept` or
//! `Reject`); a route no rule matches is accepted. A rule matches on the
//! prefix (`cidr` with `matchOperator`: `Equal`, `NotEqual`, `In` — inside
//! or equal —, `NotIn`; `prefixLength` narrows `In`/`NotIn` to prefix
//! lengths `min..=max`), on `source: RemotePeers` (routes learned over
//! BGP) and on `interface`; every field given must match.
//!
//! Validation as Calico's CRD: `action` is required; `cidr` and
//! `matchOperator` go together, `prefixLength` needs `cidr`; a cidr of the
//! list's family; prefix lengths up to 32 (128); interface names as
//! Calico's `bgpFilterInterface`. Calico's newer fields (`peerType`,
//! `communities`, `asPathPrefix`, `priority`, `operations`) are accepted,
//! checked against Calico's schema (`operations` only with `Accept`, one
//! operation per entry) and stored; the BGP speaker does not act on them
//! (`not_implemented` names them). Stricter than Calico:
//! `prefixLength` only with `In`/`NotIn` (BIRD compares a prefix with a
//! prefix set only by `~`).

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::meta::{ObjectMeta, SpecImpl};
use crate::validate::{self, Errors};

/// Values of `matchOperator`.
pub const BGP_FILTER_OPERATORS: &[&str] = &["Equal", "NotEqual", "In", "NotIn"];
/// Values of `action`.
pub const BGP_FILTER_ACTIONS: &[&str] = &["Accept", "Reject"];

/// Spec of a BGPFilter.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPFilterSpec {
    /// Rules on IPv4 routes sent to peers.
    #[serde(default, rename = "exportV4", skip_serializing_if = "Vec::is_empty")]
    pub export_v4: Vec<BGPFilterRule>,
    /// Rules on IPv4 routes received from peers.
    #[serde(default, rename = "importV4", skip_serializing_if = "Vec::is_empty")]
    pub import_v4: Vec<BGPFilterRule>,
    /// Rules on IPv6 routes sent to peers.
    #[serde(default, rename = "exportV6", skip_serializing_if = "Vec::is_empty")]
    pub export_v6: Vec<BGPFilterRule>,
    /// Rules on IPv6 routes received from peers.
    #[serde(default, rename = "importV6", skip_serializing_if = "Vec::is_empty")]
    pub import_v6: Vec<BGPFilterRule>,
}

/// One rule of a BGPFilter.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPFilterRule {
    /// The prefix the route is compared with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
    /// Prefix lengths `In`/`NotIn` take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_length: Option<BGPFilterPrefixLength>,
    /// `RemotePeers`: routes learned over BGP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The route's interface (`*` wildcards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// `Equal`, `NotEqual`, `In` or `NotIn`, with `cidr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_operator: Option<String>,
    /// `Accept` or `Reject`.
    pub action: String,
    /// `eBGP` or `iBGP`: only routes from or to peers of that type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_type: Option<String>,
    /// Only routes carrying this community (`{values: ["aa:nn"]}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub communities: Option<serde_json::Value>,
    /// Only routes whose AS path starts with these AS numbers.
    #[serde(
        default,
        rename = "asPathPrefix",
        skip_serializing_if = "Option::is_none"
    )]
    pub as_path_prefix: Option<Vec<u32>>,
    /// Only routes of this priority (metric).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// Changes made to accepted routes (`addCommunity`, `prependASPath`, `setPriority`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operations: Option<serde_json::Value>,
}

/// A range of prefix lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPFilterPrefixLength {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i32>,
}

/// Calico's `bgpFilterInterface`: `*`, or 1 to 15 of `[a-zA-Z0-9_.*-]`.
fn filter_interface(s: &str) -> Result<(), String> {
    let ok = (1..=15).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '*' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a valid interface match: use 1 to 15 letters, digits, '_', '.', '-' or '*'"
        ))
    }
}

fn check_rule(r: &BGPFilterRule, field: &str, v6: bool, errs: &mut Errors) {
    let family = if v6 { "IPv6" } else { "IPv4" };
    let max_len = if v6 { 128 } else { 32 };
    errs.check(
        format!("{field}.action"),
        validate::one_of(&r.action, BGP_FILTER_ACTIONS),
    );
    let cidr = r.cidr.as_deref().filter(|c| !c.is_empty());
    let op = r.match_operator.as_deref().filter(|o| !o.is_empty());
    if cidr.is_some() != op.is_some() {
        errs.add(
            field,
            "cidr and matchOperator must both be set or both be empty",
        );
    }
    if let Some(c) = cidr {
        match validate::cidr(c) {
            Ok(IpNet::V6(_)) if !v6 => {
                errs.add(
                    format!("{field}.cidr"),
                    format!("{c:?} is not an IPv4 CIDR"),
                );
            }
            Ok(IpNet::V4(_)) if v6 => {
                errs.add(
                    format!("{field}.cidr"),
                    format!("{c:?} is not an IPv6 CIDR"),
                );
            }
            Ok(_) => {}
            Err(e) => errs.add(format!("{field}.cidr"), e),
        }
    }
    if let Some(o) = op {
        errs.check(
            format!("{field}.matchOperator"),
            validate::one_of(o, BGP_FILTER_OPERATORS),
        );
    }
    if let Some(pl) = &r.prefix_length {
        if cidr.is_none() {
            errs.add(
                format!("{field}.prefixLength"),
                "cidr is required when prefixLength is set",
            );
        } else if !matches!(op, Some("In" | "NotIn")) {
            errs.add(
                format!("{field}.prefixLength"),
                "prefixLength only narrows matchOperator In or NotIn",
            );
        }
        for (name, v) in [("min", pl.min), ("max", pl.max)] {
            if let Some(v) = v.filter(|v| !(0..=max_len).contains(v)) {
                errs.add(
                    format!("{field}.prefixLength.{name}"),
                    format!("{v} is not an {family} prefix length (0 to {max_len})"),
                );
            }
        }
        if let (Some(min), Some(max)) = (pl.min, pl.max)
            && min > max
        {
            errs.add(
                format!("{field}.prefixLength"),
                format!("min {min} is greater than max {max}"),
            );
        }
    }
    if let Some(s) = &r.source {
        errs.check(
            format!("{field}.source"),
            validate::one_of(s, &["RemotePeers"]),
        );
    }
    if let Some(i) = &r.interface {
        errs.check(format!("{field}.interface"), filter_interface(i));
    }
    check_newer(r, field, errs);
}

/// A BGP community as Calico's pattern takes it: `aa:nn` (16-bit parts) or
/// `aa:nn:mm` (32-bit parts, a large community).
pub fn community(s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.split(':').collect();
    let max = match parts.len() {
        2 => u64::from(u16::MAX),
        3 => u64::from(u32::MAX),
        _ => u64::MAX,
    };
    let ok = max != u64::MAX
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (p.len() == 1 || !p.starts_with('0'))
                && p.parse::<u64>().is_ok_and(|n| n <= max)
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a BGP community (aa:nn with 16-bit parts, or aa:nn:mm with 32-bit parts)"
        ))
    }
}

/// Calico's checks of the newer rule fields: their schema, `operations`
/// only with `Accept`, exactly one operation per entry.
fn check_newer(r: &BGPFilterRule, field: &str, errs: &mut Errors) {
    let rule = "spec.exportV4";
    if let Some(p) = &r.peer_type {
        errs.check(
            format!("{field}.peerType"),
            validate::one_of(p, &["eBGP", "iBGP"]),
        );
    }
    if let Some(c) = &r.communities {
        let f = format!("{field}.communities");
        super::check_schema("BGPFilter", &format!("{rule}.communities"), c, &f, errs);
        let values = c.get("values").and_then(serde_json::Value::as_array);
        for (i, v) in values.into_iter().flatten().enumerate() {
            if let Some(v) = v.as_str() {
                errs.check(format!("{f}.values[{i}]"), community(v));
            }
        }
    }
    if let Some(p) = r.priority
        && !(1..=2_147_483_646).contains(&p)
    {
        errs.add(
            format!("{field}.priority"),
            format!("{p} is not in 1..=2147483646"),
        );
    }
    if let Some(ops) = &r.operations {
        let f = format!("{field}.operations");
        super::check_schema("BGPFilter", &format!("{rule}.operations"), ops, &f, errs);
        if r.action != "Accept" {
            errs.add(&f, "operations are only allowed with action Accept");
        }
        for (i, op) in ops.as_array().into_iter().flatten().enumerate() {
            if op.as_object().is_some_and(|o| o.len() != 1) {
                errs.add(format!("{f}[{i}]"), "exactly one operation must be set");
            }
            if let Some(v) = op
                .pointer("/addCommunity/value")
                .and_then(serde_json::Value::as_str)
            {
                errs.check(format!("{f}[{i}].addCommunity.value"), community(v));
            }
        }
    }
}

impl SpecImpl for BGPFilterSpec {
    fn check(&self, _meta: &ObjectMeta, errs: &mut Errors) {
        for (name, list, v6) in [
            ("exportV4", &self.export_v4, false),
            ("importV4", &self.import_v4, false),
            ("exportV6", &self.export_v6, true),
            ("importV6", &self.import_v6, true),
        ] {
            for (i, r) in list.iter().enumerate() {
                check_rule(r, &format!("spec.{name}[{i}]"), v6, errs);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(json: &str) -> Vec<String> {
        let spec: BGPFilterSpec = serde_json::from_str(json).unwrap();
        let mut errs = Errors::default();
        spec.check(&ObjectMeta::default(), &mut errs);
        errs.list.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn yaml_fields_round_trip() {
        let json = r#"{"exportV4":[{"cidr":"10.0.0.0/8","matchOperator":"In","action":"Accept"}],"importV4":[{"cidr":"0.0.0.0/0","prefixLength":{"min":8,"max":24},"matchOperator":"In","action":"Reject"}],"importV6":[{"source":"RemotePeers","interface":"eth*","action":"Accept"}]}"#;
        let spec: BGPFilterSpec = serde_json::from_str(json).unwrap();
        assert_eq!(spec.import_v4[0].prefix_length.unwrap().max, Some(24));
        assert_eq!(serde_json::to_string(&spec).unwrap(), json);
        // Calico's newer fields are taken; unknown fields are refused, and
        // a rule needs its action.
        let newer = r#"{"importV4":[{"action":"Accept","peerType":"eBGP","communities":{"values":["65000:100"]},"asPathPrefix":[65000],"priority":10,"operations":[{"addCommunity":{"value":"65000:1"}}]}]}"#;
        let spec: BGPFilterSpec = serde_json::from_str(newer).unwrap();
        assert_eq!(serde_json::to_string(&spec).unwrap(), newer);
        for bad in [
            r#"{"importV4":[{"peerTyp":"eBGP","action":"Accept"}]}"#,
            r#"{"importV4":[{"cidr":"10.0.0.0/8","matchOperator":"In"}]}"#,
            r#"{"imports":[]}"#,
        ] {
            assert!(serde_json::from_str::<BGPFilterSpec>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_as_calico() {
        assert!(check("{}").is_empty());
        assert!(
            check(
                r#"{"importV6":[{"cidr":"fd00::/64","matchOperator":"Equal","action":"Reject"}]}"#
            )
            .is_empty()
        );
        let cases: &[(&str, &[&str])] = &[
            (
                r#"{"importV4":[{"cidr":"10.0.0.0/8","action":"Accept"}]}"#,
                &["spec.importV4[0]"],
            ),
            (
                r#"{"importV4":[{"matchOperator":"In","action":"Accept"}]}"#,
                &["spec.importV4[0]"],
            ),
            (
                r#"{"exportV4":[{"cidr":"fd00::/64","matchOperator":"In","action":"Accept"}]}"#,
                &["spec.exportV4[0].cidr"],
            ),
            (
                r#"{"importV6":[{"cidr":"10.0.0.0/8","matchOperator":"In","action":"Accept"}]}"#,
                &["spec.importV6[0].cidr"],
            ),
            (
                r#"{"importV4":[{"cidr":"10.0.0.0/8","matchOperator":"Within","action":"Allow"}]}"#,
                &["spec.importV4[0].action", "spec.importV4[0].matchOperator"],
            ),
            (
                r#"{"importV4":[{"prefixLength":{"min":8},"action":"Accept"}]}"#,
                &["spec.importV4[0].prefixLength"],
            ),
            (
                r#"{"importV4":[{"cidr":"10.0.0.0/8","matchOperator":"Equal","prefixLength":{"min":8},"action":"Accept"}]}"#,
                &["spec.importV4[0].prefixLength"],
            ),
            (
                r#"{"importV4":[{"cidr":"10.0.0.0/8","matchOperator":"In","prefixLength":{"min":24,"max":33},"action":"Accept"}]}"#,
                &["spec.importV4[0].prefixLength.max"],
            ),
            (
                r#"{"importV4":[{"cidr":"10.0.0.0/8","matchOperator":"In","prefixLength":{"min":24,"max":16},"action":"Accept"}]}"#,
                &["spec.importV4[0].prefixLength"],
            ),
            (
                r#"{"importV4":[{"source":"Kernel","interface":"a-very-long-interface","action":"Accept"}]}"#,
                &["spec.importV4[0].source", "spec.importV4[0].interface"],
            ),
            (
                r#"{"importV4":[{"peerType":"EBGP","priority":0,"action":"Reject","operations":[{"setPriority":{"value":5},"addCommunity":{"value":"1:2"}}],"communities":{"values":["65536:1"]}}]}"#,
                &[
                    "spec.importV4[0].peerType",
                    "spec.importV4[0].communities.values[0]",
                    "spec.importV4[0].priority",
                    "spec.importV4[0].operations",
                    "spec.importV4[0].operations[0]",
                ],
            ),
        ];
        for (json, want) in cases {
            assert_eq!(check(json), *want, "{json}");
        }
    }
}
