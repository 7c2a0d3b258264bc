//! Reading resource files (`-f FILE`, `-f -` for stdin, or `-f DIR`) into
//! checked resources.
//!
//! `-f DIR` reads the directory's `.yaml`, `.yml` and `.json` files (any
//! case) in name order, and with `-R` those of its subdirectories too, depth
//! first, as Calico's calicoctl walks it; other files are left alone. The
//! files make one batch: nothing is written if any document is bad. Errors
//! while reading name the file and its document; later ones (a resource
//! that exists, say) say `DIR: document N`, N counting across the files in
//! the order read.
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
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

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

/// `-R`: `-f DIR` reads subdirectories too (set once by `main`).
static RECURSIVE: AtomicBool = AtomicBool::new(false);

/// Sets `-R` for this run.
pub fn set_recursive(on: bool) {
    RECURSIVE.store(on, Ordering::Relaxed);
}

/// The manifest files under `dir` in the order Calico's calicoctl walks
/// them (name order, depth first; subdirectories only when `recursive`).
pub fn manifest_files(dir: &Path, recursive: bool) -> anyhow::Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the directory {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot read the directory {}", dir.display()))?;
    entries.sort();
    let mut out = Vec::new();
    for p in entries {
        if p.is_dir() {
            if recursive {
                out.extend(manifest_files(&p, true)?);
            }
        } else if p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| ["yaml", "yml", "json"].contains(&e.to_ascii_lowercase().as_str()))
        {
            out.push(p);
        }
    }
    Ok(out)
}

/// Reads `file` (or every manifest of the directory `file`) one document
/// at a time, passing each through `check`.
fn read_with(
    file: &str,
    mut check: impl FnMut(Document) -> anyhow::Result<Document>,
) -> anyhow::Result<Input> {
    let mut input = Input {
        file: file.to_string(),
        resources: Vec::new(),
        documents: Vec::new(),
    };
    let mut errors = Vec::new();
    let dir = file != "-" && Path::new(file).is_dir();
    let files: Vec<String> = if dir {
        let found = manifest_files(Path::new(file), RECURSIVE.load(Ordering::Relaxed))?;
        if found.is_empty() {
            bail!("{file} holds no .yaml, .yml or .json files");
        }
        found.iter().map(|p| p.display().to_string()).collect()
    } else {
        vec![file.to_string()]
    };
    // Documents read before this file (across a directory's files).
    let mut before = 0;
    for name in &files {
        let reader: Box<dyn BufRead> = if name == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(BufReader::with_capacity(
                1 << 16,
                std::fs::File::open(name).with_context(|| format!("cannot read {name}"))?,
            ))
        };
        let mut last = 0;
        let read = read_documents::<_, Documents>(reader, |n, d| {
            last = n;
            match d.map(&mut check) {
                Ok(Ok(r)) => {
                    input.resources.push(Packed::pack(&r));
                    input.documents.push(before + n);
                }
                Ok(Err(e)) => errors.push(format!("{name}: document {n}: {e}")),
                Err(e) => errors.push(format!("{name}: {e}")),
            }
        });
        if let Err(e) = read {
            errors.push(format!("{name}: {e}"));
        }
        before += last;
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
