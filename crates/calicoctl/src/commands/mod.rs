//! One module per calicoctl subcommand.

pub mod datastore;
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
use calico_api::resources::K8S_POLICY_NAME_PREFIX;
use calico_api::{Kind, ResourceKey};

/// Names Calico's calicoctl takes (its `resourcemgr` tables) that
/// [`Kind::from_cli`] does not.
const CALICO_ALIASES: &[(&str, Kind)] = &[
    ("reservation", Kind::IPReservation),
    ("reservations", Kind::IPReservation),
    ("gnetsets", Kind::GlobalNetworkSet),
];

/// Parses a kind as calicoctl takes it (plural, singular or short name).
pub fn parse_kind(word: &str) -> anyhow::Result<Kind> {
    let lower = word.to_ascii_lowercase();
    let alias = CALICO_ALIASES
        .iter()
        .find(|(a, _)| *a == lower)
        .map(|(_, k)| *k);
    match Kind::from_cli(word).or(alias) {
        Some(k) => Ok(k),
        None if matches!(
            lower.as_str(),
            "caliconodestatus" | "caliconodestatuses" | "nodestatus" | "nodestatuses"
        ) =>
        {
            bail!(
                "CalicoNodeStatus is not kept by calico-rs: use `calicoctl node status` on the node"
            )
        }
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
    if let Some(ns) = &namespace {
        calico_api::validate::dns1123_label(ns)
            .map_err(anyhow::Error::msg)
            .context("invalid namespace")?;
    }
    Ok(ResourceKey {
        kind,
        namespace,
        name: name.to_string(),
    })
}

/// Calico's calicoctl refuses to create, change or delete a Calico
/// NetworkPolicy named `knp.default.<name>`: that name is the converted
/// Kubernetes NetworkPolicy `<name>`, managed as a Kubernetes policy.
pub fn refuse_converted_policy(key: &ResourceKey, operation: &str) -> Result<(), String> {
    match key.name.strip_prefix(K8S_POLICY_NAME_PREFIX) {
        Some(k8s_name) if key.kind == Kind::NetworkPolicy => Err(format!(
            "operation {operation} is not supported on {key}: kubernetes network policies must be managed through the kubernetes API: {operation} the networking.k8s.io/v1 NetworkPolicy {k8s_name:?} instead"
        )),
        _ => Ok(()),
    }
}
