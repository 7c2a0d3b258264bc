//! `calicoctl create`, `apply` and `replace -f FILE`.
//!
//! Every document (Calico resources and Kubernetes NetworkPolicies) is
//! decoded, defaulted and validated, and checked against the store (existence
//! for create/replace, overlapping pools, policies' tiers, stale
//! resourceVersions, no Calico policy named `knp.default.*`), before the first
//! write; a bad batch changes nothing.

use std::path::PathBuf;

use anyhow::bail;
use calico_api::{Document, DocumentKey, Resource};
use calico_datastore::client::WriteOp;
use clap::Args;

use super::refuse_converted_policy;
use crate::input::{kind_label, prepare_all, read_resources};

/// Arguments of create, apply and replace.
#[derive(Args)]
pub struct WriteArgs {
    /// File of resources (YAML or JSON; `-` for stdin).
    #[arg(short = 'f', long = "filename")]
    file: String,
    /// Namespace for namespaced resources that name none.
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// (create) Skip resources that already exist instead of failing.
    #[arg(long)]
    skip_exists: bool,
}

/// Which write.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Fail if a resource exists.
    Create,
    /// Create or update.
    Apply,
    /// Update existing resources.
    Replace,
}

impl Mode {
    fn verb(self) -> (&'static str, &'static str) {
        match self {
            Mode::Create => ("create", "created"),
            Mode::Apply => ("apply", "applied"),
            Mode::Replace => ("replace", "replaced"),
        }
    }
}

/// Runs the command.
pub fn run(config: Option<&PathBuf>, mode: Mode, a: WriteArgs) -> anyhow::Result<()> {
    let (verb, done) = mode.verb();
    let input = prepare_all(read_resources(&a.file)?, a.namespace.as_deref())?;
    let docs = &input.resources;
    let label = kind_label(docs.iter().map(Document::kind_name));
    // The Calico resources of the batch, for rules that span it (pools, tiers).
    let calico: Vec<Resource> = docs
        .iter()
        .filter_map(|d| match d {
            Document::Calico(r) => Some(r.clone()),
            Document::KubernetesNetworkPolicy(_) => None,
        })
        .collect();
    let client = crate::connect(config)?;

    // Check the whole batch against the store before writing anything.
    let mut errors = Vec::new();
    let mut batch = Vec::new();
    let mut skipped = 0;
    for (i, d) in docs.iter().enumerate() {
        let key = d.key();
        if let DocumentKey::Calico(k) = &key
            && let Err(e) = refuse_converted_policy(k, verb)
        {
            errors.push(format!("{}: {e}", input.place(i)));
            continue;
        }
        let existing = match client.get_document(&key) {
            Ok(e) => Some(e),
            Err(calico_datastore::ClientError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        };
        match (mode, &existing) {
            (Mode::Create, Some(_)) if a.skip_exists => {
                skipped += 1;
                continue;
            }
            (Mode::Create, Some(_)) => errors.push(format!(
                "{}: resource already exists: {key}",
                input.place(i)
            )),
            (Mode::Replace, None) => errors.push(format!(
                "{}: resource does not exist: {key}",
                input.place(i)
            )),
            _ => {}
        }
        if let (Some(given), Some(cur)) = (&d.metadata().resource_version, &existing)
            && Some(given) != cur.metadata().resource_version.as_ref()
        {
            errors.push(format!(
                "{}: update conflict: {key} has resourceVersion {}, not {given}: get it again and retry",
                input.place(i),
                cur.metadata().resource_version.clone().unwrap_or_default()
            ));
        }
        if let Document::Calico(r) = d
            && let Err(e) = client.check_cluster_rules(r, &calico)
        {
            errors.push(format!("{}: {e}", input.place(i)));
        }
        batch.push(d.clone());
    }
    if !errors.is_empty() {
        bail!(
            "Failed to {verb} {label}resource(s):\n{}\nnothing was changed",
            errors.join("\n")
        );
    }
    let op = match mode {
        Mode::Create => WriteOp::Create,
        Mode::Apply => WriteOp::Apply,
        Mode::Replace => WriteOp::Replace,
    };
    let total = batch.len();
    match client.write_prepared(op, batch) {
        Ok(written) => {
            println!(
                "Successfully {done} {} {label}resource(s)",
                written.len() + skipped
            );
            Ok(())
        }
        Err((0, e)) => bail!("Failed to {verb} {label}resource: [{e}]"),
        Err((n, e)) => bail!(
            "Partial success: {done} the first {n} out of {total} {label}resources:\nHit error: {e}"
        ),
    }
}
