//! `calicoctl get KIND [NAME...] [-o ps|wide|yaml|json] [-n NS | -A]`.
//!
//! NetworkPolicies include, as Calico shows them, the Calico policy that
//! enforces each stored Kubernetes NetworkPolicy (`knp.default.<name>`,
//! converted by `calico_policy::k8s::convert`); those are read-only here.

use std::path::PathBuf;

use anyhow::bail;
use calico_api::resources::K8S_POLICY_NAME_PREFIX;
use calico_api::{
    Document, DocumentKey, Kind, Resource, ResourceKey, encode_json, encode_yaml, k8s,
    to_output_value,
};
use calico_datastore::{Client, ClientError};
use clap::Args;

use super::{key, parse_kind};
use crate::table;

/// Arguments of get.
#[derive(Args)]
pub struct GetArgs {
    /// Kind (plural, singular or short name).
    kind: String,
    /// Names to show (all when none).
    names: Vec<String>,
    /// Output format: ps (table), wide, yaml or json.
    #[arg(short = 'o', long, default_value = "ps")]
    output: String,
    /// Namespace of namespaced resources (default `default`).
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// All namespaces.
    #[arg(short = 'A', long)]
    all_namespaces: bool,
}

/// Runs the command.
pub fn run(config: Option<&PathBuf>, a: GetArgs) -> anyhow::Result<()> {
    let kind = parse_kind(&a.kind)?;
    if !matches!(a.output.as_str(), "ps" | "wide" | "yaml" | "json") {
        bail!(
            "output format {:?} is not supported: use ps, wide, yaml or json",
            a.output
        );
    }
    if a.all_namespaces && a.namespace.is_some() {
        bail!("give either --namespace or --all-namespaces, not both");
    }
    if a.all_namespaces && !a.names.is_empty() {
        bail!("names cannot be given with --all-namespaces");
    }
    let client = crate::connect(config)?;
    let ns = if a.all_namespaces {
        None
    } else {
        Some(a.namespace.as_deref().unwrap_or("default"))
    };
    let resources: Vec<Resource> = if a.names.is_empty() {
        let mut list = client.list(kind, ns)?.0;
        if kind == Kind::NetworkPolicy {
            let (knps, _) = client.list_k8s_network_policies(ns)?;
            list.extend(knps.iter().map(converted));
            list.sort_by_key(Resource::key);
        }
        if kind == Kind::Tier {
            // As Calico's `get tiers`: by order, tiers without one last.
            list.sort_by(|a, b| tier_order(a).total_cmp(&tier_order(b)));
        }
        list
    } else {
        a.names
            .iter()
            .map(|n| get_one(&client, &key(kind, n, ns)?))
            .collect::<anyhow::Result<_>>()?
    };
    let single = a.names.len() == 1;
    match a.output.as_str() {
        "yaml" => print!("{}", encode_yaml(&to_output_value(&resources, !single))),
        "json" => print!("{}", encode_json(&to_output_value(&resources, !single))),
        fmt => {
            let (h, rows) = table::rows(&resources, fmt == "wide", a.all_namespaces);
            let h = if resources.is_empty() {
                table_headings(kind, fmt == "wide", a.all_namespaces)
            } else {
                h
            };
            print!("{}", table::render(&h, &rows));
        }
    }
    Ok(())
}

/// One resource; `knp.default.<name>` is the converted Kubernetes policy `<name>`.
fn get_one(client: &Client, k: &ResourceKey) -> anyhow::Result<Resource> {
    let k8s_name = k.name.strip_prefix(K8S_POLICY_NAME_PREFIX);
    let (Kind::NetworkPolicy, Some(name), Some(namespace)) = (k.kind, k8s_name, &k.namespace)
    else {
        return Ok(client.get(k)?);
    };
    let knp = DocumentKey::KubernetesNetworkPolicy {
        namespace: namespace.clone(),
        name: name.to_string(),
    };
    match client.get_document(&knp) {
        Ok(Document::KubernetesNetworkPolicy(np)) => Ok(converted(&np)),
        Ok(_) | Err(ClientError::NotFound(_)) => {
            Err(ClientError::NotFound(k.clone().into()).into())
        }
        Err(e) => Err(e.into()),
    }
}

fn tier_order(r: &Resource) -> f64 {
    match r {
        Resource::Tier(t) => t.spec.order.unwrap_or(f64::INFINITY),
        _ => f64::INFINITY,
    }
}

/// The Calico NetworkPolicy that enforces a Kubernetes one, as Calico shows it.
fn converted(np: &k8s::NetworkPolicy) -> Resource {
    Resource::NetworkPolicy(calico_policy::k8s::convert(np).0)
}

fn table_headings(kind: calico_api::Kind, wide: bool, all_ns: bool) -> Vec<&'static str> {
    let probe = Resource::empty(kind, "x");
    table::rows(std::slice::from_ref(&probe), wide, all_ns).0
}
