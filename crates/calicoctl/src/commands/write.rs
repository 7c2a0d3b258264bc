//! `calicoctl create`, `apply` and `replace -f FILE`.
//!
//! Every document (Calico resources and Kubernetes NetworkPolicies) is
//! decoded, defaulted and validated, and checked against the store (existence
//! for create/replace, overlapping pools, policies' tiers, stale
//! resourceVersions, no Calico policy named `knp.default.*`, a resource
//! created twice), before the first write; a bad batch changes nothing.
//!
//! The checked batch is then written (`calico_datastore::client::BatchWriter`)
//! in compare-and-swap transactions: on the local store the whole file in
//! one, so all or nothing; on etcd at most 128 resources and 1 MiB each
//! (etcd's default limits are 128 operations and 1.5 MiB per request), so a
//! file larger than that is not atomic against etcd failing between two
//! transactions. On either store, a transaction that finds one of its
//! resources changed by another writer since the check is written one
//! resource at a time. Either way, resources already written stay and the
//! error says how many ("Partial success", as Calico's calicoctl, which
//! writes one resource at a time).
//!
//! A field calico-rs accepts and stores but does not act on is named once
//! per resource on stderr ("accepted, not implemented"), before the writes.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use anyhow::bail;
use calico_api::{Document, DocumentKey, Kind};
use calico_datastore::DatastoreConfig;
use calico_datastore::client::{TxnLimits, WriteOp};
use clap::Args;

use super::refuse_converted_policy;
use crate::input::{Input, kind_label, place, read_prepared, refuse};

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
    let Input {
        file,
        resources,
        documents,
    } = read_prepared(&a.file, a.namespace.as_deref())?;
    let label = kind_label(resources.iter().map(|p| p.kind));
    // The resources of the batch that rules spanning it need (pools, tiers).
    let mut related = Vec::new();
    for p in &resources {
        if let DocumentKey::Calico(k) = &p.key
            && matches!(k.kind, Kind::IPPool | Kind::Tier)
            && let Document::Calico(r) = p.unpack()?
        {
            related.push(r);
        }
    }
    let cfg = crate::datastore_config(config)?;
    // The local store takes the whole file in one transaction; etcd takes
    // 128 operations and 1.5 MiB per request.
    let limits = match &cfg {
        DatastoreConfig::Local { .. } => TxnLimits::WHOLE,
        DatastoreConfig::Etcd { .. } => TxnLimits::ETCD,
    };
    let client = crate::connect_with(cfg)?;

    // Check the whole batch against the store before writing anything.
    let existing = client.existing(resources.iter().map(|p| &p.key))?;
    let mut errors = Vec::new();
    let mut write = vec![true; resources.len()];
    let mut first_seen: HashMap<&DocumentKey, usize> = HashMap::new();
    let mut repeated = HashSet::new();
    let mut warnings = Vec::new();
    for (i, (p, existing)) in resources.iter().zip(&existing).enumerate() {
        let key = &p.key;
        let place = place(&file, &documents, i);
        if let DocumentKey::Calico(k) = key
            && let Err(e) = refuse_converted_policy(k, verb)
        {
            errors.push(format!("{place}: {e}"));
            continue;
        }
        let earlier = first_seen.insert(key, i);
        if earlier.is_some() {
            repeated.insert(key.clone());
        }
        match (mode, existing) {
            (Mode::Create, Some(_)) if a.skip_exists => {
                write[i] = false;
                continue;
            }
            (Mode::Create, Some(_)) => {
                errors.push(format!("{place}: resource already exists: {key}"))
            }
            (Mode::Create, None) if earlier.is_some() => errors.push(format!(
                "{place}: {key} is also in {}: a file creates each resource once",
                crate::input::place(&file, &documents, earlier.unwrap_or_default())
            )),
            (Mode::Replace, None) => {
                errors.push(format!("{place}: resource does not exist: {key}"))
            }
            _ => {}
        }
        let d = p.unpack()?;
        if let (Some(given), Some(cur)) = (&d.metadata().resource_version, existing)
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
        if let Document::Calico(r) = &d
            && let Some(note) = calico_api::not_implemented_note(r)
        {
            warnings.push(format!("warning: {place}: {note}"));
        }
    }
    if !errors.is_empty() {
        let listed = refuse(&errors)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        bail!("Failed to {verb} {label}resource(s):\n{listed}");
    }
    drop(first_seen);
    for w in &warnings {
        eprintln!("{w}");
    }
    let op = match mode {
        Mode::Create => WriteOp::Create,
        Mode::Apply => WriteOp::Apply,
        Mode::Replace => WriteOp::Replace,
    };
    let total = write.iter().filter(|w| **w).count();
    let skipped = resources.len() - total;
    let mut writer = client.batch_writer(op, limits, repeated);
    let mut written = Ok(());
    for ((p, existing), _) in resources
        .into_iter()
        .zip(existing)
        .zip(write)
        .filter(|(_, w)| *w)
    {
        let d = p.unpack()?;
        written = writer.push(d, existing);
        if written.is_err() {
            break;
        }
    }
    match written.and_then(|()| writer.finish()) {
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
