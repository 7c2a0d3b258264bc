//! Reading resource files (`-f FILE` or `-f -` for stdin) into checked resources.
//!
//! Every document is decoded and validated before the caller writes anything;
//! errors name the file, the document and the field.

use std::io::Read;

use anyhow::{Context, bail};
use calico_api::Resource;

/// Reads and decodes every resource in `file` (`-` = stdin). Fails, naming
/// every bad document, if any document cannot be decoded.
pub fn read_resources(file: &str) -> anyhow::Result<Vec<Resource>> {
    let text = if file == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read resources from stdin")?;
        s
    } else {
        let p = std::path::Path::new(file);
        if p.is_dir() {
            bail!("{file} is a directory: give a YAML or JSON file");
        }
        std::fs::read_to_string(p).with_context(|| format!("cannot read {file}"))?
    };
    let docs = calico_api::decode_documents(&text).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for d in docs {
        match d {
            Ok(r) => out.push(r),
            Err(e) => errors.push(format!("{file}: {e}")),
        }
    }
    if !errors.is_empty() {
        bail!("{}\nnothing was changed", errors.join("\n"));
    }
    if out.is_empty() {
        bail!("{file} holds no resources");
    }
    Ok(out)
}

/// Fills namespaces and defaults and validates every resource; fails naming
/// every invalid one.
pub fn prepare_all(
    resources: Vec<Resource>,
    namespace: Option<&str>,
) -> anyhow::Result<Vec<Resource>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, mut r) in resources.into_iter().enumerate() {
        if let Some(ns) = namespace {
            r.default_namespace(ns);
        }
        match calico_datastore::Client::prepare(r) {
            Ok(r) => out.push(r),
            Err(e) => errors.push(format!("resource {}: {e}", i + 1)),
        }
    }
    if !errors.is_empty() {
        bail!("{}\nnothing was changed", errors.join("\n"));
    }
    Ok(out)
}

/// `'IPPool' ` when all resources are of one kind, else empty, for messages
/// like Calico's "Successfully created 2 'IPPool' resource(s)".
pub fn kind_label(resources: &[Resource]) -> String {
    match resources.first() {
        Some(f) if resources.iter().all(|r| r.kind() == f.kind()) => format!("'{}' ", f.kind()),
        _ => String::new(),
    }
}
