//! `FELIX_*` environment variables read as Felix reads them, into
//! FelixConfiguration fields (pure).
//!
//! - The variable is `FELIX_` and the parameter's name in capitals: the v3
//!   field's (`FELIX_VXLANMTU` → `vxlanMTU`), or Felix's own name where it
//!   differs ([`FELIX_NAMES`]: `FELIX_IPINIPMTU` → `ipipMTU`,
//!   `FELIX_EXTERNALNODESCIDRLIST` → `externalNodesList`, and the `…SECS` /
//!   `…MILLIS` ones, whose numbers become durations).
//! - Values as Felix parses them: booleans in any case, numbers, and the
//!   list kinds from their comma-separated text — port lists
//!   (`tcp:22,udp:68,tcp:10.0.0.0/8:179`), CIDR and interface lists,
//!   `name=value` lists, route table ranges (`1-250,300-400`).
//!
//! What is then valid is decided where every layer is checked
//! (`felix::settings::sanitize`): a value that is not is reported there
//! and leaves that parameter at its default.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// Felix's names (in capitals, after `FELIX_`) that differ from the v3
/// field's, with the field and the unit a bare number is in.
pub const FELIX_NAMES: &[(&str, &str, Unit)] = &[
    ("IPINIPENABLED", "ipipEnabled", Unit::None),
    ("IPINIPMTU", "ipipMTU", Unit::None),
    ("EXTERNALNODESCIDRLIST", "externalNodesList", Unit::None),
    (
        "IPTABLESPOSTWRITECHECKINTERVALSECS",
        "iptablesPostWriteCheckInterval",
        Unit::Seconds,
    ),
    (
        "IPTABLESLOCKPROBEINTERVALMILLIS",
        "iptablesLockProbeInterval",
        Unit::Millis,
    ),
    ("NETLINKTIMEOUTSECS", "netlinkTimeout", Unit::Seconds),
    ("REPORTINGINTERVALSECS", "reportingInterval", Unit::Seconds),
    ("REPORTINGTTLSECS", "reportingTTL", Unit::Seconds),
    (
        "ENDPOINTREPORTINGDELAYSECS",
        "endpointReportingDelay",
        Unit::Seconds,
    ),
    (
        "USAGEREPORTINGINITIALDELAYSECS",
        "usageReportingInitialDelay",
        Unit::Seconds,
    ),
    (
        "USAGEREPORTINGINTERVALSECS",
        "usageReportingInterval",
        Unit::Seconds,
    ),
];

/// What a bare number in a renamed variable counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// The value as it is.
    None,
    /// Seconds: becomes the duration `"<n>s"`.
    Seconds,
    /// Milliseconds: becomes the duration `"<n>ms"`.
    Millis,
}

/// Fields whose value is a list of protocol/port entries.
const PORT_LISTS: &[&str] = &["failsafeInboundHostPorts", "failsafeOutboundHostPorts"];
/// Fields whose value is a list of strings (CIDRs, interfaces, port ranges).
const STRING_LISTS: &[&str] = &[
    "externalNodesList",
    "bpfDSROptoutCIDRs",
    "bpfExcludeCIDRsFromNAT",
    "bpfForceTrackPacketsFromIfaces",
    "kubeNodePortRanges",
];
/// Fields whose value is a `name=value` list, as a mapping.
const MAPS: &[&str] = &["bpfConntrackTimeouts", "bpfLogFilters"];

/// Every `FELIX_*` variable `get` finds for one of `fields` (v3 names) or
/// one of Felix's own names, as field → value.
pub fn read(fields: &[String], get: impl Fn(&str) -> Option<String>) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for field in fields {
        if let Some(raw) = get(&format!("FELIX_{}", field.to_ascii_uppercase())) {
            out.insert(field.clone(), value(field, raw.trim(), Unit::None));
        }
    }
    for (name, field, unit) in FELIX_NAMES {
        if out.contains_key(*field) {
            continue; // the v3 name wins
        }
        if let Some(raw) = get(&format!("FELIX_{name}")) {
            out.insert((*field).to_string(), value(field, raw.trim(), *unit));
        }
    }
    out
}

/// A variable's text as the value of `field`; text that is not what the
/// field takes stays text (and is reported when the layer is checked).
pub fn value(field: &str, raw: &str, unit: Unit) -> Value {
    if let Ok(n) = raw.parse::<u64>() {
        match unit {
            Unit::Seconds => return Value::String(format!("{n}s")),
            Unit::Millis => return Value::String(format!("{n}ms")),
            Unit::None => {}
        }
    }
    // A duration given as a bare number counts seconds, as in Felix.
    if calico_api::resources::FELIX_DURATIONS.contains(&field)
        && raw.parse::<f64>().is_ok_and(|n| n.is_finite() && n >= 0.0)
    {
        return Value::String(format!("{raw}s"));
    }
    if PORT_LISTS.contains(&field) {
        return port_list(raw).unwrap_or_else(|| Value::String(raw.into()));
    }
    if STRING_LISTS.contains(&field) {
        return Value::Array(items(raw).map(|s| Value::String(s.into())).collect());
    }
    if MAPS.contains(&field) {
        return key_values(raw).unwrap_or_else(|| Value::String(raw.into()));
    }
    if field == "healthTimeoutOverrides" {
        return key_values(raw)
            .and_then(|m| match m {
                Value::Object(m) => Some(Value::Array(
                    m.into_iter()
                        .map(|(name, timeout)| json!({"name": name, "timeout": timeout}))
                        .collect(),
                )),
                _ => None,
            })
            .unwrap_or_else(|| Value::String(raw.into()));
    }
    if field == "routeTableRanges" {
        return items(raw)
            .map(range)
            .collect::<Option<Vec<_>>>()
            .map(Value::Array)
            .unwrap_or_else(|| Value::String(raw.into()));
    }
    if field == "routeTableRange" {
        return range(raw).unwrap_or_else(|| Value::String(raw.into()));
    }
    match raw.to_ascii_lowercase().as_str() {
        // Case-insensitive booleans, as Felix parses them.
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => serde_json::from_str::<Value>(raw)
            .ok()
            .filter(|j| j.is_boolean() || j.is_number())
            .unwrap_or_else(|| Value::String(raw.into())),
    }
}

/// The non-empty, trimmed entries of a comma-separated list.
fn items(raw: &str) -> impl Iterator<Item = &str> {
    raw.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Felix's port list: `<port>`, `<protocol>:<port>`,
/// `<protocol>:<net>:<port>`, an IPv6 net in brackets
/// (`tcp:[fd00::/8]:22`); `none` for an empty list.
fn port_list(raw: &str) -> Option<Value> {
    if raw.eq_ignore_ascii_case("none") {
        return Some(Value::Array(Vec::new()));
    }
    let mut out = Vec::new();
    for entry in items(raw) {
        let (entry, mut net) = match (entry.find('['), entry.find("]:")) {
            (Some(open), Some(close)) if open < close => (
                format!("{}{}", &entry[..open], &entry[close + 2..]),
                Some(entry[open + 1..close].to_string()),
            ),
            _ => (entry.to_string(), None),
        };
        let parts: Vec<&str> = entry.split(':').collect();
        let (protocol, port) = match parts.as_slice() {
            [port] => ("tcp".to_string(), *port),
            [protocol, port] => (protocol.to_ascii_lowercase(), *port),
            [protocol, n, port] => {
                net = Some((*n).to_string());
                (protocol.to_ascii_lowercase(), *port)
            }
            _ => return None,
        };
        let mut item = Map::new();
        item.insert(
            "protocol".into(),
            Value::String(protocol.to_ascii_uppercase()),
        );
        item.insert("port".into(), json!(port.trim().parse::<u16>().ok()?));
        if let Some(n) = net {
            item.insert("net".into(), Value::String(n));
        }
        out.push(Value::Object(item));
    }
    Some(Value::Array(out))
}

/// `name=value,name2=value2` as a mapping.
fn key_values(raw: &str) -> Option<Value> {
    let mut m = Map::new();
    for entry in items(raw) {
        let (k, v) = entry.split_once('=')?;
        m.insert(k.trim().to_string(), Value::String(v.trim().to_string()));
    }
    Some(Value::Object(m))
}

/// `min-max` as `{min, max}`.
fn range(raw: &str) -> Option<Value> {
    let (min, max) = raw.split_once('-')?;
    Some(json!({"min": min.trim().parse::<u32>().ok()?, "max": max.trim().parse::<u32>().ok()?}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, Value> {
        let fields: Vec<String> = [
            "healthEnabled",
            "vxlanMTU",
            "ipipMTU",
            "failsafeInboundHostPorts",
            "externalNodesList",
            "netlinkTimeout",
            "routeTableRanges",
            "routeRefreshInterval",
            "ipsetsRefreshInterval",
            "healthTimeoutOverrides",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        read(&fields, |k| m.get(k).cloned())
    }

    #[test]
    fn felix_names_and_values() {
        let got = env(&[
            ("FELIX_HEALTHENABLED", "TRUE"),
            ("FELIX_VXLANMTU", "1410"),
            ("FELIX_IPINIPMTU", "0"),
            (
                "FELIX_FAILSAFEINBOUNDHOSTPORTS",
                "tcp:22, UDP:68,179,tcp:10.0.0.0/8:6443,tcp:[fd00::/8]:2379",
            ),
            ("FELIX_EXTERNALNODESCIDRLIST", "10.1.0.0/16, 10.2.0.0/16"),
            ("FELIX_NETLINKTIMEOUTSECS", "10"),
            ("FELIX_ROUTETABLERANGES", "1-250,300-400"),
            ("FELIX_ROUTEREFRESHINTERVAL", "2.5"),
            ("FELIX_IPSETSREFRESHINTERVAL", "1m30s"),
            (
                "FELIX_HEALTHTIMEOUTOVERRIDES",
                "InternalDataplaneMainLoop=30s",
            ),
        ]);
        let want = json!({
            "healthEnabled": true,
            "vxlanMTU": 1410,
            "ipipMTU": 0,
            "failsafeInboundHostPorts": [
                {"protocol": "TCP", "port": 22}, {"protocol": "UDP", "port": 68},
                {"protocol": "TCP", "port": 179},
                {"protocol": "TCP", "port": 6443, "net": "10.0.0.0/8"},
                {"protocol": "TCP", "port": 2379, "net": "fd00::/8"}],
            "externalNodesList": ["10.1.0.0/16", "10.2.0.0/16"],
            "netlinkTimeout": "10s",
            "routeTableRanges": [{"min": 1, "max": 250}, {"min": 300, "max": 400}],
            "routeRefreshInterval": "2.5s",
            "ipsetsRefreshInterval": "1m30s",
            "healthTimeoutOverrides": [{"name": "InternalDataplaneMainLoop", "timeout": "30s"}],
        });
        assert_eq!(
            serde_json::to_value(&got).unwrap(),
            want,
            "{}",
            serde_json::to_string_pretty(&got).unwrap()
        );
    }

    #[test]
    fn what_felix_takes_passes_the_check_of_every_layer() {
        let got = read(&crate::config::felix_fields(), |k| {
            [
                (
                    "FELIX_FAILSAFEINBOUNDHOSTPORTS",
                    "tcp:22,udp:68,tcp:10.0.0.0/8:6443",
                ),
                ("FELIX_FAILSAFEOUTBOUNDHOSTPORTS", "none"),
                ("FELIX_EXTERNALNODESCIDRLIST", "10.1.0.0/16"),
                ("FELIX_IPINIPMTU", "1440"),
                ("FELIX_NETLINKTIMEOUTSECS", "10"),
                ("FELIX_ROUTETABLERANGES", "1-250"),
                ("FELIX_KUBENODEPORTRANGES", "30000:32767"),
            ]
            .iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.to_string())
        });
        assert_eq!(got.len(), 7, "{got:?}");
        let layer: Map<String, Value> = got.into_iter().collect();
        let (kept, problems) = crate::felix::settings::sanitize(layer, "environment");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(kept.len(), 7);
    }

    #[test]
    fn the_v3_name_wins_and_bad_text_stays_text() {
        let got = env(&[("FELIX_IPIPMTU", "1400"), ("FELIX_IPINIPMTU", "1300")]);
        assert_eq!(got.get("ipipMTU"), Some(&json!(1400)));
        let got = env(&[
            ("FELIX_FAILSAFEINBOUNDHOSTPORTS", "tcp:twenty-two"),
            ("FELIX_ROUTETABLERANGES", "1..250"),
        ]);
        assert_eq!(got["failsafeInboundHostPorts"], json!("tcp:twenty-two"));
        assert_eq!(got["routeTableRanges"], json!("1..250"));
        let got = env(&[("FELIX_FAILSAFEINBOUNDHOSTPORTS", "none")]);
        assert_eq!(got["failsafeInboundHostPorts"], json!([]));
    }
}
