//! What one document of a `calicoctl apply -f` file holds: a
//! `projectcalico.org/v3` resource or a Kubernetes `networking.k8s.io/v1`
//! NetworkPolicy (Calico accepts both in one file and enforces the latter as
//! the Calico NetworkPolicy `knp.default.<name>`).
//!
//! Invariant: a [`Document`]'s identity ([`DocumentKey`]) names its API group,
//! so a Kubernetes and a Calico NetworkPolicy of the same name never collide.

use std::fmt;

use serde_json::Value;

use crate::k8s;
use crate::meta::{ObjectMeta, Resource, ResourceKey};
use crate::validate::ValidationError;

/// A Calico resource or a Kubernetes NetworkPolicy.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // documents are handled one at a time
pub enum Document {
    /// A `projectcalico.org/v3` resource.
    Calico(Resource),
    /// A `networking.k8s.io/v1` NetworkPolicy.
    KubernetesNetworkPolicy(k8s::NetworkPolicy),
}

/// The identity of a [`Document`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DocumentKey {
    /// A Calico resource.
    Calico(ResourceKey),
    /// A Kubernetes NetworkPolicy.
    KubernetesNetworkPolicy {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
}

impl fmt::Display for DocumentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocumentKey::Calico(k) => k.fmt(f),
            DocumentKey::KubernetesNetworkPolicy { namespace, name } => {
                write!(f, "{}({namespace}/{name})", k8s::QUALIFIED_KIND)
            }
        }
    }
}

impl DocumentKey {
    /// `IPPool`, `NetworkPolicy`, or `NetworkPolicy.networking.k8s.io`, for messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            DocumentKey::Calico(k) => k.kind.name(),
            DocumentKey::KubernetesNetworkPolicy { .. } => k8s::QUALIFIED_KIND,
        }
    }
}

impl From<ResourceKey> for DocumentKey {
    fn from(k: ResourceKey) -> DocumentKey {
        DocumentKey::Calico(k)
    }
}

impl From<Resource> for Document {
    fn from(r: Resource) -> Document {
        Document::Calico(r)
    }
}

impl Document {
    /// Decodes one document from its JSON form, by `apiVersion` (strict).
    pub fn from_json(v: Value) -> Result<Document, String> {
        match v.get("apiVersion").and_then(Value::as_str) {
            Some(k8s::NETWORKING_API_VERSION) => match v.get("kind").and_then(Value::as_str) {
                Some(k8s::NETWORK_POLICY_KIND) => {
                    k8s::NetworkPolicy::from_json(v).map(Document::KubernetesNetworkPolicy)
                }
                other => Err(format!(
                    "kind {:?} of {} is not supported: only {} is",
                    other.unwrap_or(""),
                    k8s::NETWORKING_API_VERSION,
                    k8s::NETWORK_POLICY_KIND
                )),
            },
            _ => crate::codec::decode_value(v)
                .map(Document::Calico)
                .map_err(|e| {
                    if e.starts_with("apiVersion") {
                        format!(
                            "{e} (or {} for a NetworkPolicy)",
                            k8s::NETWORKING_API_VERSION
                        )
                    } else {
                        e
                    }
                }),
        }
    }

    /// The document's identity; a Kubernetes policy without a namespace is in `default`.
    pub fn key(&self) -> DocumentKey {
        match self {
            Document::Calico(r) => DocumentKey::Calico(r.key()),
            Document::KubernetesNetworkPolicy(np) => DocumentKey::KubernetesNetworkPolicy {
                namespace: np.namespace().to_string(),
                name: np.metadata.name.clone(),
            },
        }
    }

    /// `IPPool`, `NetworkPolicy`, or `NetworkPolicy.networking.k8s.io`, for messages.
    pub fn kind_name(&self) -> &'static str {
        self.key().kind_name()
    }

    /// Whether the document lives in a namespace.
    pub fn namespaced(&self) -> bool {
        match self {
            Document::Calico(r) => r.kind().namespaced(),
            Document::KubernetesNetworkPolicy(_) => true,
        }
    }

    /// The metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Document::Calico(r) => r.metadata(),
            Document::KubernetesNetworkPolicy(np) => &np.metadata,
        }
    }

    /// The metadata, mutable.
    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Document::Calico(r) => r.metadata_mut(),
            Document::KubernetesNetworkPolicy(np) => &mut np.metadata,
        }
    }

    /// Fills in namespace `ns` for namespaced documents that have none.
    pub fn default_namespace(&mut self, ns: &str) {
        if self.namespaced() && self.metadata().namespace.is_none() {
            self.metadata_mut().namespace = Some(ns.to_string());
        }
    }

    /// Fills Calico's defaults (Kubernetes policies have none to fill).
    pub fn set_defaults(&mut self) {
        if let Document::Calico(r) = self {
            r.set_defaults();
        }
    }

    /// Checks the document with Calico's (or Kubernetes') rules.
    pub fn validate(&self) -> Result<(), ValidationError> {
        match self {
            Document::Calico(r) => r.validate(),
            Document::KubernetesNetworkPolicy(np) => np.validate(),
        }
    }

    /// The document as a JSON value in its user-facing form.
    pub fn to_json(&self) -> Value {
        match self {
            Document::Calico(r) => r.to_json(),
            // Plain data with string keys: serializing cannot fail.
            Document::KubernetesNetworkPolicy(np) => {
                serde_json::to_value(np).unwrap_or(Value::Null)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kind;

    #[test]
    fn dispatches_on_api_version() {
        let k: Value = serde_json::json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "web"}, "spec": {"podSelector": {}}
        });
        let mut d = Document::from_json(k).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            d.key().to_string(),
            "NetworkPolicy.networking.k8s.io(default/web)"
        );
        assert_eq!(d.kind_name(), "NetworkPolicy.networking.k8s.io");
        d.default_namespace("shop");
        assert_eq!(d.metadata().namespace.as_deref(), Some("shop"));
        assert!(d.validate().is_ok());
        assert_eq!(Document::from_json(d.to_json()).ok(), Some(d));

        let c: Value = serde_json::json!({
            "apiVersion": "projectcalico.org/v3", "kind": "Tier",
            "metadata": {"name": "security"}, "spec": {"order": 100}
        });
        let d = Document::from_json(c).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(&d, Document::Calico(r) if r.kind() == Kind::Tier));
        assert_eq!(d.key().to_string(), "Tier(security)");

        let e = Document::from_json(serde_json::json!({"apiVersion": "v1", "kind": "Pod"}))
            .err()
            .unwrap_or_default();
        assert!(e.contains("networking.k8s.io/v1"), "{e}");
        let e = Document::from_json(serde_json::json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "x"}
        }))
        .err()
        .unwrap_or_default();
        assert!(
            e.contains("kind \"Ingress\" of networking.k8s.io/v1 is not supported"),
            "{e}"
        );
    }
}
