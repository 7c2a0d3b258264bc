//! Calico v3.31's resource schemas (from its CRDs, by
//! `tests/fixtures/calico-3.31/generate.py`) and a checker of JSON values
//! against them.
//!
//! calico-rs keeps the parts of a resource it does not interpret as plain
//! JSON (Felix's `bpfConntrackTimeouts`, a KubeControllersConfiguration's
//! spec, ...); [`check_schema`] holds them to Calico's schema, so a field
//! outside it, a wrong type, a value outside an enumeration or a bound is
//! refused as Calico's API server refuses it.

use std::sync::LazyLock;

use serde_json::Value;

use crate::validate::Errors;

static SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    // Checked in and tested (`schema_parses`): parsing cannot fail at run time.
    serde_json::from_str(include_str!("calico_schema.json")).unwrap_or(Value::Null)
});

/// The schema of `path` (`spec.bpfConntrackTimeouts`, `spec`, `status`) of
/// `kind`, if Calico's schema has it.
pub fn calico_schema(kind: &str, path: &str) -> Option<&'static Value> {
    let mut parts = path.split('.');
    let mut s = SCHEMA.get(kind)?.get(parts.next()?)?;
    for p in parts {
        // A list's fields are its items' (`spec.importV4.action`).
        while s.get("properties").is_none()
            && let Some(items) = s.get("items")
        {
            s = items;
        }
        s = s.get("properties")?.get(p)?;
    }
    Some(s)
}

/// Every field path of `kind`'s spec in Calico's schema (`spec.x.y`, with
/// `[]` for a list's items and `{}` for a map's values).
pub fn calico_fields(kind: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(s) = calico_schema(kind, "spec") {
        walk(s, "spec", &mut out);
    }
    out
}

fn walk(s: &Value, path: &str, out: &mut Vec<String>) {
    if path != "spec" {
        out.push(path.to_string());
    }
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            walk(v, &format!("{path}.{k}"), out);
        }
    }
    if let Some(items) = s.get("items") {
        walk(items, &format!("{path}[]"), out);
    }
    if let Some(values) = s.get("additionalProperties") {
        walk(values, &format!("{path}{{}}"), out);
    }
}

/// Checks `v` (at `field`) against the schema of `path` of `kind`; a path
/// Calico's schema lacks is not checked.
pub(crate) fn check_schema(kind: &str, path: &str, v: &Value, field: &str, errs: &mut Errors) {
    if let Some(s) = calico_schema(kind, path) {
        check_value(s, v, field, errs);
    }
}

/// Checks `v` against schema `s`, naming problems by `field`.
pub fn check_value(s: &Value, v: &Value, field: &str, errs: &mut Errors) {
    let int_or_string = s
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if int_or_string {
        if !(v.is_i64() || v.is_u64() || v.is_string()) {
            errs.add(field, "an integer or a string is required");
        }
        return;
    }
    let ty = s.get("type").and_then(Value::as_str).unwrap_or("");
    let ok = match ty {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => true,
    };
    if !ok {
        let a = if ty == "array" || ty == "integer" || ty == "object" {
            "an"
        } else {
            "a"
        };
        errs.add(field, format!("{a} {ty} is required"));
        return;
    }
    if let Some(allowed) = s.get("enum").and_then(Value::as_array)
        && !allowed.contains(v)
    {
        let names: Vec<String> = allowed
            .iter()
            .map(|a| a.as_str().map_or_else(|| a.to_string(), str::to_string))
            .collect();
        errs.add(field, format!("{v} is not one of {}", names.join(", ")));
    }
    if let Some(n) = v.as_f64() {
        if let Some(min) = s.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            errs.add(field, format!("{v} is below the minimum {min}"));
        }
        if let Some(max) = s.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            errs.add(field, format!("{v} is above the maximum {max}"));
        }
    }
    if let Some(text) = v.as_str() {
        let len = text.chars().count() as u64;
        if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
            && len > max
        {
            errs.add(field, format!("longer than {max} characters"));
        }
        if let Some(min) = s.get("minLength").and_then(Value::as_u64)
            && len < min
        {
            errs.add(field, format!("shorter than {min} characters"));
        }
    }
    if let Some(items) = v.as_array() {
        let n = items.len() as u64;
        if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
            && n > max
        {
            errs.add(field, format!("at most {max} items are allowed"));
        }
        if let Some(min) = s.get("minItems").and_then(Value::as_u64)
            && n < min
        {
            errs.add(field, format!("at least {min} items are required"));
        }
        if let Some(item) = s.get("items") {
            for (i, x) in items.iter().enumerate() {
                check_value(item, x, &format!("{field}[{i}]"), errs);
            }
        }
    }
    if let Some(map) = v.as_object() {
        let props = s.get("properties").and_then(Value::as_object);
        let values = s.get("additionalProperties");
        for (k, x) in map {
            let f = format!("{field}.{k}");
            match (props.and_then(|p| p.get(k)), values) {
                (Some(ps), _) => check_value(ps, x, &f, errs),
                (None, Some(vs)) => check_value(vs, x, &f, errs),
                // An object without declared fields is free-form.
                (None, None) if props.is_none() => {}
                (None, None) => errs.add(f, "unknown field"),
            }
        }
        for r in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !map.contains_key(r) {
                errs.add(format!("{field}.{r}"), "this field is required");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_parses() {
        assert!(SCHEMA.is_object());
        assert!(calico_schema("FelixConfiguration", "spec.bpfConntrackTimeouts").is_some());
        assert!(calico_fields("KubeControllersConfiguration").len() > 20);
    }

    #[test]
    fn values_are_held_to_the_schema() {
        let s = calico_schema("FelixConfiguration", "spec.bpfConntrackTimeouts")
            .cloned()
            .unwrap_or_default();
        let mut errs = Errors::default();
        check_value(&s, &json!({"tcpFinsSeen": "30s"}), "spec.t", &mut errs);
        assert!(errs.list.is_empty(), "{:?}", errs.list);
        check_value(&s, &json!({"tcpFinSeen": "30s"}), "spec.t", &mut errs);
        check_value(&s, &json!({"tcpFinsSeen": 30}), "spec.t", &mut errs);
        check_value(&s, &json!([]), "spec.t", &mut errs);
        let text: Vec<String> = errs
            .list
            .iter()
            .map(|e| format!("{}: {}", e.field, e.reason))
            .collect();
        assert_eq!(
            text,
            [
                "spec.t.tcpFinSeen: unknown field",
                "spec.t.tcpFinsSeen: a string is required",
                "spec.t: an object is required"
            ]
        );
    }
}
