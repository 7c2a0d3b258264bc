//! `calicoctl patch KIND NAME -p PATCH`: a JSON merge patch (RFC 7386) on
//! the stored resource, written back with its resourceVersion, so a
//! concurrent change is refused instead of overwritten.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;

use super::{key, parse_kind, refuse_converted_policy};

/// Arguments of patch.
#[derive(Args)]
pub struct PatchArgs {
    /// Kind.
    kind: String,
    /// Name.
    name: String,
    /// The patch, as JSON (or YAML) text.
    #[arg(short = 'p', long)]
    patch: String,
    /// Patch type: merge (also accepted as strategic, Calico's default).
    #[arg(short = 't', long = "type", default_value = "strategic")]
    patch_type: String,
    /// Namespace of namespaced resources.
    #[arg(short = 'n', long)]
    namespace: Option<String>,
}

/// Applies an RFC 7386 merge patch.
pub fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Default::default());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Runs the command.
pub fn run(config: Option<&PathBuf>, a: PatchArgs) -> anyhow::Result<()> {
    if !matches!(a.patch_type.as_str(), "strategic" | "merge") {
        bail!(
            "patch type {:?} is not supported: use merge (or strategic)",
            a.patch_type
        );
    }
    let kind = parse_kind(&a.kind)?;
    let patch: Value = if a.patch.trim_start().starts_with('{') {
        serde_json::from_str(&a.patch).context("the patch is not valid JSON")?
    } else {
        calico_api::codec::yaml_value(&a.patch).map_err(anyhow::Error::msg)?
    };
    if !patch.is_object() {
        bail!("the patch must be an object, e.g. '{{\"spec\":{{\"natOutgoing\":true}}}}'");
    }
    let k = key(kind, &a.name, a.namespace.as_deref())?;
    refuse_converted_policy(&k, "patch").map_err(anyhow::Error::msg)?;
    let client = crate::connect(config)?;
    let current = client.get(&k)?;
    let mut v = current.to_json();
    merge(&mut v, &patch);
    // Identity and version are not patchable.
    v["apiVersion"] = Value::String(calico_api::API_VERSION.into());
    v["kind"] = Value::String(kind.name().into());
    v["metadata"]["name"] = Value::String(k.name.clone());
    v["metadata"]["resourceVersion"] = current
        .metadata()
        .resource_version
        .clone()
        .map(Value::String)
        .unwrap_or(Value::Null);
    if let Some(ns) = &k.namespace {
        v["metadata"]["namespace"] = Value::String(ns.clone());
    }
    let patched = calico_api::decode_value(v)
        .map_err(|e| anyhow::anyhow!("the patched {k} is invalid: {e}"))?;
    client.check_cluster_rules(&calico_datastore::Client::prepare(patched.clone())?, &[])?;
    client.update(patched)?;
    println!("Successfully patched 1 '{kind}' resource");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_rfc7386() {
        let mut t = serde_json::json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge(&mut t, &serde_json::json!({"a": "z", "c": {"f": null}}));
        assert_eq!(t, serde_json::json!({"a": "z", "c": {"d": "e"}}));
        let mut t = serde_json::json!({"a": [1, 2]});
        merge(&mut t, &serde_json::json!({"a": [3], "n": {"x": 1}}));
        assert_eq!(t, serde_json::json!({"a": [3], "n": {"x": 1}}));
    }
}
