//! Tier: an ordered group of policies (`projectcalico.org/v3` `Tier`).
//!
//! Policy is evaluated tier by tier, lowest `order` first (ties broken by
//! name). A tier that applies to an endpoint but reaches no verdict takes its
//! `defaultAction`: `Deny` (the default) drops the packet, `Pass` hands it to
//! the next tier. Calico keeps a `default` tier with order 1 000 000
//! (`DefaultTierOrder`) for policies that name no tier.
//!
//! As Calico (`DefaultTierFields`, `validateTier`): an absent `order` is
//! stored as 1 000 000 and an absent `defaultAction` as `Deny`; a tier name is
//! a DNS-1123 label (no dots: it prefixes policy names); the `default` tier's
//! order must be 1 000 000. The rules that need the store (the `default` tier
//! and tiers that still hold policies cannot be deleted; a policy's tier must
//! exist) are in `calico_datastore::Client`.

use serde::{Deserialize, Serialize};

use crate::meta::{ObjectMeta, SpecImpl};
use crate::validate::{self, Errors};

/// The tier of policies that name none.
pub const DEFAULT_TIER: &str = "default";
/// The order of the `default` tier (Calico's `DefaultTierOrder`).
pub const DEFAULT_TIER_ORDER: f64 = 1_000_000.0;
/// Values of `spec.defaultAction`.
pub const TIER_DEFAULT_ACTIONS: &[&str] = &["Deny", "Pass"];

/// Spec of a Tier.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TierSpec {
    /// Order of the tier; lower applies first, none applies last.
    #[serde(
        default,
        with = "super::common::order_float",
        skip_serializing_if = "Option::is_none"
    )]
    pub order: Option<f64>,
    /// What happens when the tier applies but reaches no verdict: `Deny` (default) or `Pass`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_action: Option<String>,
}

impl TierSpec {
    /// Whether a packet that reaches the end of this tier goes on to the next
    /// one. Calico reads any value but `Pass` as `Deny`.
    pub fn passes_by_default(&self) -> bool {
        self.default_action.as_deref() == Some("Pass")
    }
}

impl SpecImpl for TierSpec {
    fn defaults(&mut self) {
        self.order.get_or_insert(DEFAULT_TIER_ORDER);
        self.default_action.get_or_insert_with(|| "Deny".into());
    }

    fn check(&self, meta: &ObjectMeta, errs: &mut Errors) {
        if !meta.name.is_empty() {
            errs.check("metadata.name", validate::dns1123_label(&meta.name));
        }
        if let Some(o) = self.order.filter(|o| !o.is_finite()) {
            errs.add("spec.order", format!("{o} is not a finite number"));
        }
        if meta.name == DEFAULT_TIER && self.order.is_some_and(|o| o != DEFAULT_TIER_ORDER) {
            errs.add(
                "spec.order",
                format!("the default tier's order must be {DEFAULT_TIER_ORDER}"),
            );
        }
        if let Some(a) = &self.default_action {
            errs.check(
                "spec.defaultAction",
                validate::one_of(a, TIER_DEFAULT_ACTIONS),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_named(name: &str, spec: &TierSpec) -> Vec<String> {
        let mut errs = Errors::default();
        let meta = ObjectMeta {
            name: name.into(),
            ..Default::default()
        };
        spec.check(&meta, &mut errs);
        errs.list.into_iter().map(|e| e.field).collect()
    }

    fn check(spec: &TierSpec) -> Vec<String> {
        check_named("", spec)
    }

    #[test]
    fn yaml_fields_and_defaults() {
        let t: TierSpec =
            serde_json::from_str(r#"{"order": 100, "defaultAction": "Pass"}"#).unwrap_or_default();
        assert_eq!(t.order, Some(100.0));
        assert!(t.passes_by_default());
        assert!(!TierSpec::default().passes_by_default());
        assert_eq!(
            serde_json::to_string(&t).ok().as_deref(),
            Some(r#"{"order":100,"defaultAction":"Pass"}"#)
        );
        assert!(serde_json::from_str::<TierSpec>(r#"{"odrer": 1}"#).is_err());
    }

    #[test]
    fn validation() {
        assert!(check(&TierSpec::default()).is_empty());
        let bad = TierSpec {
            order: Some(f64::NAN),
            default_action: Some("Allow".into()),
        };
        assert_eq!(check(&bad), vec!["spec.order", "spec.defaultAction"]);
        // Tier names have no dots; the default tier keeps Calico's order.
        assert_eq!(
            check_named("a.b", &TierSpec::default()),
            vec!["metadata.name"]
        );
        let ten = TierSpec {
            order: Some(10.0),
            ..Default::default()
        };
        assert!(check_named("security", &ten).is_empty());
        assert_eq!(check_named(DEFAULT_TIER, &ten), vec!["spec.order"]);
    }

    #[test]
    fn defaults_as_calico() {
        let mut t = TierSpec::default();
        t.defaults();
        assert_eq!(t.order, Some(DEFAULT_TIER_ORDER));
        assert_eq!(t.default_action.as_deref(), Some("Deny"));
        assert!(check_named(DEFAULT_TIER, &t).is_empty());
        let mut p = TierSpec {
            order: Some(5.0),
            default_action: Some("Pass".into()),
        };
        p.defaults();
        assert_eq!((p.order, p.passes_by_default()), (Some(5.0), true));
    }
}
