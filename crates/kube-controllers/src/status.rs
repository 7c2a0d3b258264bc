//! The readiness status file, as Calico's kube-controllers writes it and its
//! `check-status` reads it: `{"Readiness": {"<key>": {"Ready": bool,
//! "Reason": "..."}}}` at `/status/status.json`. Ready when there is at
//! least one condition and all are ready.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Calico's default status file.
pub const DEFAULT_STATUS_FILE: &str = "/status/status.json";
/// Condition key of the Calico datastore.
pub const DATASTORE: &str = "CalicoDatastore";
/// Condition key of the Kubernetes API server.
pub const KUBE_API: &str = "KubeAPIServer";

/// One condition.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Condition {
    /// Whether it is ready.
    pub ready: bool,
    /// Why not, when not.
    #[serde(default)]
    pub reason: String,
}

/// The status file's content.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Status {
    /// Conditions by key.
    #[serde(default)]
    pub readiness: BTreeMap<String, Condition>,
}

impl Status {
    /// Sets a condition; true when it changed (the file is to be written).
    pub fn set(&mut self, key: &str, ready: bool, reason: &str) -> bool {
        let c = Condition {
            ready,
            reason: reason.to_string(),
        };
        self.readiness.insert(key.to_string(), c.clone()) != Some(c)
    }

    /// Ready: at least one condition, all ready.
    pub fn ready(&self) -> bool {
        !self.readiness.is_empty() && self.readiness.values().all(|c| c.ready)
    }

    /// The reasons of the conditions not ready, joined with `; `.
    pub fn not_ready(&self) -> String {
        self.readiness
            .values()
            .filter(|c| !c.ready)
            .map(|c| c.reason.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Writes the file (its directory created).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        let b = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        std::fs::write(path, b)
    }

    /// Reads the file.
    pub fn read(path: &Path) -> std::io::Result<Status> {
        let b = std::fs::read(path)?;
        serde_json::from_slice(&b).map_err(std::io::Error::other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calico_format_and_readiness() {
        let mut s = Status::default();
        assert!(!s.ready(), "no condition is not ready");
        assert!(s.set(DATASTORE, true, ""));
        assert!(!s.set(DATASTORE, true, ""));
        s.set(KUBE_API, false, "kubernetes api unreachable");
        assert!(!s.ready());
        assert_eq!(s.not_ready(), "kubernetes api unreachable");
        let v = serde_json::to_value(&s).unwrap_or_default();
        assert_eq!(v["Readiness"]["CalicoDatastore"]["Ready"], true);
        // Calico's own file decodes.
        let calico = r#"{"Readiness":{"CalicoDatastore":{"Ready":true,"Reason":""},"KubeAPIServer":{"Ready":true,"Reason":""}}}"#;
        let s: Status = serde_json::from_str(calico).unwrap_or_default();
        assert!(s.ready());
    }
}
