//! Controller settings from the environment, named as Calico's
//! calico-kube-controllers names them. Pure: takes a lookup function.

use std::collections::BTreeSet;

/// One controller of the set Calico runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Controller {
    /// Node clean-up and IPAM garbage collection.
    Node,
    /// Kubernetes NetworkPolicies mirrored into the store.
    Policy,
    /// Namespaces → `kns.` profiles.
    Namespace,
    /// ServiceAccounts → `ksa.` profiles.
    ServiceAccount,
    /// Pod labels → WorkloadEndpoint labels.
    WorkloadEndpoint,
}

impl Controller {
    /// Calico's name in `ENABLED_CONTROLLERS`.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Node => "node",
            Controller::Policy => "policy",
            Controller::Namespace => "namespace",
            Controller::ServiceAccount => "serviceaccount",
            Controller::WorkloadEndpoint => "workloadendpoint",
        }
    }
}

/// Errors of the settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// An unknown name in `ENABLED_CONTROLLERS`.
    #[error(
        "ENABLED_CONTROLLERS: unknown controller {0:?}: use node, policy, namespace, serviceaccount or workloadendpoint"
    )]
    UnknownController(String),
}

/// The settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `ENABLED_CONTROLLERS` (default: all five).
    pub enabled: BTreeSet<Controller>,
    /// `LOG_LEVEL` (default `info`).
    pub log_level: String,
    /// `KUBECONFIG` (empty: in-cluster service account).
    pub kubeconfig: String,
}

const ALL: [Controller; 5] = [
    Controller::Node,
    Controller::Policy,
    Controller::Namespace,
    Controller::ServiceAccount,
    Controller::WorkloadEndpoint,
];

impl Config {
    /// Reads the settings through `get` (e.g. `|k| std::env::var(k).ok()`).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let enabled = match get("ENABLED_CONTROLLERS") {
            None => ALL.into_iter().collect(),
            Some(s) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|n| {
                    ALL.into_iter()
                        .find(|c| c.name() == n)
                        .ok_or_else(|| ConfigError::UnknownController(n.to_string()))
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(Config {
            enabled,
            log_level: get("LOG_LEVEL").unwrap_or_else(|| "info".into()),
            kubeconfig: get("KUBECONFIG").unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_names() {
        let c = Config::from_lookup(|_| None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.enabled.len(), 5);
        assert_eq!(c.log_level, "info");
        let c = Config::from_lookup(|k| {
            (k == "ENABLED_CONTROLLERS").then(|| "policy, namespace".to_string())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.enabled.into_iter().collect::<Vec<_>>(),
            vec![Controller::Policy, Controller::Namespace]
        );
        assert_eq!(
            Config::from_lookup(|_| Some("pods".into())),
            Err(ConfigError::UnknownController("pods".into()))
        );
    }
}
