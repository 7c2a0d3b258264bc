//! Kinds calico-rs stores and validates but does not act on:
//! KubeControllersConfiguration (calico-rs runs no kube-controllers) and
//! the staged policies (StagedNetworkPolicy, StagedGlobalNetworkPolicy,
//! StagedKubernetesNetworkPolicy), which Calico never enforces either: they
//! preview a policy change (`stagedAction: Set`, `Delete`, `Learn`, `Ignore`).
//!
//! A staged spec is its policy's spec plus `stagedAction`, decoded as
//! strictly as the policy; with `stagedAction: Delete` every other field
//! (but the tier) must be empty, as Calico checks. A KubeControllersConfiguration
//! spec is kept as JSON and held to Calico's schema.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::{GlobalNetworkPolicySpec, NetworkPolicySpec, check_schema};
use crate::k8s;
use crate::meta::{ObjectMeta, SpecImpl};
use crate::validate::{self, Errors};

/// Values of `stagedAction`.
pub const STAGED_ACTIONS: &[&str] = &["Set", "Delete", "Learn", "Ignore"];

/// Spec of a KubeControllersConfiguration, as given (checked against Calico's schema).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KubeControllersConfigurationSpec(pub Map<String, Value>);

impl SpecImpl for KubeControllersConfigurationSpec {
    fn check(&self, _meta: &ObjectMeta, errs: &mut Errors) {
        let spec = Value::Object(self.0.clone());
        check_schema("KubeControllersConfiguration", "spec", &spec, "spec", errs);
        for path in [
            "/etcdV3CompactionPeriod",
            "/controllers/node/reconcilerPeriod",
            "/controllers/node/leakGracePeriod",
            "/controllers/policy/reconcilerPeriod",
            "/controllers/workloadEndpoint/reconcilerPeriod",
            "/controllers/serviceAccount/reconcilerPeriod",
            "/controllers/namespace/reconcilerPeriod",
        ] {
            if let Some(v) = spec.pointer(path).and_then(Value::as_str) {
                let field = format!("spec{}", path.replace('/', "."));
                errs.check(field, validate::duration(v));
            }
        }
        for (path, allowed) in [
            ("/healthChecks", &["Enabled", "Disabled"][..]),
            ("/controllers/node/syncLabels", &["Enabled", "Disabled"]),
            (
                "/controllers/node/hostEndpoint/autoCreate",
                &["Enabled", "Disabled"],
            ),
            (
                "/controllers/node/hostEndpoint/createDefaultHostEndpoint",
                &["Enabled", "Disabled"],
            ),
            (
                "/controllers/loadBalancer/assignIPs",
                &["AllServices", "RequestedServicesOnly"],
            ),
            (
                "/logSeverityScreen",
                &[
                    "Trace", "Debug", "Info", "Warning", "Error", "Fatal", "Panic",
                ],
            ),
        ] {
            if let Some(v) = spec.pointer(path).and_then(Value::as_str) {
                let field = format!("spec{}", path.replace('/', "."));
                errs.check(field, validate::one_of(v, allowed));
            }
        }
        for path in ["/prometheusMetricsPort", "/debugProfilePort"] {
            if let Some(v) = spec.pointer(path).and_then(Value::as_i64)
                && !(0..=65535).contains(&v)
            {
                errs.add(
                    format!("spec{}", path.replace('/', ".")),
                    format!("{v} is not a port (0 to 65535)"),
                );
            }
        }
    }
}

/// Serializes a policy spec with `stagedAction` among its fields.
fn ser_staged<S: Serializer, P: Serialize>(
    action: &Option<String>,
    policy: &P,
    s: S,
) -> Result<S::Ok, S::Error> {
    let mut m = match serde_json::to_value(policy).map_err(serde::ser::Error::custom)? {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    if let Some(a) = action {
        m.insert("stagedAction".into(), Value::String(a.clone()));
    }
    m.serialize(s)
}

/// Splits `stagedAction` off and decodes the rest as the policy (strictly).
fn de_staged<'de, D: Deserializer<'de>, P: serde::de::DeserializeOwned>(
    d: D,
) -> Result<(Option<String>, P), D::Error> {
    let mut m = Map::<String, Value>::deserialize(d)?;
    let action = match m.remove("stagedAction") {
        None | Some(Value::Null) => None,
        Some(Value::String(a)) => Some(a),
        Some(_) => return Err(D::Error::custom("stagedAction: a string is required")),
    };
    let policy = serde_path_to_error::deserialize(Value::Object(m)).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            D::Error::custom(e.inner())
        } else {
            D::Error::custom(format!("{path}: {}", e.inner()))
        }
    })?;
    Ok((action, policy))
}

fn check_action(errs: &mut Errors, action: &Option<String>) {
    if let Some(a) = action {
        errs.check("spec.stagedAction", validate::one_of(a, STAGED_ACTIONS));
    }
}

macro_rules! staged {
    ($(#[$doc:meta])* $name:ident, $policy:ty, $what:literal, |$p:ident| $empty:expr, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Default)]
        pub struct $name {
            /// `Set` (default), `Delete`, `Learn` or `Ignore`.
            pub staged_action: Option<String>,
            /// The policy the change would make.
            pub policy: $policy,
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                ser_staged(&self.staged_action, &self.policy, s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let (staged_action, policy) = de_staged(d)?;
                Ok($name { staged_action, policy })
            }
        }

        impl SpecImpl for $name {
            fn check(&self, meta: &ObjectMeta, errs: &mut Errors) {
                check_action(errs, &self.staged_action);
                if self.staged_action.as_deref() == Some("Delete") {
                    let $p = &self.policy;
                    if !$empty {
                        errs.add("spec", concat!("spec fields, ", $what, " must all be empty when stagedAction is Delete"));
                    }
                } else {
                    #[allow(clippy::redundant_closure_call)]
                    ($check)(&self.policy, meta, errs);
                }
            }
        }
    };
}

staged!(
    /// Spec of a StagedNetworkPolicy: a NetworkPolicy's spec and `stagedAction`.
    StagedNetworkPolicySpec,
    NetworkPolicySpec,
    "except tier,",
    |p| *p == NetworkPolicySpec { tier: p.tier.clone(), ..Default::default() },
    |p: &NetworkPolicySpec, m: &ObjectMeta, e: &mut Errors| SpecImpl::check(p, m, e)
);

staged!(
    /// Spec of a StagedGlobalNetworkPolicy: a GlobalNetworkPolicy's spec and `stagedAction`.
    StagedGlobalNetworkPolicySpec,
    GlobalNetworkPolicySpec,
    "except tier,",
    |p| *p == GlobalNetworkPolicySpec { tier: p.tier.clone(), ..Default::default() },
    |p: &GlobalNetworkPolicySpec, m: &ObjectMeta, e: &mut Errors| SpecImpl::check(p, m, e)
);

staged!(
    /// Spec of a StagedKubernetesNetworkPolicy: a Kubernetes NetworkPolicy's spec and `stagedAction`.
    StagedKubernetesNetworkPolicySpec,
    k8s::NetworkPolicySpec,
    "",
    |p| *p == k8s::NetworkPolicySpec::default(),
    |p: &k8s::NetworkPolicySpec, m: &ObjectMeta, e: &mut Errors| {
        let np = k8s::NetworkPolicy { metadata: m.clone(), spec: p.clone(), ..Default::default() };
        if let Err(v) = np.validate() {
            // Metadata is checked once, as every resource's.
            e.list.extend(v.errors.into_iter().filter(|f| f.field.starts_with("spec")));
        }
    }
);
