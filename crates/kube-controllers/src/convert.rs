//! Kubernetes objects → Calico documents, without I/O.
//!
//! Invariants (facts from Calico's libcalico-go `conversion` package):
//! - a Namespace `<ns>` is the Profile `kns.<ns>`, allowing all in and out,
//!   with `labelsToApply` `pcns.<key>=<value>` for each namespace label plus
//!   `pcns.projectcalico.org/name=<ns>`;
//! - a ServiceAccount `<sa>` in `<ns>` is the Profile `ksa.<ns>.<sa>` with
//!   `pcsa.<key>=<value>` and `pcsa.projectcalico.org/name=<sa>`;
//! - a pod's WorkloadEndpoint labels are the pod's labels plus the labels
//!   Calico's CNI plugin adds (`projectcalico.org/namespace`,
//!   `projectcalico.org/orchestrator`, `projectcalico.org/serviceaccount`);
//!   nothing else of the endpoint is touched;
//! - a mirrored NetworkPolicy keeps only name, namespace, labels, annotations
//!   and spec (server-set metadata is not the policy).

use std::collections::BTreeMap;

use calico_api::k8s;
use calico_api::meta::Object;
use calico_api::resources::{ProfileSpec, Rule};
use calico_api::{ObjectMeta, Resource};

/// Profile name prefix of namespaces.
pub const NAMESPACE_PROFILE_PREFIX: &str = "kns.";
/// Profile name prefix of service accounts.
pub const SERVICE_ACCOUNT_PROFILE_PREFIX: &str = "ksa.";
/// Label prefix of namespace labels applied to endpoints.
pub const NAMESPACE_LABEL_PREFIX: &str = "pcns.";
/// Label prefix of service account labels applied to endpoints.
pub const SERVICE_ACCOUNT_LABEL_PREFIX: &str = "pcsa.";
/// The label that carries an object's own name.
pub const NAME_LABEL: &str = "projectcalico.org/name";
/// Endpoint label: the pod's namespace.
pub const LABEL_NAMESPACE: &str = "projectcalico.org/namespace";
/// Endpoint label: the orchestrator.
pub const LABEL_ORCHESTRATOR: &str = "projectcalico.org/orchestrator";
/// Endpoint label: the pod's service account.
pub const LABEL_SERVICE_ACCOUNT: &str = "projectcalico.org/serviceaccount";

/// The profile name of namespace `ns`.
pub fn namespace_profile_name(ns: &str) -> String {
    format!("{NAMESPACE_PROFILE_PREFIX}{ns}")
}

/// The profile name of service account `sa` in `ns`.
pub fn service_account_profile_name(ns: &str, sa: &str) -> String {
    format!("{SERVICE_ACCOUNT_PROFILE_PREFIX}{ns}.{sa}")
}

fn allow_all_profile(name: String, labels_to_apply: BTreeMap<String, String>) -> Resource {
    let allow = || Rule {
        action: "Allow".into(),
        ..Rule::default()
    };
    Resource::Profile(Object {
        metadata: ObjectMeta {
            name,
            ..ObjectMeta::default()
        },
        spec: ProfileSpec {
            ingress: vec![allow()],
            egress: vec![allow()],
            labels_to_apply,
        },
        status: None,
    })
}

fn prefixed(
    prefix: &str,
    labels: &BTreeMap<String, String>,
    name: &str,
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (format!("{prefix}{k}"), v.clone()))
        .collect();
    out.insert(format!("{prefix}{NAME_LABEL}"), name.to_string());
    out
}

/// The Profile Calico keeps for Namespace `ns` with `labels`.
pub fn namespace_profile(ns: &str, labels: &BTreeMap<String, String>) -> Resource {
    allow_all_profile(
        namespace_profile_name(ns),
        prefixed(NAMESPACE_LABEL_PREFIX, labels, ns),
    )
}

/// The Profile Calico keeps for ServiceAccount `sa` in `ns` with `labels`.
pub fn service_account_profile(ns: &str, sa: &str, labels: &BTreeMap<String, String>) -> Resource {
    allow_all_profile(
        service_account_profile_name(ns, sa),
        prefixed(SERVICE_ACCOUNT_LABEL_PREFIX, labels, sa),
    )
}

/// What the workloadendpoint controller knows of a pod.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pod {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The pod's labels.
    pub labels: BTreeMap<String, String>,
    /// `spec.serviceAccountName`, when set.
    pub service_account: Option<String>,
    /// `spec.nodeName`, once scheduled.
    pub node: Option<String>,
}

/// The start of the names of `pod`'s WorkloadEndpoints on `node`, as the
/// calico plugin names them (`<node>-k8s-<pod>-<endpoint>`, each part's
/// dashes doubled). Another pod's names may share it (`web` and `web-1`):
/// the caller still matches `spec.pod`.
pub fn endpoint_name_prefix(node: &str, pod: &str) -> String {
    let e = |s: &str| s.replace('-', "--");
    format!("{}-k8s-{}-", e(node), e(pod))
}

/// The labels a WorkloadEndpoint of `pod` carries: the pod's labels and the
/// three Calico adds. The orchestrator label keeps the endpoint's current
/// value (`k8s` when it has none).
pub fn endpoint_labels(pod: &Pod, current: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut l = pod.labels.clone();
    l.insert(LABEL_NAMESPACE.into(), pod.namespace.clone());
    let orch = current
        .get(LABEL_ORCHESTRATOR)
        .cloned()
        .unwrap_or_else(|| "k8s".into());
    l.insert(LABEL_ORCHESTRATOR.into(), orch);
    if let Some(sa) = &pod.service_account {
        l.insert(LABEL_SERVICE_ACCOUNT.into(), sa.clone());
    }
    l
}

/// The endpoint with its labels set for `pod`, or `None` when they are
/// already right (nothing to write). Only `metadata.labels` changes.
pub fn relabel_endpoint(wep: &Resource, pod: &Pod) -> Option<Resource> {
    let Resource::WorkloadEndpoint(w) = wep else {
        return None;
    };
    let want = endpoint_labels(pod, &w.metadata.labels);
    if want == w.metadata.labels {
        return None;
    }
    let mut out = w.clone();
    out.metadata.labels = want;
    Some(Resource::WorkloadEndpoint(out))
}

/// The pod (namespace, name) a WorkloadEndpoint belongs to, if it is a
/// Kubernetes pod's.
pub fn endpoint_pod(wep: &Resource) -> Option<(String, String)> {
    let Resource::WorkloadEndpoint(w) = wep else {
        return None;
    };
    if w.spec.pod.is_empty() || w.spec.orchestrator != "k8s" {
        return None;
    }
    let ns = w.metadata.namespace.clone().unwrap_or_default();
    Some((ns, w.spec.pod.clone()))
}

/// Errors turning an API object into a stored document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// The NetworkPolicy is not one Calico can store.
    #[error("networkpolicy {name}: {reason}")]
    NetworkPolicy {
        /// `<namespace>/<name>` as far as known.
        name: String,
        /// Why.
        reason: String,
    },
}

/// The stored form of a `networking.k8s.io/v1` NetworkPolicy as the API
/// serves it (JSON): server-set metadata (uid, resourceVersion, generation,
/// managedFields, creationTimestamp) and status are dropped.
pub fn network_policy(api: &serde_json::Value) -> Result<k8s::NetworkPolicy, ConvertError> {
    let md = api.get("metadata").cloned().unwrap_or_default();
    let name = format!(
        "{}/{}",
        md.get("namespace").and_then(|v| v.as_str()).unwrap_or(""),
        md.get("name").and_then(|v| v.as_str()).unwrap_or("")
    );
    let mut meta = serde_json::Map::new();
    for k in ["name", "namespace", "labels", "annotations"] {
        if let Some(v) = md.get(k) {
            meta.insert(k.into(), v.clone());
        }
    }
    let v = serde_json::json!({
        "apiVersion": k8s::NETWORKING_API_VERSION,
        "kind": k8s::NETWORK_POLICY_KIND,
        "metadata": meta,
        "spec": api.get("spec").cloned().unwrap_or_else(|| serde_json::json!({})),
    });
    let np = k8s::NetworkPolicy::from_json(v).map_err(|reason| ConvertError::NetworkPolicy {
        name: name.clone(),
        reason,
    })?;
    np.validate().map_err(|e| ConvertError::NetworkPolicy {
        name,
        reason: e.to_string(),
    })?;
    Ok(np)
}

#[cfg(test)]
mod tests;
