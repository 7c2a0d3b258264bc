//! Object metadata, the generic resource envelope and the [`Resource`] sum type.
//!
//! Invariants: a [`Resource`] always carries its kind in its variant; its
//! `metadata.namespace` is set exactly when the kind is namespaced (checked by
//! [`Resource::validate`]); `resourceVersion`, `uid` and `creationTimestamp`
//! are owned by the datastore and ignored on create.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::kind::Kind;
use crate::resources::*;
use crate::validate::{self, Errors, ValidationError};

/// Kubernetes-style object metadata, with the fields Calico resources use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMeta {
    /// The object's name, unique per kind (and namespace).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The namespace, for namespaced kinds only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels, matched by selectors.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Free-form annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Opaque version for optimistic concurrency, set by the datastore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// Unique id, set by the datastore on create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// RFC 3339 creation time, set by the datastore on create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    /// Kubernetes generation counter, kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
}

/// Identity of a resource: kind, namespace (namespaced kinds only), name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceKey {
    /// The kind.
    pub kind: Kind,
    /// The namespace, `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}({}/{})", self.kind, ns, self.name),
            None => write!(f, "{}({})", self.kind, self.name),
        }
    }
}

/// The spec of one kind: its serde form, Calico's defaults and validation.
pub trait Spec: Serialize + DeserializeOwned + Default + Clone + PartialEq + fmt::Debug {
    /// The kind this spec belongs to.
    const KIND: Kind;
    /// Fills the fields Calico defaults when they are absent.
    fn set_defaults(&mut self) {}
    /// Checks the spec; `meta` is given for rules that depend on the name.
    fn validate(&self, meta: &ObjectMeta, errs: &mut Errors);
}

/// A typed resource: metadata, spec, and (for kinds that have one) status.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Object<S> {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// The kind-specific spec.
    pub spec: S,
    /// Status as reported by agents (Node), kept as given.
    pub status: Option<serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Envelope<S> {
    api_version: String,
    kind: String,
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: S,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<serde_json::Value>,
}

impl<S: Spec> Object<S> {
    /// A new object with the given name and spec.
    pub fn new(name: impl Into<String>, spec: S) -> Self {
        Object {
            metadata: ObjectMeta {
                name: name.into(),
                ..Default::default()
            },
            spec,
            status: None,
        }
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        let env = Envelope {
            api_version: crate::API_VERSION.to_string(),
            kind: S::KIND.name().to_string(),
            metadata: self.metadata.clone(),
            spec: self.spec.clone(),
            status: self.status.clone(),
        };
        // Serializing plain data structs to a JSON value cannot fail: every map key is a string.
        serde_json::to_value(env).unwrap_or(serde_json::Value::Null)
    }

    /// [`Object::from_json`] straight from JSON text, with no
    /// `serde_json::Value` between; `None` when it does not decode (the
    /// caller then takes the `Value` path for its error message).
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Self> {
        let env: Envelope<S> = serde_json::from_slice(bytes).ok()?;
        Some(Object {
            metadata: env.metadata,
            spec: env.spec,
            status: env.status,
        })
    }

    pub(crate) fn from_json(v: serde_json::Value) -> Result<Self, String> {
        let env: Envelope<S> = serde_path_to_error::deserialize(v).map_err(|e| {
            let path = e.path().to_string();
            if path == "." {
                e.inner().to_string()
            } else {
                format!("{path}: {}", e.inner())
            }
        })?;
        Ok(Object {
            metadata: env.metadata,
            spec: env.spec,
            status: env.status,
        })
    }
}

macro_rules! resources {
    ($($kind:ident => $spec:ty),* $(,)?) => {
        /// Any `projectcalico.org/v3` resource.
        #[derive(Debug, Clone, PartialEq)]
        #[allow(clippy::large_enum_variant)]
        pub enum Resource {
            $(
                #[doc = concat!("A ", stringify!($kind), ".")]
                $kind(Object<$spec>),
            )*
        }

        $(impl Spec for $spec where $spec: SpecImpl {
            const KIND: Kind = Kind::$kind;
            fn set_defaults(&mut self) { SpecImpl::defaults(self) }
            fn validate(&self, meta: &ObjectMeta, errs: &mut Errors) { SpecImpl::check(self, meta, errs) }
        })*

        impl Resource {
            /// The resource's kind.
            pub fn kind(&self) -> Kind {
                match self { $(Resource::$kind(_) => Kind::$kind,)* }
            }

            /// The resource's metadata.
            pub fn metadata(&self) -> &ObjectMeta {
                match self { $(Resource::$kind(o) => &o.metadata,)* }
            }

            /// The resource's metadata, mutable.
            pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
                match self { $(Resource::$kind(o) => &mut o.metadata,)* }
            }

            /// Fills Calico's defaults for absent fields.
            pub fn set_defaults(&mut self) {
                match self { $(Resource::$kind(o) => o.spec.set_defaults(),)* }
            }

            fn validate_spec(&self, errs: &mut Errors) {
                match self { $(Resource::$kind(o) => o.spec.validate(&o.metadata, errs),)* }
            }

            /// The resource as a JSON value in its user-facing form.
            pub fn to_json(&self) -> serde_json::Value {
                match self { $(Resource::$kind(o) => o.to_json(),)* }
            }

            /// Decodes a resource of a known kind from its JSON form (strict:
            /// unknown fields are refused, the error names the field path).
            pub fn from_json(kind: Kind, v: serde_json::Value) -> Result<Resource, String> {
                match kind { $(Kind::$kind => Object::<$spec>::from_json(v).map(Resource::$kind),)* }
            }

            /// [`Resource::from_json`] from JSON text, quicker; `None` when
            /// it does not decode.
            pub(crate) fn from_slice(kind: Kind, bytes: &[u8]) -> Option<Resource> {
                match kind { $(Kind::$kind => Object::<$spec>::from_slice(bytes).map(Resource::$kind),)* }
            }

            /// An empty resource of `kind` with default spec, named `name`.
            pub fn empty(kind: Kind, name: &str) -> Resource {
                match kind { $(Kind::$kind => Resource::$kind(Object::new(name, <$spec>::default())),)* }
            }
        }
    };
}

/// Per-kind defaults and checks; implemented next to each spec.
pub trait SpecImpl {
    /// See [`Spec::set_defaults`].
    fn defaults(&mut self) {}
    /// See [`Spec::validate`].
    fn check(&self, meta: &ObjectMeta, errs: &mut Errors);
}

resources! {
    IPPool => IPPoolSpec,
    IPReservation => IPReservationSpec,
    IPAMConfiguration => IPAMConfigurationSpec,
    BGPConfiguration => BGPConfigurationSpec,
    BGPPeer => BGPPeerSpec,
    FelixConfiguration => FelixConfigurationSpec,
    Node => NodeSpec,
    WorkloadEndpoint => WorkloadEndpointSpec,
    HostEndpoint => HostEndpointSpec,
    NetworkPolicy => NetworkPolicySpec,
    GlobalNetworkPolicy => GlobalNetworkPolicySpec,
    Profile => ProfileSpec,
    NetworkSet => NetworkSetSpec,
    GlobalNetworkSet => GlobalNetworkSetSpec,
    ClusterInformation => ClusterInformationSpec,
    Tier => TierSpec,
    BGPFilter => BGPFilterSpec,
    KubeControllersConfiguration => KubeControllersConfigurationSpec,
    StagedNetworkPolicy => StagedNetworkPolicySpec,
    StagedGlobalNetworkPolicy => StagedGlobalNetworkPolicySpec,
    StagedKubernetesNetworkPolicy => StagedKubernetesNetworkPolicySpec,
}

impl Resource {
    /// The resource's identity.
    pub fn key(&self) -> ResourceKey {
        let m = self.metadata();
        ResourceKey {
            kind: self.kind(),
            namespace: m.namespace.clone(),
            name: m.name.clone(),
        }
    }

    /// Checks metadata and spec with Calico's rules; every problem is reported.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let mut errs = Errors::default();
        let m = self.metadata();
        let kind = self.kind();
        if m.name.is_empty() {
            errs.add("metadata.name", "a name is required");
        } else {
            errs.check("metadata.name", validate::dns1123_subdomain(&m.name));
        }
        match (&m.namespace, kind.namespaced()) {
            (Some(ns), true) => errs.check("metadata.namespace", validate::dns1123_label(ns)),
            (None, true) => {}
            (Some(_), false) => errs.add("metadata.namespace", format!("{kind} is not namespaced")),
            (None, false) => {}
        }
        for (k, v) in &m.labels {
            errs.check(format!("metadata.labels[{k}]"), validate::label_key(k));
            errs.check(format!("metadata.labels[{k}]"), validate::label_value(v));
        }
        self.validate_spec(&mut errs);
        if errs.list.is_empty() {
            Ok(())
        } else {
            Err(ValidationError {
                resource: self.key().to_string(),
                errors: errs.list,
            })
        }
    }

    /// Fills in namespace `default` for namespaced kinds that have none, as calicoctl does.
    pub fn default_namespace(&mut self, ns: &str) {
        if self.kind().namespaced() && self.metadata().namespace.is_none() {
            self.metadata_mut().namespace = Some(ns.to_string());
        }
    }
}
