//! `calicoctl get KIND [NAME...] [-o ps|wide|yaml|json] [-n NS | -A]`.

use std::path::PathBuf;

use anyhow::bail;
use calico_api::{Resource, encode_json, encode_yaml, to_output_value};
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
        client.list(kind, ns)?.0
    } else {
        a.names
            .iter()
            .map(|n| Ok(client.get(&key(kind, n, ns)?)?))
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

fn table_headings(kind: calico_api::Kind, wide: bool, all_ns: bool) -> Vec<&'static str> {
    let probe = Resource::empty(kind, "x");
    table::rows(std::slice::from_ref(&probe), wide, all_ns).0
}
