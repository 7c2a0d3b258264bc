//! `calicoctl label KIND NAME key=value [--overwrite]` and `--remove key`.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

use super::{key, parse_kind};

/// Arguments of label.
#[derive(Args)]
pub struct LabelArgs {
    /// Kind.
    kind: String,
    /// Name.
    name: String,
    /// `key=value` to set.
    label: Option<String>,
    /// Key of a label to remove.
    #[arg(long)]
    remove: Option<String>,
    /// Replace an existing value.
    #[arg(long)]
    overwrite: bool,
    /// Namespace of namespaced resources.
    #[arg(short = 'n', long)]
    namespace: Option<String>,
}

/// Runs the command.
pub fn run(config: Option<&PathBuf>, a: LabelArgs) -> anyhow::Result<()> {
    let kind = parse_kind(&a.kind)?;
    let k = key(kind, &a.name, a.namespace.as_deref())?;
    let client = crate::connect(config)?;
    match (&a.label, &a.remove) {
        (Some(l), None) => {
            let Some((lk, lv)) = l.split_once('=') else {
                bail!("label {l:?} must be key=value")
            };
            calico_api::validate::label_key(lk).map_err(anyhow::Error::msg)?;
            calico_api::validate::label_value(lv).map_err(anyhow::Error::msg)?;
            let mut r = client.get(&k)?;
            match r.metadata().labels.get(lk) {
                Some(v) if v == lv => {
                    println!("Successfully set label {lk} on {}", label_target(&k));
                    return Ok(());
                }
                Some(_) if !a.overwrite => {
                    bail!(
                        "failed to update label of resource {}: key {lk} is already present: use --overwrite to change it",
                        label_target(&k)
                    )
                }
                _ => {}
            }
            r.metadata_mut()
                .labels
                .insert(lk.to_string(), lv.to_string());
            client.update(r)?;
            println!("Successfully set label {lk} on {}", label_target(&k));
        }
        (None, Some(rk)) => {
            let mut r = client.get(&k)?;
            if r.metadata_mut().labels.remove(rk).is_none() {
                bail!(
                    "cannot remove label of resource {}: key {rk} is not present",
                    label_target(&k)
                );
            }
            client.update(r)?;
            println!("Successfully removed label {rk} from {}", label_target(&k));
        }
        _ => bail!("give either key=value or --remove key"),
    }
    Ok(())
}

fn label_target(k: &calico_api::ResourceKey) -> String {
    format!("{} {}", k.kind.name().to_lowercase(), k.name)
}
