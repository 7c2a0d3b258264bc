//! `calicoctl label KIND NAME key=value [--overwrite]` and
//! `calicoctl label KIND NAME key --remove`, as Calico's calicoctl: `-n` names
//! the namespace of namespaced kinds (WorkloadEndpoint, NetworkPolicy,
//! NetworkSet; `default` when absent); setting a key that is present needs
//! `--overwrite` (unless the value is the same); removing a key that is absent
//! is an error; the write carries the resourceVersion read, so a concurrent
//! change is refused instead of overwritten.

use std::path::PathBuf;

use anyhow::{anyhow, bail};
use clap::Args;

use super::{key, parse_kind, refuse_converted_policy};

/// Arguments of label.
#[derive(Args)]
pub struct LabelArgs {
    /// Kind.
    kind: String,
    /// Name.
    name: String,
    /// `key=value` to set, or the key to remove with `--remove`.
    label: Option<String>,
    /// Remove the label (`calicoctl label KIND NAME key --remove`; `--remove key` also works).
    #[arg(long)]
    remove: bool,
    /// Replace the value of a key that is already present.
    #[arg(long, conflicts_with = "remove")]
    overwrite: bool,
    /// Namespace of namespaced resources (default `default`).
    #[arg(short = 'n', long)]
    namespace: Option<String>,
}

/// Runs the command.
pub fn run(config: Option<&PathBuf>, a: LabelArgs) -> anyhow::Result<()> {
    let Some(label) = &a.label else {
        bail!("give key=value to set a label, or key --remove to remove one")
    };
    let (lk, lv) = if a.remove {
        (label.as_str(), None)
    } else {
        match label.split_once('=') {
            Some((k, v)) if !v.contains('=') => (k, Some(v)),
            _ => bail!("invalid label {label}: use key=value"),
        }
    };
    calico_api::validate::label_key(lk).map_err(anyhow::Error::msg)?;
    if let Some(v) = lv {
        calico_api::validate::label_value(v).map_err(anyhow::Error::msg)?;
    }
    let kind = parse_kind(&a.kind)?;
    let k = key(kind, &a.name, a.namespace.as_deref())?;
    refuse_converted_policy(&k, "label").map_err(anyhow::Error::msg)?;
    // Messages name the resource as the user did, as Calico's do.
    let target = format!("{} {}", a.kind, a.name);
    let client = crate::connect(config)?;
    let mut r = client
        .get(&k)
        .map_err(|e| anyhow!("failed to get {target}, error {e}"))?;
    let labels = &mut r.metadata_mut().labels;
    let done = match lv {
        None => {
            if labels.remove(lk).is_none() {
                bail!("cannot remove label of {target}, key {lk} does not exist");
            }
            format!("Successfully removed label {lk} from {target}")
        }
        Some(v) => {
            let overwritten = match labels.get(lk) {
                Some(old) if old != v && !a.overwrite => bail!(
                    "failed to update label of {target}, key {lk} is already present. please use '--overwrite' to set a new value."
                ),
                Some(_) => true,
                None => false,
            };
            labels.insert(lk.to_string(), v.to_string());
            let verb = if overwritten { "updated" } else { "set" };
            format!("Successfully {verb} label {lk} on {target}")
        }
    };
    client
        .update(r)
        .map_err(|e| anyhow!("failed to update {target}, label not changed: {e}"))?;
    println!("{done}");
    Ok(())
}
