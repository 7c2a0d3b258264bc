//! Reading resource files (`-f FILE` or `-f -` for stdin) into checked resources.
//!
//! A file holds `projectcalico.org/v3` resources and, as Calico's calicoctl
//! accepts, Kubernetes `networking.k8s.io/v1` NetworkPolicies. Every document
//! is decoded and validated before the caller writes anything; errors name
//! the file, the document and the field (the first 50, then a count). A file
//! is read one document at a time, whatever its size: only the typed
//! resources are kept.

use std::io::{BufRead, BufReader};

use anyhow::{Context, bail};
use calico_api::Document;
use calico_api::codec::stream::{Documents, read_documents};

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

/// At most this many errors are listed; the rest are counted.
const MAX_LISTED_ERRORS: usize = 50;

/// Fails with every error (the first [`MAX_LISTED_ERRORS`], then a count)
/// and "nothing was changed"; does nothing when there are none.
pub fn refuse(errors: &[String]) -> anyhow::Result<()> {
    if errors.is_empty() {
        return Ok(());
    }
    let mut text = errors
        .iter()
        .take(MAX_LISTED_ERRORS)
        .cloned()
        .collect::<Vec<_>>()
        .join("\n");
    if errors.len() > MAX_LISTED_ERRORS {
        text += &format!(
            "\n... and {} more errors ({} in all)",
            errors.len() - MAX_LISTED_ERRORS,
            errors.len()
        );
    }
    bail!("{text}\nnothing was changed")
}

/// Reads and decodes every resource in `file` (`-` = stdin), one document
/// at a time (`calico_api::codec::stream`): only the typed resources are
/// kept, never the whole text or more than one parsed YAML tree. Fails,
/// naming every bad document, if any document cannot be decoded.
pub fn read_resources(file: &str) -> anyhow::Result<Input> {
    let reader: Box<dyn BufRead> = if file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let p = std::path::Path::new(file);
        if p.is_dir() {
            bail!("{file} is a directory: give a YAML or JSON file");
        }
        Box::new(BufReader::with_capacity(
            1 << 16,
            std::fs::File::open(p).with_context(|| format!("cannot read {file}"))?,
        ))
    };
    let mut input = Input {
        file: file.to_string(),
        resources: Vec::new(),
        documents: Vec::new(),
    };
    let mut errors = Vec::new();
    let read = read_documents::<_, Documents>(reader, |n, d| match d {
        Ok(r) => {
            input.resources.push(r);
            input.documents.push(n);
        }
        Err(e) => errors.push(format!("{file}: {e}")),
    });
    if let Err(e) = read {
        errors.push(format!("{file}: {e}"));
    }
    refuse(&errors)?;
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
    refuse(&errors)?;
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
