//! Reading resource files (`-f FILE` or `-f -` for stdin) into checked resources.
//!
//! A file holds `projectcalico.org/v3` resources and, as Calico's calicoctl
//! accepts, Kubernetes `networking.k8s.io/v1` NetworkPolicies. Every document
//! is decoded and validated before the caller writes anything; errors name
//! the file, the document and the field (the first 50, then a count).
//!
//! A file is read one document at a time, whatever its size
//! (`calico_api::codec::stream`), and each resource is checked as it is
//! read and kept as its JSON ([`Packed`]): a `Document` takes the inline
//! size of the largest kind (about 2.4 KB), a workload endpoint's JSON
//! about 600 bytes.

use std::io::{BufRead, BufReader};

use anyhow::{Context, bail};
use calico_api::codec::stream::{Documents, read_documents};
use calico_api::{Document, DocumentKey};

/// A checked document, kept as its JSON until it is written.
pub struct Packed {
    /// The document's identity.
    pub key: DocumentKey,
    /// Its kind, for messages.
    pub kind: &'static str,
    json: Vec<u8>,
}

impl Packed {
    fn pack(d: &Document) -> Packed {
        Packed {
            key: d.key(),
            kind: d.kind_name(),
            json: serde_json::to_vec(&d.to_json()).unwrap_or_default(),
        }
    }

    /// The document again.
    pub fn unpack(&self) -> anyhow::Result<Document> {
        let v = serde_json::from_slice(&self.json)
            .with_context(|| format!("{}: cannot re-read the checked resource", self.key))?;
        Document::from_json(v).map_err(|e| anyhow::anyhow!("{}: {e}", self.key))
    }
}

/// Resources read from one file, each with the number of its document.
pub struct Input {
    /// The file name as given (`-` for stdin).
    pub file: String,
    /// The resources, in file order.
    pub resources: Vec<Packed>,
    /// 1-based document number of each resource.
    pub documents: Vec<usize>,
}

/// `FILE: document N` for the resource at `index` of `documents`.
pub fn place(file: &str, documents: &[usize], index: usize) -> String {
    format!(
        "{file}: document {}",
        documents.get(index).copied().unwrap_or(index + 1)
    )
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

/// Reads and decodes every resource in `file` (`-` = stdin), as written
/// (for `delete -f`). Fails, naming every bad document, if any document
/// cannot be decoded.
pub fn read_resources(file: &str) -> anyhow::Result<Input> {
    read_with(file, Ok)
}

/// Reads every resource in `file`, fills namespaces and defaults and
/// validates each as it is read; fails naming every bad one by document. A
/// resource whose namespace differs from an explicit `--namespace` is
/// refused, as Calico does.
pub fn read_prepared(file: &str, namespace: Option<&str>) -> anyhow::Result<Input> {
    read_with(file, |mut r| {
        if let (Some(ns), Some(own)) = (namespace, r.metadata().namespace.as_deref())
            && r.namespaced()
            && ns != own
        {
            bail!(
                "{} is in namespace {own:?}, but --namespace {ns:?} was given",
                r.key()
            );
        }
        r.default_namespace(namespace.unwrap_or("default"));
        Ok(calico_datastore::Client::prepare_document(r)?)
    })
}

/// Reads `file` one document at a time, passing each through `check`.
fn read_with(
    file: &str,
    mut check: impl FnMut(Document) -> anyhow::Result<Document>,
) -> anyhow::Result<Input> {
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
    let read = read_documents::<_, Documents>(reader, |n, d| match d.map(&mut check) {
        Ok(Ok(r)) => {
            input.resources.push(Packed::pack(&r));
            input.documents.push(n);
        }
        Ok(Err(e)) => errors.push(format!("{file}: document {n}: {e}")),
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

/// `'IPPool' ` when all resources are of one kind, else empty, for messages
/// like Calico's "Successfully created 2 'IPPool' resource(s)".
pub fn kind_label<'a>(kinds: impl IntoIterator<Item = &'a str>) -> String {
    let mut kinds = kinds.into_iter();
    match kinds.next() {
        Some(f) if kinds.all(|k| k == f) => format!("'{f}' "),
        _ => String::new(),
    }
}
