//! Tier: an ordered group of policies (`projectcalico.org/v3` `Tier`).
//!
//! Policy is evaluated tier by tier, lowest `order` first (a tier without an
//! order comes last, ties broken by name). A tier that applies to an endpoint
//! but reaches no verdict takes its `defaultAction`: `Deny` (the default)
//! drops the packet, `Pass` hands it to the next tier. Calico keeps a `default`
//! tier with order 1 000 000 (`DefaultTierOrder`) for policies that name no tier.
//!
//! The spec is not yet one of the [`Kind`](crate::Kind)s: registering it needs
//! `Tier => TierSpec` in the resource table, a `tiers` row in the kind table and
//! a Tier in the shared all-kinds fixture.

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
    fn check(&self, _meta: &ObjectMeta, errs: &mut Errors) {
        if let Some(o) = self.order.filter(|o| !o.is_finite()) {
            errs.add("spec.order", format!("{o} is not a finite number"));
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

    fn check(spec: &TierSpec) -> Vec<String> {
        let mut errs = Errors::default();
        spec.check(&ObjectMeta::default(), &mut errs);
        errs.list.into_iter().map(|e| e.field).collect()
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
    }
}
