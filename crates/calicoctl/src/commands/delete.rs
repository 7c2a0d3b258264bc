//! `calicoctl delete (-f FILE | KIND NAME...)`: Calico resources, and the
//! Kubernetes NetworkPolicies of a file; never a Calico NetworkPolicy named
//! `knp.default.*` (as Calico).

use std::path::PathBuf;

use anyhow::bail;
use calico_api::DocumentKey;
use calico_datastore::ClientError;
use clap::Args;

use super::{key, parse_kind, refuse_converted_policy};
use crate::input::{kind_label, read_resources};

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
    let targets: Vec<(DocumentKey, Option<String>)> = match (&a.file, a.args.as_slice()) {
        (Some(f), []) => read_resources(f)?
            .resources
            .iter()
            .map(|p| {
                let mut d = p.unpack()?;
                d.default_namespace(ns.unwrap_or("default"));
                let rv = d.metadata().resource_version.clone();
                Ok((d.key(), rv))
            })
            .collect::<anyhow::Result<_>>()?,
        (Some(_), _) => bail!("give either -f FILE or KIND NAME..., not both"),
        (None, [kind, names @ ..]) if !names.is_empty() => {
            let kind = parse_kind(kind)?;
            names
                .iter()
                .map(|n| key(kind, n, ns).map(|k| (k.into(), None)))
                .collect::<anyhow::Result<_>>()?
        }
        (None, [_]) => bail!("give the name of the resource to delete: calicoctl delete KIND NAME"),
        (None, _) => bail!("give -f FILE or KIND NAME: calicoctl delete KIND NAME"),
    };
    let label = kind_label(targets.iter().map(|(k, _)| k.kind_name()));
    // Refused names are refused before anything is deleted.
    for (k, _) in &targets {
        if let DocumentKey::Calico(k) = k {
            refuse_converted_policy(k, "delete")
                .map_err(|e| anyhow::anyhow!("Failed to delete {label}resource: [{e}]"))?;
        }
    }
    let client = crate::connect(config)?;
    let mut deleted = 0;
    for (i, (k, rv)) in targets.iter().enumerate() {
        match client.delete_document(k, rv.as_deref()) {
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
