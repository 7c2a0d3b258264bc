//! Reading and writing resources as users write them: YAML (multi-document)
//! or JSON, single resources or `<Kind>List` / `List` wrappers; with
//! [`decode_numbered_documents`], Kubernetes NetworkPolicies among them.
//!
//! [`stream::read_documents`] reads a file of any number of documents one
//! document (and one `List` item) at a time; the functions over text use it.
//!
//! Decoding is strict (unknown fields, wrong types, unknown kinds and API
//! versions are refused) and never panics; every error names the document
//! (1-based) and, where known, the field path.

use std::fmt;

use serde_json::{Map, Value};

use crate::document::Document;
use crate::kind::Kind;
use crate::meta::Resource;

/// Why one document could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DecodeError {
    /// 1-based index of the document in the input (0 when the input as a whole is unreadable).
    pub document: usize,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.document == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "document {}: {}", self.document, self.message)
        }
    }
}

/// Decodes every document of a YAML or JSON text. The outer error is for
/// input that is not YAML at all; each document then decodes (or fails) on its own.
pub fn decode_documents(text: &str) -> Result<Vec<Result<Resource, DecodeError>>, DecodeError> {
    Ok(decode_numbered(text)?.into_iter().map(|(_, r)| r).collect())
}

/// One decoded item (or its error) with the 1-based number of its document.
pub type Numbered<T> = (usize, Result<T, DecodeError>);

/// One decoded resource (or its error) with the 1-based number of its document.
pub type NumberedResource = Numbered<Resource>;

/// Like [`decode_documents`], with the 1-based number of the document each
/// resource came from (the items of one `List` document share its number).
pub fn decode_numbered(text: &str) -> Result<Vec<NumberedResource>, DecodeError> {
    decode_numbered_with::<stream::Resources>(text)
}

/// One decoded [`Document`] (or its error) with the number of its document.
pub type NumberedDocument = Numbered<Document>;

/// Like [`decode_numbered`], but a document may also be a Kubernetes
/// `networking.k8s.io/v1` NetworkPolicy (as `calicoctl apply` accepts).
pub fn decode_numbered_documents(text: &str) -> Result<Vec<NumberedDocument>, DecodeError> {
    decode_numbered_with::<stream::Documents>(text)
}

fn decode_numbered_with<D: stream::DocumentDecoder>(
    text: &str,
) -> Result<Vec<Numbered<D::Output>>, DecodeError> {
    let mut out = Vec::new();
    stream::read_documents::<_, D>(text.as_bytes(), |n, r| out.push((n, r)))?;
    Ok(out)
}

/// Decodes one resource from its JSON value.
pub fn decode_value(v: Value) -> Result<Resource, String> {
    decode_checked(v)
}

/// [`decode_value`] of JSON text: the same resource and the same errors,
/// decoded straight into its type (no `Value` tree in between) whenever it
/// is valid, which is the stored case.
pub fn decode_json(bytes: &[u8]) -> Result<Resource, String> {
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(rename = "apiVersion")]
        api_version: Option<String>,
        kind: Option<String>,
    }
    if let Ok(Head {
        api_version: Some(a),
        kind: Some(k),
    }) = serde_json::from_slice::<Head>(bytes)
        && a == crate::API_VERSION
        && let Some(kind) = Kind::from_name(&k)
        && let Some(r) = Resource::from_slice(kind, bytes)
    {
        return Ok(r);
    }
    let v: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    decode_checked(v)
}

fn decode_checked(v: Value) -> Result<Resource, String> {
    let Value::Object(map) = &v else {
        return Err("a resource must be a mapping with apiVersion, kind, metadata and spec".into());
    };
    match map.get("apiVersion") {
        Some(Value::String(a)) if a == crate::API_VERSION => {}
        Some(Value::String(a)) => {
            return Err(format!(
                "apiVersion {a:?} is not supported: use {}",
                crate::API_VERSION
            ));
        }
        Some(_) => return Err("apiVersion: a string is required".into()),
        None => return Err(format!("apiVersion is missing: use {}", crate::API_VERSION)),
    }
    let kind = match map.get("kind") {
        Some(Value::String(k)) => Kind::from_name(k).ok_or_else(|| {
            let known: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
            format!(
                "kind {k:?} is not a known resource kind (one of {})",
                known.join(", ")
            )
        })?,
        Some(_) => return Err("kind: a string is required".into()),
        None => return Err("kind is missing".into()),
    };
    Resource::from_json(kind, v)
}

/// One resource, or a list of them (`<Kind>List`, or `List` for mixed kinds).
pub fn to_output_value(resources: &[Resource], as_list: bool) -> Value {
    if !as_list && let [one] = resources {
        return one.to_json();
    }
    let kind = match resources.first() {
        Some(first) if resources.iter().all(|r| r.kind() == first.kind()) => {
            format!("{}List", first.kind())
        }
        _ => "List".to_string(),
    };
    let mut m = Map::new();
    m.insert(
        "apiVersion".into(),
        Value::String(crate::API_VERSION.into()),
    );
    m.insert(
        "items".into(),
        Value::Array(resources.iter().map(Resource::to_json).collect()),
    );
    m.insert("kind".into(), Value::String(kind));
    m.insert("metadata".into(), Value::Object(Map::new()));
    Value::Object(m)
}

/// Parses one YAML document into a JSON value (for config files).
pub fn yaml_value(text: &str) -> Result<Value, String> {
    serde_saphyr::from_str::<Value>(text).map_err(|e| format!("invalid YAML: {e}"))
}

/// Sorts every mapping's keys, as calicoctl's YAML output does.
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// YAML text of a value as calicoctl prints it (keys sorted).
pub fn encode_yaml(v: &Value) -> String {
    serde_saphyr::to_string(&sorted(v))
        .unwrap_or_else(|e| format!("# cannot encode as YAML: {e}\n"))
}

/// Indented JSON text of a value as calicoctl prints it.
pub fn encode_json(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

pub mod stream;

#[cfg(test)]
mod tests;
