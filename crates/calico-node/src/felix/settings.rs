//! Felix's configuration as it applies to this node: the FelixConfiguration
//! `default`, overridden by `node.<name>`, overridden by `FELIX_*`
//! environment variables (highest priority, as in Felix).
//!
//! Each layer is read as Felix reads it ([`sanitize`]): enumerated values
//! in any case (`ACCEPT`) take Calico's spelling (`Accept`), and a value
//! Felix would refuse leaves out that one parameter (named in the log and
//! on readiness), never the rest of the layer.
//!
//! A field Felix's part of calico-node does not act on is named on
//! readiness ("accepted, not implemented") and logged once, when the set of
//! such fields changes ([`not_implemented`]).

use std::collections::BTreeMap;

use calico_api::resources::{FelixConfigurationSpec, felix_canonical};
use calico_api::{Kind, ResourceKey};
use calico_datastore::{Client, ClientError};
use serde_json::{Map, Value};

/// The merged settings: the typed FelixConfiguration spec every layer
/// contributed to (a field unset in all layers is `None`: Felix's default).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effective(pub FelixConfigurationSpec);

impl Effective {
    /// The spec's fields that are set, by Calico's names (for readiness notes).
    pub fn fields_set(&self) -> Vec<String> {
        match serde_json::to_value(&self.0) {
            Ok(Value::Object(m)) => m.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// A duration field: Go's form (`90s`, `1m30s`) or a bare number of
    /// seconds (as Felix reads `FELIX_*` durations); `default` when unset
    /// or not a positive duration.
    pub fn duration(field: Option<&str>, default: std::time::Duration) -> std::time::Duration {
        let secs = field.and_then(|s| {
            calico_api::validate::parse_duration(s)
                .ok()
                .or_else(|| s.trim().parse::<f64>().ok())
        });
        secs.filter(|s| s.is_finite() && *s > 0.0)
            .map_or(default, std::time::Duration::from_secs_f64)
    }

    /// How often routes are read back and compared (Felix's
    /// `routeRefreshInterval`, 90 s by default).
    pub fn route_refresh(&self) -> std::time::Duration {
        Self::duration(
            self.0.route_refresh_interval.as_deref(),
            std::time::Duration::from_secs(90),
        )
    }

    /// Whether endpoints may send from `allowSpoofedSourcePrefixes`
    /// (`workloadSourceSpoofing: Any`; Felix's default is `Disabled`).
    pub fn source_spoofing_allowed(&self) -> bool {
        self.0
            .workload_source_spoofing
            .as_deref()
            .is_some_and(|v| v.eq_ignore_ascii_case("Any"))
    }

    /// The dataplane settings.
    pub fn dataplane(&self) -> super::model::Settings {
        let f = &self.0;
        let enabled = |v: &Option<String>| {
            v.as_deref()
                .is_some_and(|v| v.eq_ignore_ascii_case("Enabled"))
        };
        super::model::Settings {
            vxlan_vni: f
                .vxlan_vni
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(4096),
            vxlan_port: f.vxlan_port.unwrap_or(4789),
            vxlan_mtu: f.vxlan_mtu.and_then(|v| u32::try_from(v).ok()).unwrap_or(0),
            ipip_mtu: f.ipip_mtu.and_then(|v| u32::try_from(v).ok()).unwrap_or(0),
            ipip_routes: true,
            nat: super::model::NatSettings {
                floating_ips: enabled(&f.floating_i_ps),
                outgoing_address: f
                    .nat_outgoing_address
                    .as_deref()
                    .and_then(|a| a.parse().ok()),
                exclude_host_ips: f
                    .nat_outgoing_exclusions
                    .as_deref()
                    .is_some_and(|v| v.eq_ignore_ascii_case("IPPoolsAndHostIPs")),
            },
        }
    }

    /// The policy settings and what in them could not be used.
    pub fn policy(&self) -> (calico_policy::Settings, Vec<String>) {
        let (s, problems) = calico_policy::Settings::from_felix(&self.0);
        (s, problems.iter().map(ToString::to_string).collect())
    }
}

/// The fields set (by FelixConfiguration or `FELIX_*`) that calico-node
/// accepts but does not act on, as one readiness note; logged only when the
/// note changes, so each is reported once, not every pass.
pub fn not_implemented(eff: &Effective) -> Option<String> {
    static LAST: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    // A feature's settings matter only while it is on: WireGuard's with
    // wireguardEnabled(V6), BPF's with bpfEnabled (a switch set to false
    // is acted on: the feature stays off).
    let f = &eff.0;
    let wireguard = f.wireguard_enabled == Some(true) || f.wireguard_enabled_v6 == Some(true);
    let bpf = f.bpf_enabled == Some(true);
    let set = eff.fields_set();
    let mut fields: Vec<&str> = set
        .iter()
        .map(String::as_str)
        .filter(|f| !calico_api::implemented::FELIX_ACTED_ON.contains(f))
        .filter(|f| wireguard || !f.starts_with("wireguard"))
        .filter(|f| bpf || !f.starts_with("bpf"))
        .collect();
    fields.sort_unstable();
    let note = (!fields.is_empty()).then(|| {
        format!(
            "felix configuration: accepted, not implemented: {}",
            fields.join(", ")
        )
    });
    let mut last = LAST
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if *last != note {
        if let Some(n) = &note {
            log::warn!("{n}");
        }
        last.clone_from(&note);
    }
    note
}

/// Merges `layers` in order (later wins) into the typed spec. Each field
/// is taken on its own, so one that does not fit the spec (a layer not
/// [`sanitize`]d) is left out rather than spoiling the rest.
pub fn merge(layers: &[Map<String, Value>]) -> Effective {
    let mut out = Map::new();
    for l in layers {
        for (k, v) in l {
            out.insert(k.clone(), v.clone());
        }
    }
    if let Ok(spec) = serde_json::from_value(Value::Object(out.clone())) {
        return Effective(spec);
    }
    let fits = |k: &String, v: &Value| {
        let mut one = Map::new();
        one.insert(k.clone(), v.clone());
        serde_json::from_value::<FelixConfigurationSpec>(Value::Object(one)).is_ok()
    };
    out.retain(|k, v| fits(k, v));
    Effective(serde_json::from_value(Value::Object(out)).unwrap_or_default())
}

/// One layer as Felix reads it: enumerated values in any case become
/// Calico's spelling; a field Felix would refuse (unknown, of the wrong
/// type, out of range) is left out, so it keeps the lower layer's value or
/// the default, and is named in the second value (`source` says where it
/// came from).
pub fn sanitize(layer: Map<String, Value>, source: &str) -> (Map<String, Value>, Vec<String>) {
    let mut kept = Map::new();
    let mut problems = Vec::new();
    for (field, mut value) in layer {
        if let Value::String(v) = &value
            && let Some(canonical) = felix_canonical(&field, v)
        {
            match canonical {
                Ok(c) => value = Value::String(c.to_string()),
                Err(e) => {
                    problems.push(format!("{source}: {field}: {e}; using the default"));
                    continue;
                }
            }
        }
        // The field on its own, checked as calicoctl checks the resource.
        let alone = serde_json::json!({
            "apiVersion": calico_api::API_VERSION, "kind": "FelixConfiguration",
            "metadata": {"name": "default"}, "spec": {field.as_str(): value.clone()}});
        match calico_api::decode_value(alone).and_then(|r| r.validate().map_err(|e| e.to_string()))
        {
            Ok(()) => {
                kept.insert(field, value);
            }
            Err(e) => problems.push(format!("{source}: {e}; using the default")),
        }
    }
    (kept, problems)
}

/// The `spec` of FelixConfiguration `name` as stored (read as JSON, so one
/// bad field cannot hide the others), or nothing.
fn spec_of(client: &Client, name: &str) -> Result<Map<String, Value>, ClientError> {
    let key = calico_datastore::keys::resource_key(&ResourceKey {
        kind: Kind::FelixConfiguration,
        namespace: None,
        name: name.to_string(),
    });
    let Some(kv) = client.store().get(&key)? else {
        return Ok(Map::new());
    };
    spec_from_json(&kv.value).map_err(|reason| ClientError::Corrupt {
        key: kv.key.clone(),
        reason,
    })
}

/// Reads the FelixConfigurations and applies the environment on top; the
/// second value names the parameters that were left out ([`sanitize`]).
pub fn read(
    client: &Client,
    node: &str,
    env: &BTreeMap<String, Value>,
) -> Result<(Effective, Vec<String>), ClientError> {
    let default = spec_of(client, "default")?;
    let node_layer = spec_of(client, &format!("node.{node}"))?;
    Ok(layered(default, node_layer, env, node))
}

/// The `spec` of a stored FelixConfiguration (read as JSON, so one bad
/// field cannot hide the others); nothing when it is not an object.
pub fn spec_from_json(value: &[u8]) -> Result<Map<String, Value>, String> {
    let doc: Value = serde_json::from_slice(value).map_err(|e| e.to_string())?;
    Ok(doc
        .get("spec")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default())
}

/// FelixConfiguration `default` < `node.<node>` < the environment, each
/// layer [`sanitize`]d; the second value names what was left out.
pub fn layered(
    default: Map<String, Value>,
    node_layer: Map<String, Value>,
    env: &BTreeMap<String, Value>,
    node: &str,
) -> (Effective, Vec<String>) {
    let env: Map<String, Value> = env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut layers = Vec::new();
    let mut problems = Vec::new();
    for (layer, source) in [
        (default, "FelixConfiguration default".to_string()),
        (node_layer, format!("FelixConfiguration node.{node}")),
        (env, "environment".to_string()),
    ] {
        let (layer, bad) = sanitize(layer, &source);
        layers.push(layer);
        problems.extend(bad);
    }
    (merge(&layers), problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn felix_reads_enumerations_in_any_case_and_drops_only_bad_fields() {
        let layer = json!({
            "defaultEndpointToHostAction": "ACCEPT",
            "logSeverityScreen": "info",
            "workloadSourceSpoofing": "any",
            "chainInsertMode": "Sideways",
            "healthPort": "not a port",
            "vxlanVNI": 0,
            "noSuchField": true,
            "vxlanPort": 4790,
            "ipv6Support": false
        });
        let (kept, problems) = sanitize(layer.as_object().cloned().unwrap(), "environment");
        assert_eq!(
            Value::Object(kept),
            json!({
                "defaultEndpointToHostAction": "Accept",
                "logSeverityScreen": "Info",
                "workloadSourceSpoofing": "Any",
                "vxlanPort": 4790,
                "ipv6Support": false
            })
        );
        let text = problems.join("\n");
        for field in ["chainInsertMode", "healthPort", "vxlanVNI", "noSuchField"] {
            assert!(text.contains(field), "{field} not reported: {text}");
        }
        assert_eq!(problems.len(), 4, "{text}");
        assert!(problems.iter().all(|p| p.starts_with("environment: ")));
    }

    #[test]
    fn fields_not_acted_on_are_named() {
        let m = merge(&[
            json!({"vxlanVNI": 4100, "bpfEnabled": true, "bpfLogLevel": "Off", "programClusterRoutes": "Enabled"})
                .as_object()
                .cloned()
                .unwrap(),
        ]);
        assert_eq!(
            not_implemented(&m).as_deref(),
            Some(
                "felix configuration: accepted, not implemented: bpfEnabled, bpfLogLevel, programClusterRoutes"
            )
        );
        let acted_on = merge(&[json!({"vxlanVNI": 4100}).as_object().cloned().unwrap()]);
        assert_eq!(not_implemented(&acted_on), None);
        // A feature's settings while it is off change nothing: Calico's
        // manifest sets FELIX_WIREGUARDMTU without WireGuard.
        let off = merge(&[
            json!({"wireguardMTU": 0, "wireguardEnabled": false, "ipipMTU": 0})
                .as_object()
                .cloned()
                .unwrap(),
        ]);
        assert_eq!(not_implemented(&off), None);
        let on = merge(&[json!({"wireguardMTU": 1400, "wireguardEnabled": true})
            .as_object()
            .cloned()
            .unwrap()]);
        assert_eq!(
            not_implemented(&on).as_deref(),
            Some("felix configuration: accepted, not implemented: wireguardEnabled, wireguardMTU")
        );
    }

    #[test]
    fn later_layers_win() {
        let g = json!({"vxlanVNI": 4100, "logSeverityScreen": "Info", "healthPort": 9099});
        let n = json!({"vxlanVNI": 4200});
        let e = json!({"healthPort": 9199});
        let m = merge(&[
            g.as_object().cloned().unwrap(),
            n.as_object().cloned().unwrap(),
            e.as_object().cloned().unwrap(),
        ]);
        assert_eq!(m.dataplane().vxlan_vni, 4200);
        assert_eq!(m.0.health_port, Some(9199));
        assert_eq!(m.0.log_severity_screen.as_deref(), Some("Info"));
        assert_eq!(m.dataplane().vxlan_port, 4789);
        // A field that does not fit the spec is left out, the rest kept.
        let bad = merge(&[
            json!({"vxlanVNI": "many", "healthPort": 9199, "noSuchField": 1})
                .as_object()
                .cloned()
                .unwrap(),
        ]);
        assert_eq!(bad.0.health_port, Some(9199));
        assert_eq!(bad.0.vxlan_vni, None);
        assert_eq!(bad.fields_set(), vec!["healthPort".to_string()]);
    }
}
