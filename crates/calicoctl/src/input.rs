//! Reading resource files (`-f FILE` or `-f -` for stdin) into checked resources.
//!
//! A file holds `projectcalico.org/v3` resources and, as Calico's calicoctl
//! accepts, Kubernetes `networking.k8s.io/v1` NetworkPolicies. Every document
//! is decoded and validated before the caller writes anything; errors name
//! the file, the document and the field.

use std::io::Read;

use anyhow::{Context, bail};
use calico_api::Document;

/// Resources read from one file, each with the number of its document.
pub struct Input {
    /// The file name as given (`-` for stdin).
    pub file: String,
    /// The resources, in file order.
    pub resources: Vec<Document>,
    /// 1-based document number of each resource.
    pub documents: Vec<usize>,
}

impl Input {
    /// `FILE: document N` for the resource at `index`, for messages.
    pub fn place(&self, index: usize) -> String {
        format!(
            "{}: document {}",
            self.file,
            self.documents.get(index).copied().unwrap_or(index + 1)
        )
    }
}

/// Reads and decodes every resource in `file` (`-` = stdin). Fails, naming
/// every bad document, if any document cannot be decoded.
pub fn read_resources(file: &str) -> anyhow::Result<Input> {
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
    let docs =
        calico_api::decode_numbered_documents(&text).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
    let mut input = Input {
        file: file.to_string(),
        resources: Vec::new(),
        documents: Vec::new(),
    };
    let mut errors = Vec::new();
    for (n, d) in docs {
        match d {
            Ok(r) => {
                input.resources.push(r);
                input.documents.push(n);
            }
            Err(e) => errors.push(format!("{file}: {e}")),
        }
    }
    if !errors.is_empty() {
        bail!("{}\nnothing was changed", errors.join("\n"));
    }
    if input.resources.is_empty() {
        bail!("{file} holds no resources");
    }
    Ok(input)
}

/// Fills namespaces and defaults and validates every resource; fails naming
/// every invalid one by document. A resource whose namespace differs from an
/// explicit `--namespace` is refused, as Calico does.
pub fn prepare_all(mut input: Input, namespace: Option<&str>) -> anyhow::Result<Input> {
    let mut errors = Vec::new();
    let resources = std::mem::take(&mut input.resources);
    for (i, mut r) in resources.into_iter().enumerate() {
        if let (Some(ns), Some(own)) = (namespace, r.metadata().namespace.as_deref())
            && r.namespaced()
            && ns != own
        {
            errors.push(format!(
                "{}: {} is in namespace {own:?}, but --namespace {ns:?} was given",
                input.place(i),
                r.key()
            ));
            continue;
        }
        r.default_namespace(namespace.unwrap_or("default"));
        match calico_datastore::Client::prepare_document(r) {
            Ok(r) => input.resources.push(r),
            Err(e) => errors.push(format!("{}: {e}", input.place(i))),
        }
    }
    if !errors.is_empty() {
        bail!("{}\nnothing was changed", errors.join("\n"));
    }
    Ok(input)
}

/// `'IPPool' ` when all resources are of one kind, else empty, for messages
/// like Calico's "Successfully created 2 'IPPool' resource(s)".
pub fn kind_label<'a>(kinds: impl IntoIterator<Item = &'a str>) -> String {
    let mut kinds = kinds.into_iter();
    match kinds.next() {
        Some(f) if kinds.all(|k| k == f) => format!("'{f}' "),
        _ => String::new(),
    }
}
