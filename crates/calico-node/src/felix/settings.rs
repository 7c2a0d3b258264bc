//! Felix's configuration as it applies to this node: the FelixConfiguration
//! `default`, overridden by `node.<name>`, overridden by `FELIX_*`
//! environment variables (highest priority, as in Felix).

use std::collections::BTreeMap;

use calico_api::{Kind, ResourceKey};
use calico_datastore::{Client, ClientError};
use serde_json::{Map, Value};

/// The merged settings, camelCase field → value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effective(pub Map<String, Value>);

impl Effective {
    pub fn u64(&self, field: &str) -> Option<u64> {
        self.0.get(field).and_then(Value::as_u64)
    }

    pub fn bool(&self, field: &str) -> Option<bool> {
        self.0.get(field).and_then(Value::as_bool)
    }

    pub fn str(&self, field: &str) -> Option<&str> {
        self.0.get(field).and_then(Value::as_str)
    }

    /// Whether endpoints may send from `allowSpoofedSourcePrefixes`
    /// (`workloadSourceSpoofing: Any`; Felix's default is `Disabled`).
    pub fn source_spoofing_allowed(&self) -> bool {
        self.str("workloadSourceSpoofing")
            .is_some_and(|v| v.eq_ignore_ascii_case("Any"))
    }

    /// The dataplane settings.
    pub fn dataplane(&self) -> super::model::Settings {
        super::model::Settings {
            vxlan_vni: self
                .u64("vxlanVNI")
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(4096),
            vxlan_port: self
                .u64("vxlanPort")
                .and_then(|v| u16::try_from(v).ok())
                .unwrap_or(4789),
            vxlan_mtu: self
                .u64("vxlanMTU")
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(0),
            ipip_routes: true,
        }
    }
}

/// Merges `layers` in order (later wins).
pub fn merge(layers: &[Map<String, Value>]) -> Effective {
    let mut out = Map::new();
    for l in layers {
        for (k, v) in l {
            out.insert(k.clone(), v.clone());
        }
    }
    Effective(out)
}

fn spec_of(client: &Client, name: &str) -> Result<Map<String, Value>, ClientError> {
    let key = ResourceKey {
        kind: Kind::FelixConfiguration,
        namespace: None,
        name: name.to_string(),
    };
    match client.get(&key) {
        Ok(r) => Ok(r
            .to_json()
            .get("spec")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()),
        Err(ClientError::NotFound(_)) => Ok(Map::new()),
        Err(e) => Err(e),
    }
}

/// Reads the FelixConfigurations and applies the environment on top.
pub fn read(
    client: &Client,
    node: &str,
    env: &BTreeMap<String, Value>,
) -> Result<Effective, ClientError> {
    let global = spec_of(client, "default")?;
    let per_node = spec_of(client, &format!("node.{node}"))?;
    let env: Map<String, Value> = env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    Ok(merge(&[global, per_node, env]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        assert_eq!(m.u64("healthPort"), Some(9199));
        assert_eq!(m.str("logSeverityScreen"), Some("Info"));
        assert_eq!(m.dataplane().vxlan_port, 4789);
    }
}
