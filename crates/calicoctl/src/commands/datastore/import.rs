//! `calicoctl datastore migrate import -f FILE`: loads a file written by
//! `export` into an empty datastore.
//!
//! As Calico's: the target must hold no Calico resource and no IPAM state
//! (a ClusterInformation alone is allowed: it may have been locked first);
//! the target is locked before anything is written and stays locked; the
//! cluster GUID and Calico version come from the file. Unlike Calico's,
//! the whole file is decoded and validated before the first write, and a
//! write that fails removes everything this import wrote, so a failed
//! import leaves the target as it was (empty).

use std::fmt::Write as _;

use anyhow::{Context, bail};
use calico_api::{Document, Kind, Resource, decode_numbered_documents};
use calico_datastore::client::WriteOp;
use calico_datastore::keys::document_key;
use calico_datastore::{Client, Compare, Op};
use serde_json::Value;

use super::export::{
    AFFINITY_PREFIX, BLOCK_PREFIX, HANDLE_PREFIX, IPAM_CONFIG_KEY, IpamState, KvPair,
};
use super::lock;

/// Most IPAM keys written per transaction (etcd allows 128 operations).
const TXN_CHUNK: usize = 64;

const REFORMAT: &str = "recreate it with `calicoctl datastore migrate export`";

/// Imports `text`; returns the report to print.
pub fn import(client: &Client, text: &str) -> anyhow::Result<String> {
    let parts: Vec<&str> = text.split("===\n").collect();
    let [v3, ci, ipam] = parts.as_slice() else {
        bail!(
            "the file is not a datastore export: it needs 3 sections separated by lines \"===\", it has {}: {REFORMAT}",
            parts.len()
        );
    };
    let docs = decode_resources(v3)?;
    let cluster = decode_cluster_info(ci)?;
    let (ipam_kvs, ipam_config) = decode_ipam(ipam)?;
    let mut docs = docs;
    if let Some(c) = ipam_config {
        docs.push(c.into());
    }

    check_empty(client)?;

    // Validate every document, and the rules between them, before writing.
    let mut prepared = Vec::with_capacity(docs.len());
    let mut errors = Vec::new();
    for d in docs {
        let key = d.key();
        match Client::prepare_document(d) {
            Ok(d) => prepared.push(d),
            Err(e) => errors.push(format!("{key}: {e}")),
        }
    }
    // The rules between resources look at the pools and tiers of the batch
    // (overlaps, a policy's tier); passing only those keeps a big import linear.
    let pools_and_tiers: Vec<Resource> = prepared
        .iter()
        .filter_map(|d| match d {
            Document::Calico(r) if matches!(r.kind(), Kind::IPPool | Kind::Tier) => Some(r.clone()),
            _ => None,
        })
        .collect();
    for d in &prepared {
        if let Document::Calico(r) = d
            && let Err(e) = client.check_cluster_rules(r, &pools_and_tiers)
        {
            errors.push(e.to_string());
        }
    }
    if !errors.is_empty() {
        bail!(
            "the export is not valid, nothing was imported:\n  {}",
            errors.join("\n  ")
        );
    }

    // Lock first (as Calico's), carrying the source's identity.
    let before = client
        .store()
        .get(&document_key(&lock::cluster_info_key().into()))
        .context("cannot read the ClusterInformation")?;
    let mut ci = cluster;
    if let Resource::ClusterInformation(c) = &mut ci {
        c.spec.datastore_ready = Some(false);
        c.metadata.resource_version = None;
    }
    client
        .apply(ci)
        .context("cannot lock the datastore for the import")?;

    let written_docs: Vec<String> = prepared.iter().map(|d| document_key(&d.key())).collect();
    let n_docs = prepared.len();
    if let Err((done, e)) = client.write_prepared(WriteOp::Create, prepared) {
        rollback(client, &written_docs[..done], &[], before.as_ref());
        return Err(e).context("failed to import the v3 resources; nothing was imported");
    }
    let mut written_ipam: Vec<String> = Vec::new();
    for chunk in ipam_kvs.chunks(TXN_CHUNK) {
        let compares: Vec<Compare> = chunk.iter().map(|(k, _)| Compare::absent(k)).collect();
        let ops: Vec<Op> = chunk
            .iter()
            .map(|(k, v)| Op::Put {
                key: k.clone(),
                value: v.clone(),
            })
            .collect();
        let res = client.store().txn(&compares, &ops);
        match res {
            Ok(Some(_)) => written_ipam.extend(chunk.iter().map(|(k, _)| k.clone())),
            Ok(None) => {
                rollback(client, &written_docs, &written_ipam, before.as_ref());
                bail!(
                    "failed to import the IPAM state: another writer created one of its keys during the import; nothing was imported"
                );
            }
            Err(e) => {
                rollback(client, &written_docs, &written_ipam, before.as_ref());
                return Err(e).context("failed to import the IPAM state; nothing was imported");
            }
        }
    }
    let mut report = String::new();
    let _ = writeln!(report, "Successfully applied {n_docs} resource(s)");
    let _ = writeln!(report, "Importing IPAM resources");
    let _ = writeln!(
        report,
        "Successfully applied {} IPAM resource(s)",
        ipam_kvs.len()
    );
    let _ = writeln!(
        report,
        "Datastore information successfully imported. The datastore stays locked: run `calicoctl datastore migrate unlock` when the agents and plugins should use it."
    );
    Ok(report)
}

/// The v3 section: `<Kind>List` documents (or single resources).
fn decode_resources(text: &str) -> anyhow::Result<Vec<Document>> {
    let decoded = decode_numbered_documents(text)
        .map_err(|e| anyhow::anyhow!("the resources section: {e}: {REFORMAT}"))?;
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (_, d) in decoded {
        match d {
            Ok(Document::Calico(r)) if r.kind() == Kind::ClusterInformation => errors.push(
                "a ClusterInformation belongs in the second section, not among the resources"
                    .to_string(),
            ),
            Ok(d) => out.push(d),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        bail!(
            "the resources section of the export is not valid, nothing was imported:\n  {}",
            errors.join("\n  ")
        );
    }
    Ok(out)
}

/// The ClusterInformation section (`{}` when the source had none).
fn decode_cluster_info(text: &str) -> anyhow::Result<Resource> {
    let v: Value = serde_json::from_str(text.trim()).map_err(|e| {
        anyhow::anyhow!("the ClusterInformation section is not JSON: {e}: {REFORMAT}")
    })?;
    let mut r = if v.as_object().is_some_and(|m| m.is_empty()) {
        Resource::empty(Kind::ClusterInformation, "default")
    } else {
        match calico_api::decode_value(v) {
            Ok(r @ Resource::ClusterInformation(_)) => r,
            Ok(other) => bail!(
                "the second section holds a {}, not the ClusterInformation: {REFORMAT}",
                other.kind()
            ),
            Err(e) => bail!("the ClusterInformation section: {e}"),
        }
    };
    let m = r.metadata_mut();
    m.uid = None;
    m.creation_timestamp = None;
    m.resource_version = None;
    Ok(r)
}

/// IPAM keys and their values, ready to write.
type IpamKvs = Vec<(String, Vec<u8>)>;

/// The IPAM section: the keys to write, and the IPAMConfiguration.
fn decode_ipam(text: &str) -> anyhow::Result<(IpamKvs, Option<Resource>)> {
    let s: IpamState = serde_json::from_str(text.trim())
        .map_err(|e| anyhow::anyhow!("the IPAM section is not valid: {e}: {REFORMAT}"))?;
    let mut kvs = Vec::new();
    let groups: [(&str, &str, &Vec<KvPair>); 3] = [
        ("block affinity", AFFINITY_PREFIX, &s.block_affinities),
        ("block", BLOCK_PREFIX, &s.blocks),
        ("handle", HANDLE_PREFIX, &s.handles),
    ];
    for (what, prefix, list) in groups {
        for kv in list {
            check_ipam_key(what, prefix, kv)?;
            let bytes = serde_json::to_vec(&kv.value)
                .with_context(|| format!("cannot encode the {what} {}", kv.key))?;
            kvs.push((kv.key.clone(), bytes));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some((k, _)) = kvs.iter().find(|(k, _)| !seen.insert(k.clone())) {
        bail!("the IPAM section names {k} twice: {REFORMAT}");
    }
    let config = match &s.config {
        None => None,
        Some(kv) if kv.key != IPAM_CONFIG_KEY => {
            bail!(
                "the IPAM config key is {:?}, not {IPAM_CONFIG_KEY}: {REFORMAT}",
                kv.key
            )
        }
        Some(kv) => Some(ipam_configuration(&kv.value)?),
    };
    Ok((kvs, config))
}

fn check_ipam_key(what: &str, prefix: &str, kv: &KvPair) -> anyhow::Result<()> {
    let Some(rest) = kv.key.strip_prefix(prefix).filter(|r| !r.is_empty()) else {
        bail!(
            "the {what} key {:?} does not start with {prefix}: {REFORMAT}",
            kv.key
        );
    };
    if !kv.value.is_object() {
        bail!("the value of {} is not a JSON object: {REFORMAT}", kv.key);
    }
    let block_name = match what {
        "block" => Some(rest),
        "block affinity" => rest.split_once('/').map(|(_, r)| r),
        _ => None,
    };
    if let Some(b) = block_name {
        let name = b
            .strip_prefix("ipv4/block/")
            .or_else(|| b.strip_prefix("ipv6/block/"));
        if name.and_then(calico_ipam::keys::parse_block_name).is_none() {
            bail!(
                "the {what} key {} does not name a block (…/ipv4/block/10.0.0.0-26): {REFORMAT}",
                kv.key
            );
        }
    }
    if what == "block" {
        serde_json::from_value::<calico_ipam::Block>(kv.value.clone())
            .map_err(|e| anyhow::anyhow!("the block {} is not valid: {e}", kv.key))?;
    }
    Ok(())
}

/// Calico's model.IPAMConfig as the IPAMConfiguration `default`.
fn ipam_configuration(v: &Value) -> anyhow::Result<Resource> {
    let flag = |f: &str| -> anyhow::Result<bool> {
        match v.get(f) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => bail!("the IPAM config {f} is {other}, not true or false"),
        }
    };
    let max = match v.get("maxBlocksPerHost") {
        None | Some(Value::Null) => None,
        Some(n) => Some(
            n.as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .with_context(|| {
                    format!("the IPAM config maxBlocksPerHost is {n}, not a number")
                })?,
        ),
    };
    let mut r = Resource::empty(Kind::IPAMConfiguration, "default");
    if let Resource::IPAMConfiguration(c) = &mut r {
        c.spec.strict_affinity = flag("strict_affinity")?;
        c.spec.auto_allocate_blocks = Some(flag("auto_allocate_blocks")?);
        c.spec.max_blocks_per_host = max;
    }
    Ok(r)
}

/// Refuses a target that holds anything but a ClusterInformation.
fn check_empty(client: &Client) -> anyhow::Result<()> {
    let (kvs, _) = client
        .store()
        .list("/calico/")
        .context("cannot read the target datastore")?;
    let ci = document_key(&lock::cluster_info_key().into());
    if let Some(kv) = kvs.iter().find(|kv| kv.key != ci) {
        bail!(
            "the datastore already has calico data ({}): import needs an empty datastore; use a new one (--config) or delete what is there",
            kv.key
        );
    }
    Ok(())
}

/// Removes what this import wrote and restores the ClusterInformation.
fn rollback(
    client: &Client,
    docs: &[String],
    ipam: &[String],
    ci_before: Option<&calico_datastore::KeyValue>,
) {
    let ci_key = document_key(&lock::cluster_info_key().into());
    let mut ops: Vec<Op> = docs
        .iter()
        .chain(ipam)
        .map(|k| Op::Delete { key: k.clone() })
        .collect();
    ops.push(match ci_before {
        Some(kv) => Op::Put {
            key: ci_key,
            value: kv.value.clone(),
        },
        None => Op::Delete { key: ci_key },
    });
    for chunk in ops.chunks(TXN_CHUNK) {
        if let Err(e) = client.store().txn(&[], chunk) {
            eprintln!("warning: could not undo part of the import: {e}");
        }
    }
}
