//! `calicoctl create`, `apply` and `replace -f FILE`.
//!
//! Every document is decoded, defaulted and validated, and checked against
//! the store (existence for create/replace, overlapping pools, stale
//! resourceVersions), before the first write; a bad batch changes nothing.

use std::path::PathBuf;

use anyhow::bail;
use calico_datastore::client::WriteOp;
use clap::Args;

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
    let resources = &input.resources;
    let label = kind_label(resources);
    let client = crate::connect(config)?;

    // Check the whole batch against the store before writing anything.
    let mut errors = Vec::new();
    let mut batch = Vec::new();
    let mut skipped = 0;
    for (i, r) in resources.iter().enumerate() {
        let existing = match client.get(&r.key()) {
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
                "{}: resource already exists: {}",
                input.place(i),
                r.key()
            )),
            (Mode::Replace, None) => errors.push(format!(
                "{}: resource does not exist: {}",
                input.place(i),
                r.key()
            )),
            _ => {}
        }
        if let (Some(given), Some(cur)) = (&r.metadata().resource_version, &existing)
            && Some(given) != cur.metadata().resource_version.as_ref()
        {
            errors.push(format!(
                    "{}: update conflict: {} has resourceVersion {}, not {given}: get it again and retry",
                    input.place(i),
                    r.key(),
                    cur.metadata().resource_version.clone().unwrap_or_default()
                ));
        }
        if let Err(e) = client.check_cluster_rules(r, resources) {
            errors.push(format!("{}: {e}", input.place(i)));
        }
        batch.push(r.clone());
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
