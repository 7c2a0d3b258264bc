//! `calicoctl get KIND [NAME...] | -f FILE|DIR [-R]` with `-o ps|wide|yaml|
//! json|custom-columns=…|go-template=…` and `-n NS | -A`.
//!
//! NetworkPolicies include, as Calico shows them, the Calico policy that
//! enforces each stored Kubernetes NetworkPolicy (`knp.default.<name>`,
//! converted by `calico_policy::k8s::convert`); those are read-only here.
//!
//! Tables have Calico's headings per kind ([`table`]); NAMESPACE comes first
//! for namespaced kinds with `-n` or `-A`, as in Calico. `-f` shows the
//! resources a file names (as stored), one table per run of one kind. The
//! `custom-columns` and `go-template` subsets are in [`crate::template`].

use std::path::PathBuf;

use anyhow::{Context, bail};
use calico_api::resources::K8S_POLICY_NAME_PREFIX;
use calico_api::{
    Document, DocumentKey, Kind, Resource, ResourceKey, encode_json, encode_yaml, k8s,
    to_output_value,
};
use calico_datastore::{Client, ClientError};
use clap::Args;

use super::{key, parse_kind};
use crate::table;
use crate::template::{self, Column, Template};

/// Arguments of get.
#[derive(Args)]
pub struct GetArgs {
    /// Kind (plural, singular or short name), then names (all when none).
    args: Vec<String>,
    /// Show the resources named in this file or directory (`-` for stdin).
    #[arg(short = 'f', long = "filename")]
    file: Option<String>,
    /// Output format: ps (table), wide, yaml, json, custom-columns=COL,...
    /// or go-template=TEXT.
    #[arg(short = 'o', long, default_value = "ps")]
    output: String,
    /// Namespace of namespaced resources (default `default`).
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// All namespaces.
    #[arg(short = 'A', long)]
    all_namespaces: bool,
}

/// How to print.
enum Output {
    Table { wide: bool },
    Yaml,
    Json,
    Columns(Vec<Column>),
    Template(Template),
}

fn output(o: &str) -> anyhow::Result<Output> {
    Ok(match o.split_once('=') {
        None => match o {
            "ps" => Output::Table { wide: false },
            "wide" => Output::Table { wide: true },
            "yaml" | "yml" => Output::Yaml,
            "json" => Output::Json,
            "custom-columns" | "go-template" => {
                bail!("give a value: -o {o}=...")
            }
            _ => bail!(
                "output format {o:?} is not supported: use ps, wide, yaml, json, custom-columns=... or go-template=..."
            ),
        },
        Some(("custom-columns", cols)) => Output::Columns(template::parse_columns(cols)?),
        Some(("go-template", text)) => Output::Template(Template::parse(text)?),
        Some((k, _)) => bail!(
            "output format {k:?} is not supported: use ps, wide, yaml, json, custom-columns=... or go-template=..."
        ),
    })
}

/// Runs the command.
pub fn run(config: Option<&PathBuf>, a: GetArgs) -> anyhow::Result<()> {
    let out = output(&a.output)?;
    if a.all_namespaces && a.namespace.is_some() {
        bail!("give either --namespace or --all-namespaces, not both");
    }
    let ns = if a.all_namespaces {
        None
    } else {
        Some(a.namespace.as_deref().unwrap_or("default"))
    };
    let (resources, kind, single, client) = match (&a.file, a.args.as_slice()) {
        (Some(_), [_, ..]) => bail!("give either -f FILE or KIND [NAME...], not both"),
        (Some(f), []) => {
            let input = crate::input::read_resources(f)?;
            let client = crate::connect(config)?;
            let mut list = Vec::new();
            for p in &input.resources {
                let mut d = p.unpack()?;
                d.default_namespace(a.namespace.as_deref().unwrap_or("default"));
                let k = match d.key() {
                    DocumentKey::Calico(k) => k,
                    DocumentKey::KubernetesNetworkPolicy { namespace, name } => ResourceKey {
                        kind: Kind::NetworkPolicy,
                        namespace: Some(namespace),
                        name: format!("{K8S_POLICY_NAME_PREFIX}{name}"),
                    },
                };
                list.push(get_one(&client, &k).with_context(|| format!("{f}: {k}"))?);
            }
            let single = list.len() == 1;
            let kind = list.first().map(Resource::kind).unwrap_or(Kind::IPPool);
            (list, kind, single, client)
        }
        (None, []) => bail!("give the kind of resource: calicoctl get KIND [NAME...] or -f FILE"),
        (None, [kind, names @ ..]) => {
            let kind = parse_kind(kind)?;
            if a.all_namespaces && !names.is_empty() {
                bail!("names cannot be given with --all-namespaces");
            }
            let client = crate::connect(config)?;
            let list = if names.is_empty() {
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
                names
                    .iter()
                    .map(|n| get_one(&client, &key(kind, n, ns)?))
                    .collect::<anyhow::Result<_>>()?
            };
            (list, kind, names.len() == 1, client)
        }
    };
    let with_ns = a.all_namespaces || a.namespace.is_some();
    let globals = globals(&client, &resources);
    print!(
        "{}",
        render(&out, &resources, kind, single, with_ns, &globals)?
    );
    Ok(())
}

/// What the tables of `resources` show from elsewhere: the cluster's AS
/// number for nodes (read only when nodes are shown; `unknown` when it
/// cannot be read, as Calico).
fn globals(client: &Client, resources: &[Resource]) -> table::Globals {
    let mut g = table::Globals::default();
    if resources.iter().any(|r| r.kind() == Kind::Node) {
        let k = ResourceKey {
            kind: Kind::BGPConfiguration,
            namespace: None,
            name: "default".into(),
        };
        match client.get(&k) {
            Ok(Resource::BGPConfiguration(c)) => g.default_as = c.spec.as_number().to_string(),
            Ok(_) | Err(ClientError::NotFound(_)) => {}
            Err(_) => g.default_as = "unknown".into(),
        }
    }
    g
}

/// The text `get` prints: nothing is printed when any part fails.
fn render(
    out: &Output,
    resources: &[Resource],
    kind: Kind,
    single: bool,
    with_ns: bool,
    g: &table::Globals,
) -> anyhow::Result<String> {
    Ok(match out {
        Output::Yaml => encode_yaml(&to_output_value(resources, !single)),
        Output::Json => encode_json(&to_output_value(resources, !single)),
        Output::Template(t) => t.render(&to_output_value(resources, !single))?,
        Output::Table { wide } => {
            if resources.is_empty() {
                let mut h = table::columns(kind, *wide);
                if with_ns && kind.namespaced() {
                    h.insert(0, "NAMESPACE");
                }
                return Ok(table::render(&h, &[]));
            }
            // One table per run of one kind (`-f` may mix kinds).
            let mut text = Vec::new();
            for run in resources.chunk_by(|a, b| a.kind() == b.kind()) {
                let (h, rows) = table::rows(run, *wide, with_ns, g);
                text.push(table::render(&h, &rows));
            }
            text.join("\n")
        }
        Output::Columns(cols) => {
            let mut text = Vec::new();
            let runs: Vec<&[Resource]> = if resources.is_empty() {
                vec![&[]]
            } else {
                resources.chunk_by(|a, b| a.kind() == b.kind()).collect()
            };
            for run in runs {
                let k = run.first().map(Resource::kind).unwrap_or(kind);
                for c in cols {
                    if let Column::Heading(h) = c
                        && !table::known_headings(k).contains(&h.as_str())
                    {
                        bail!(
                            "unknown heading {h}, valid values are: {} (or HEADING:.path)",
                            table::known_headings(k).join(", ")
                        );
                    }
                }
                let headings: Vec<&str> = cols.iter().map(Column::heading).collect();
                let rows: Vec<Vec<String>> = run
                    .iter()
                    .map(|r| {
                        let json = r.to_json();
                        cols.iter()
                            .map(|c| match c {
                                Column::Heading(h) => {
                                    table::heading_value(r, h, g).unwrap_or_default()
                                }
                                Column::Path(_, p) => match template::lookup(&json, p) {
                                    None | Some(serde_json::Value::Null) => String::new(),
                                    v => template::show(v),
                                },
                            })
                            .collect()
                    })
                    .collect();
                text.push(table::render(&headings, &rows));
            }
            text.join("\n")
        }
    })
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
