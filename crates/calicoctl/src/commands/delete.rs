//! `calicoctl delete (-f FILE | KIND NAME...)`.

use std::path::PathBuf;

use anyhow::bail;
use calico_api::ResourceKey;
use calico_datastore::ClientError;
use clap::Args;

use super::{key, parse_kind};
use crate::input::read_resources;

/// Arguments of delete.
#[derive(Args)]
pub struct DeleteArgs {
    /// Kind, then one or more names.
    args: Vec<String>,
    /// File of resources to delete (`-` for stdin).
    #[arg(short = 'f', long = "filename")]
    file: Option<String>,
    /// Namespace of namespaced resources.
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// Succeed for resources that do not exist.
    #[arg(long)]
    skip_not_exists: bool,
}

/// Runs the command.
pub fn run(config: Option<&PathBuf>, a: DeleteArgs) -> anyhow::Result<()> {
    let ns = a.namespace.as_deref();
    let targets: Vec<(ResourceKey, Option<String>)> = match (&a.file, a.args.as_slice()) {
        (Some(f), []) => read_resources(f)?
            .resources
            .into_iter()
            .map(|mut r| {
                r.default_namespace(ns.unwrap_or("default"));
                let rv = r.metadata().resource_version.clone();
                (r.key(), rv)
            })
            .collect(),
        (Some(_), _) => bail!("give either -f FILE or KIND NAME..., not both"),
        (None, [kind, names @ ..]) if !names.is_empty() => {
            let kind = parse_kind(kind)?;
            names
                .iter()
                .map(|n| key(kind, n, ns).map(|k| (k, None)))
                .collect::<anyhow::Result<_>>()?
        }
        (None, [_]) => bail!("give the name of the resource to delete: calicoctl delete KIND NAME"),
        (None, _) => bail!("give -f FILE or KIND NAME: calicoctl delete KIND NAME"),
    };
    let client = crate::connect(config)?;
    let label = match targets.first() {
        Some((f, _)) if targets.iter().all(|(k, _)| k.kind == f.kind) => format!("'{}' ", f.kind),
        _ => String::new(),
    };
    let mut deleted = 0;
    for (i, (k, rv)) in targets.iter().enumerate() {
        match client.delete(k, rv.as_deref()) {
            Ok(_) => deleted += 1,
            Err(ClientError::NotFound(_)) if a.skip_not_exists => deleted += 1,
            Err(e) if i == 0 => bail!("Failed to delete {label}resource: [{e}]"),
            Err(e) => bail!(
                "Partial success: deleted the first {i} out of {} {label}resources:\nHit error: {e}",
                targets.len()
            ),
        }
    }
    println!("Successfully deleted {deleted} {label}resource(s)");
    Ok(())
}
