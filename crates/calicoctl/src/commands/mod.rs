//! One module per calicoctl subcommand.

pub mod delete;
pub mod get;
pub mod ipam;
pub mod label;
pub mod node;
pub mod patch;
pub mod validate;
pub mod version;
pub mod write;

use anyhow::{Context, bail};
use calico_api::{Kind, ResourceKey};

/// Parses a kind as calicoctl takes it (plural, singular or short name).
pub fn parse_kind(word: &str) -> anyhow::Result<Kind> {
    match Kind::from_cli(word) {
        Some(k) => Ok(k),
        None => {
            let known: Vec<&str> = Kind::ALL.iter().map(|k| k.plural()).collect();
            bail!(
                "resource type {word:?} is not known; use one of: {}",
                known.join(", ")
            )
        }
    }
}

/// The key of `name` of `kind`, in `namespace` (default `default`) for namespaced kinds.
pub fn key(kind: Kind, name: &str, namespace: Option<&str>) -> anyhow::Result<ResourceKey> {
    calico_api::validate::dns1123_subdomain(name)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("invalid name for {kind}"))?;
    let namespace = kind
        .namespaced()
        .then(|| namespace.unwrap_or("default").to_string());
    Ok(ResourceKey {
        kind,
        namespace,
        name: name.to_string(),
    })
}
