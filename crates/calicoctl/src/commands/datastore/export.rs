//! `calicoctl datastore migrate export`: the datastore in Calico's export
//! format, written to standard output.
//!
//! ```text
//! apiVersion: projectcalico.org/v3      one <Kind>List per kind, in Calico's order
//! items: [...]                          (ippools, bgppeers, tiers, ... bgpfilters),
//! kind: IPPoolList                      then the kinds calico-rs stores that Calico
//! metadata: {}                          keeps in Kubernetes (profiles, workload
//! ---                                   endpoints, networking.k8s.io NetworkPolicies)
//! ...
//! ===
//! { ClusterInformation as JSON }
//! ===
//! { "block_affinities": [{"Key", "Value", "TTL"}], "blocks": [...], "handles": [...], "config": {...} }
//! ```
//!
//! As Calico's: the source must be locked (nothing changes while it is
//! read); `uid`, `resourceVersion` and `creationTimestamp` are left out of
//! the resources; the IPAM entries carry their etcd key and stored value;
//! the IPAMConfiguration is the IPAM `config` entry
//! (`/calico/ipam/v2/config`, Calico's `strict_affinity`,
//! `auto_allocate_blocks`, `maxBlocksPerHost`). Calico renames nodes to
//! their Kubernetes names on the way to a Kubernetes datastore; calico-rs
//! has none, so names are kept.

use anyhow::{Context, bail};
use calico_api::{Document, Kind, Resource, encode_yaml};
use calico_datastore::Client;
use calico_datastore::keys::IPAM_ROOT;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Calico's export order (`allV3Resources`): tiers before policies, nodes
/// before what names nodes.
const CALICO_ORDER: &[&str] = &[
    "ippools",
    "bgppeers",
    "tiers",
    "globalnetworkpolicies",
    "globalnetworksets",
    "hostendpoints",
    "networkpolicies",
    "networksets",
    "nodes",
    "bgpconfigurations",
    "felixconfigurations",
    "ipreservations",
    "bgpfilters",
];

/// Where the IPAM configuration lives in Calico's etcd layout.
pub const IPAM_CONFIG_KEY: &str = "/calico/ipam/v2/config";
/// Prefix of the block affinities.
pub const AFFINITY_PREFIX: &str = "/calico/ipam/v2/host/";
/// Prefix of the blocks.
pub const BLOCK_PREFIX: &str = "/calico/ipam/v2/assignment/";
/// Prefix of the handles.
pub const HANDLE_PREFIX: &str = "/calico/ipam/v2/handle/";

/// The kinds in the v3 section, in export order: Calico's, then the other
/// stored kinds (Profiles and WorkloadEndpoints, which Calico reads from
/// Kubernetes). The IPAMConfiguration and ClusterInformation have sections
/// of their own.
pub fn kinds() -> Vec<Kind> {
    let mut out: Vec<Kind> = CALICO_ORDER
        .iter()
        .filter_map(|p| Kind::from_cli(p))
        .collect();
    for k in Kind::ALL {
        if !out.contains(&k) && !matches!(k, Kind::IPAMConfiguration | Kind::ClusterInformation) {
            out.push(k);
        }
    }
    out
}

/// One IPAM entry as Calico's export writes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KvPair {
    /// The etcd key.
    #[serde(rename = "Key")]
    pub key: String,
    /// The stored value.
    #[serde(rename = "Value")]
    pub value: Value,
    /// Time to live in nanoseconds (0: none).
    #[serde(rename = "TTL", default)]
    pub ttl: i64,
}

/// The IPAM section (Calico's `migrateIPAM`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IpamState {
    /// Block affinities (`/calico/ipam/v2/host/...`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub block_affinities: Vec<KvPair>,
    /// Blocks (`/calico/ipam/v2/assignment/...`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<KvPair>,
    /// Handles (`/calico/ipam/v2/handle/...`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handles: Vec<KvPair>,
    /// The IPAM configuration (`/calico/ipam/v2/config`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<KvPair>,
}

/// A resource's JSON without what the datastore sets (as Calico's `--export`).
fn exported(mut v: Value) -> Value {
    if let Some(Value::Object(m)) = v.get_mut("metadata") {
        for f in ["uid", "resourceVersion", "creationTimestamp"] {
            m.remove(f);
        }
    }
    v
}

fn list_value(api_version: &str, kind: &str, items: Vec<Value>) -> Value {
    json!({
        "apiVersion": api_version,
        "items": items,
        "kind": format!("{kind}List"),
        "metadata": {},
    })
}

/// The whole export text; fails (writing nothing) unless the datastore is locked.
pub fn export(client: &Client) -> anyhow::Result<String> {
    if !super::lock::locked(client)? {
        bail!(
            "datastore is not locked: run `calicoctl datastore migrate lock` first, so that nothing changes while it is exported"
        );
    }
    let mut out = String::new();
    for kind in kinds() {
        let (list, _) = client
            .list(kind, None)
            .with_context(|| format!("cannot list {}", kind.plural()))?;
        let items = list.iter().map(|r| exported(r.to_json())).collect();
        out += &encode_yaml(&list_value(calico_api::API_VERSION, kind.name(), items));
        out += "---\n";
    }
    let (knps, _) = client
        .list_k8s_network_policies(None)
        .context("cannot list the kubernetes network policies")?;
    let items = knps
        .into_iter()
        .map(|np| exported(Document::KubernetesNetworkPolicy(np).to_json()))
        .collect();
    out += &encode_yaml(&list_value(
        calico_api::k8s::NETWORKING_API_VERSION,
        calico_api::k8s::NETWORK_POLICY_KIND,
        items,
    ));
    out += "---\n";
    out += "===\n";
    let ci = super::lock::cluster_info(client)?
        .map(|r| r.to_json())
        .unwrap_or(Value::Object(Map::new()));
    out += &serde_json::to_string_pretty(&ci).context("cannot encode the ClusterInformation")?;
    out += "\n===\n";
    let ipam = ipam_state(client)?;
    out += &serde_json::to_string_pretty(&ipam).context("cannot encode the IPAM state")?;
    out += "\n";
    Ok(out)
}

/// The IPAM state: every key under `/calico/ipam/v2/`, and the IPAMConfiguration.
pub fn ipam_state(client: &Client) -> anyhow::Result<IpamState> {
    let (kvs, _) = client
        .store()
        .list(IPAM_ROOT)
        .context("cannot list the IPAM state")?;
    let mut s = IpamState::default();
    for kv in kvs {
        let value: Value = serde_json::from_slice(&kv.value)
            .with_context(|| format!("stored IPAM value of {} is not JSON", kv.key))?;
        let pair = KvPair {
            key: kv.key.clone(),
            value,
            ttl: 0,
        };
        if kv.key.starts_with(AFFINITY_PREFIX) {
            s.block_affinities.push(pair);
        } else if kv.key.starts_with(BLOCK_PREFIX) {
            s.blocks.push(pair);
        } else if kv.key.starts_with(HANDLE_PREFIX) {
            s.handles.push(pair);
        } else if kv.key == IPAM_CONFIG_KEY {
            s.config = Some(pair);
        } else {
            bail!(
                "the IPAM key {} is of no kind calicoctl knows (blocks, affinities, handles): nothing was exported",
                kv.key
            );
        }
    }
    let key = calico_api::ResourceKey {
        kind: Kind::IPAMConfiguration,
        namespace: None,
        name: "default".into(),
    };
    match client.get(&key) {
        Ok(Resource::IPAMConfiguration(c)) => {
            // Calico's model.IPAMConfig, with Go's omitempty.
            let mut m = Map::new();
            if c.spec.strict_affinity {
                m.insert("strict_affinity".into(), Value::Bool(true));
            }
            if c.spec.auto_allocate_blocks.unwrap_or(true) {
                m.insert("auto_allocate_blocks".into(), Value::Bool(true));
            }
            if let Some(n) = c.spec.max_blocks_per_host.filter(|n| *n != 0) {
                m.insert("maxBlocksPerHost".into(), Value::from(n));
            }
            s.config = Some(KvPair {
                key: IPAM_CONFIG_KEY.into(),
                value: Value::Object(m),
                ttl: 0,
            });
        }
        Ok(_) | Err(calico_datastore::ClientError::NotFound(_)) => {}
        Err(e) => return Err(e).context("cannot read the IPAMConfiguration"),
    }
    Ok(s)
}
