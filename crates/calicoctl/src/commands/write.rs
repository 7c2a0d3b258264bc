//! `calicoctl create`, `apply` and `replace -f FILE`.
//!
//! Every document (Calico resources and Kubernetes NetworkPolicies) is
//! decoded, defaulted and validated, and checked against the store (existence
//! for create/replace, overlapping pools, policies' tiers, stale
//! resourceVersions, no Calico policy named `knp.default.*`, a resource
//! created twice), before the first write; a bad batch changes nothing.
//!
//! The checked batch is then written in transactions of at most 128
//! resources and 1 MiB (`Client::write_batch`; etcd's default limits are 128
//! operations and 1.5 MiB per request), each all or nothing. A file larger
//! than one transaction is not atomic against the store failing, or another
//! writer changing one of its resources, between two transactions: then the
//! resources already written stay, and the error says how many ("Partial
//! success", as Calico's calicoctl, which writes one resource at a time).

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::bail;
use calico_api::{Document, DocumentKey, Resource};
use calico_datastore::client::WriteOp;
use clap::Args;

use super::refuse_converted_policy;
use crate::input::{Input, kind_label, prepare_all, read_resources, refuse};

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
    let label = kind_label(input.resources.iter().map(Document::kind_name));
    // The resources of the batch that rules spanning it need (pools, tiers).
    let related: Vec<Resource> = input
        .resources
        .iter()
        .filter_map(|d| match d {
            Document::Calico(r @ (Resource::IPPool(_) | Resource::Tier(_))) => Some(r.clone()),
            _ => None,
        })
        .collect();
    let client = crate::connect(config)?;

    // Check the whole batch against the store before writing anything.
    let keys: Vec<DocumentKey> = input.resources.iter().map(Document::key).collect();
    let existing = client.existing(&keys)?;
    let mut errors = Vec::new();
    let mut batch = Vec::with_capacity(input.resources.len());
    let mut batch_existing = Vec::with_capacity(input.resources.len());
    let mut first_seen: HashMap<&DocumentKey, usize> = HashMap::new();
    let mut skipped = 0;
    let Input {
        file,
        resources,
        documents,
    } = input;
    let place_of = |i: usize| {
        format!(
            "{file}: document {}",
            documents.get(i).copied().unwrap_or(i + 1)
        )
    };
    for (i, ((d, key), existing)) in resources.into_iter().zip(&keys).zip(existing).enumerate() {
        let place = place_of(i);
        if let DocumentKey::Calico(k) = key
            && let Err(e) = refuse_converted_policy(k, verb)
        {
            errors.push(format!("{place}: {e}"));
            continue;
        }
        let earlier = first_seen.insert(key, i);
        match (mode, &existing) {
            (Mode::Create, Some(_)) if a.skip_exists => {
                skipped += 1;
                continue;
            }
            (Mode::Create, Some(_)) => {
                errors.push(format!("{place}: resource already exists: {key}"))
            }
            (Mode::Create, None) if earlier.is_some() => errors.push(format!(
                "{place}: {key} is also in {}: a file creates each resource once",
                place_of(earlier.unwrap_or_default())
            )),
            (Mode::Replace, None) => {
                errors.push(format!("{place}: resource does not exist: {key}"))
            }
            _ => {}
        }
        if let (Some(given), Some(cur)) = (&d.metadata().resource_version, &existing)
            && *given != cur.revision.to_string()
        {
            errors.push(format!(
                "{place}: update conflict: {key} has resourceVersion {}, not {given}: get it again and retry",
                cur.revision
            ));
        }
        if let Document::Calico(r) = &d
            && let Err(e) = client.check_cluster_rules(r, &related)
        {
            errors.push(format!("{place}: {e}"));
        }
        batch.push(d);
        batch_existing.push(existing);
    }
    if !errors.is_empty() {
        let listed = refuse(&errors)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        bail!("Failed to {verb} {label}resource(s):\n{listed}");
    }
    let op = match mode {
        Mode::Create => WriteOp::Create,
        Mode::Apply => WriteOp::Apply,
        Mode::Replace => WriteOp::Replace,
    };
    let total = batch.len();
    match client.write_batch(op, batch, batch_existing) {
        Ok(written) => {
            println!(
                "Successfully {done} {} {label}resource(s)",
                written + skipped
            );
            Ok(())
        }
        Err((0, e)) => bail!("Failed to {verb} {label}resource: [{e}]"),
        Err((n, e)) => bail!(
            "Partial success: {done} the first {n} out of {total} {label}resources:\nHit error: {e}"
        ),
    }
}
