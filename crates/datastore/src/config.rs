//! Where the datastore is, read the way Calico users already say it:
//! environment variables (`DATASTORE_TYPE`, `DATASTORE_PATH`,
//! `ETCD_ENDPOINTS`, `ETCD_KEY_FILE`, `ETCD_CERT_FILE`, `ETCD_CA_CERT_FILE`,
//! `ETCD_USERNAME`, `ETCD_PASSWORD`, each also with a `CALICO_` prefix), a
//! calicoctl `CalicoAPIConfig` file, or the CNI network config fields.
//!
//! Which store, one rule for the plugins, calico-node and calicoctl alike
//! ([`Settings::resolve`]): the datastore type when one is given; without
//! one, etcd v3 when etcd endpoints are given (as Calico, whose default type
//! is etcdv3 and whose `calico-etcd.yaml` sets only `ETCD_ENDPOINTS`), else
//! the embedded local store.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::etcd::{EtcdStore, EtcdTls};
use crate::local::{DEFAULT_PATH, LocalStore};
use crate::store::{Store, StoreError};

/// A resolved datastore location. `Debug` shows no password.
#[derive(Clone, PartialEq, Eq)]
pub enum DatastoreConfig {
    /// The embedded SQLite file.
    Local {
        /// Path of the file.
        path: PathBuf,
    },
    /// An etcd v3 cluster.
    Etcd {
        /// Endpoint URLs.
        endpoints: Vec<String>,
        /// TLS files.
        tls: EtcdTls,
        /// User name and password, when etcd auth is on.
        user: Option<(String, String)>,
    },
}

/// Stands for a password in `Debug` output.
const REDACTED: &str = "<redacted>";

impl std::fmt::Debug for DatastoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatastoreConfig::Local { path } => f.debug_struct("Local").field("path", path).finish(),
            DatastoreConfig::Etcd {
                endpoints,
                tls,
                user,
            } => f
                .debug_struct("Etcd")
                .field("endpoints", endpoints)
                .field("tls", tls)
                .field("user", &user.as_ref().map(|(name, _)| (name, REDACTED)))
                .finish(),
        }
    }
}

impl DatastoreConfig {
    /// A name for the store this configuration reaches, equal for two
    /// configurations that reach the same store (absolute file path, or the
    /// sorted endpoints).
    pub fn identity(&self) -> String {
        match self {
            DatastoreConfig::Local { path } => {
                let abs = if path.is_absolute() {
                    path.clone()
                } else {
                    std::env::current_dir().unwrap_or_default().join(path)
                };
                let abs = abs.canonicalize().unwrap_or(abs);
                format!("local:{}", abs.display())
            }
            DatastoreConfig::Etcd { endpoints, .. } => {
                let mut e: Vec<&str> = endpoints.iter().map(|s| s.trim_end_matches('/')).collect();
                e.sort();
                format!("etcdv3:{}", e.join(","))
            }
        }
    }
}

/// Why a datastore configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// An unsupported `datastoreType`.
    #[error("datastore type {0:?} is not supported: use \"local\" (the default) or \"etcdv3\"")]
    UnknownType(String),
    /// etcdv3 without endpoints.
    #[error(
        "datastore type etcdv3 needs etcd endpoints: set ETCD_ENDPOINTS (e.g. http://127.0.0.1:2379)"
    )]
    NoEndpoints,
    /// A malformed endpoint.
    #[error("etcd endpoint {0:?} is not a URL: use http://HOST:PORT or https://HOST:PORT")]
    BadEndpoint(String),
    /// A config file that cannot be read or parsed.
    #[error("config file {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What was wrong.
        reason: String,
    },
}

/// The raw settings, however they were given. `Debug` shows no password.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// `local` (default) or `etcdv3`.
    #[serde(default)]
    pub datastore_type: Option<String>,
    /// Local store file.
    #[serde(default)]
    pub datastore_path: Option<String>,
    /// Comma-separated etcd URLs.
    #[serde(default)]
    pub etcd_endpoints: Option<String>,
    /// etcd client key.
    #[serde(default)]
    pub etcd_key_file: Option<String>,
    /// etcd client certificate.
    #[serde(default)]
    pub etcd_cert_file: Option<String>,
    /// etcd CA certificate.
    #[serde(default, rename = "etcdCACertFile")]
    pub etcd_ca_cert_file: Option<String>,
    /// etcd user.
    #[serde(default)]
    pub etcd_username: Option<String>,
    /// etcd password.
    #[serde(default)]
    pub etcd_password: Option<String>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("datastore_type", &self.datastore_type)
            .field("datastore_path", &self.datastore_path)
            .field("etcd_endpoints", &self.etcd_endpoints)
            .field("etcd_key_file", &self.etcd_key_file)
            .field("etcd_cert_file", &self.etcd_cert_file)
            .field("etcd_ca_cert_file", &self.etcd_ca_cert_file)
            .field("etcd_username", &self.etcd_username)
            .field(
                "etcd_password",
                &self.etcd_password.as_ref().map(|_| REDACTED),
            )
            .finish()
    }
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|v| !v.trim().is_empty())
}

impl Settings {
    /// Reads the settings through `get` (an environment lookup), accepting
    /// each name bare and with Calico's `CALICO_` prefix.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Settings {
        let var =
            |name: &str| non_empty(get(name)).or_else(|| non_empty(get(&format!("CALICO_{name}"))));
        Settings {
            datastore_type: var("DATASTORE_TYPE"),
            datastore_path: var("DATASTORE_PATH"),
            etcd_endpoints: var("ETCD_ENDPOINTS"),
            etcd_key_file: var("ETCD_KEY_FILE"),
            etcd_cert_file: var("ETCD_CERT_FILE"),
            etcd_ca_cert_file: var("ETCD_CA_CERT_FILE"),
            etcd_username: var("ETCD_USERNAME"),
            etcd_password: var("ETCD_PASSWORD"),
        }
    }

    /// Resolves the settings into a datastore location: the given type;
    /// without one, `etcdv3` when etcd endpoints are given, else `local`.
    pub fn resolve(self) -> Result<DatastoreConfig, ConfigError> {
        let kind = match non_empty(self.datastore_type) {
            Some(t) => t.trim().to_string(),
            None if non_empty(self.etcd_endpoints.clone()).is_some() => "etcdv3".to_string(),
            None => "local".to_string(),
        };
        match kind.as_str() {
            "local" => Ok(DatastoreConfig::Local {
                path: PathBuf::from(
                    non_empty(self.datastore_path).unwrap_or_else(|| DEFAULT_PATH.to_string()),
                ),
            }),
            "etcdv3" => {
                let raw = non_empty(self.etcd_endpoints).ok_or(ConfigError::NoEndpoints)?;
                let endpoints: Vec<String> = raw
                    .split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(str::to_string)
                    .collect();
                if endpoints.is_empty() {
                    return Err(ConfigError::NoEndpoints);
                }
                for e in &endpoints {
                    let rest = e
                        .strip_prefix("http://")
                        .or_else(|| e.strip_prefix("https://"));
                    if rest.is_none_or(|r| r.is_empty() || r.contains(char::is_whitespace)) {
                        return Err(ConfigError::BadEndpoint(e.clone()));
                    }
                }
                let user = match (non_empty(self.etcd_username), self.etcd_password) {
                    (Some(u), p) => Some((u, p.unwrap_or_default())),
                    _ => None,
                };
                Ok(DatastoreConfig::Etcd {
                    endpoints,
                    tls: EtcdTls {
                        key_file: non_empty(self.etcd_key_file),
                        cert_file: non_empty(self.etcd_cert_file),
                        ca_cert_file: non_empty(self.etcd_ca_cert_file),
                    },
                    user,
                })
            }
            other => Err(ConfigError::UnknownType(other.to_string())),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiConfigFile {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    spec: Settings,
}

impl DatastoreConfig {
    /// From the process environment.
    pub fn from_env() -> Result<DatastoreConfig, ConfigError> {
        Settings::from_lookup(|k| std::env::var(k).ok()).resolve()
    }

    /// From a calicoctl `CalicoAPIConfig` file (YAML or JSON).
    pub fn from_file(path: &Path) -> Result<DatastoreConfig, ConfigError> {
        let file_err = |reason: String| ConfigError::File {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
        let cfg: ApiConfigFile = serde_saphyr_or_json(&text).map_err(file_err)?;
        if let Some(k) = &cfg.kind
            && k != "CalicoAPIConfig"
        {
            return Err(file_err(format!("kind {k:?} is not CalicoAPIConfig")));
        }
        cfg.spec.resolve()
    }

    /// Opens the store this configuration names.
    pub fn connect(&self) -> Result<Arc<dyn Store>, StoreError> {
        self.connect_as(false)
    }

    /// As [`connect`](Self::connect), for a process that keeps the store
    /// open for its whole life (calico-node).
    pub fn connect_long_lived(&self) -> Result<Arc<dyn Store>, StoreError> {
        self.connect_as(true)
    }

    fn connect_as(&self, long_lived: bool) -> Result<Arc<dyn Store>, StoreError> {
        match self {
            DatastoreConfig::Local { path } if long_lived => {
                Ok(Arc::new(LocalStore::open_long_lived(path)?))
            }
            DatastoreConfig::Local { path } => Ok(Arc::new(LocalStore::open(path)?)),
            DatastoreConfig::Etcd {
                endpoints,
                tls,
                user,
            } => Ok(Arc::new(EtcdStore::connect(endpoints, tls, user.clone())?)),
        }
    }
}

fn serde_saphyr_or_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    let v: serde_json::Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| e.to_string())?
    } else {
        calico_api::codec::yaml_value(text)?
    };
    serde_json::from_value(v).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn debug_output_shows_no_password() {
        let settings = Settings {
            datastore_type: Some("etcdv3".into()),
            etcd_endpoints: Some("http://127.0.0.1:2379".into()),
            etcd_username: Some("calico".into()),
            etcd_password: Some("hunter2-secret".into()),
            ..Settings::default()
        };
        let config = settings.clone().resolve().unwrap();
        for shown in [
            format!("{settings:?}"),
            format!("{config:?}"),
            format!("{config:#?}"),
        ] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(
                shown.contains("calico") && shown.contains(REDACTED),
                "{shown}"
            );
        }
        assert!(format!("{:?}", Settings::default()).contains("etcd_password: None"));
    }

    fn env(pairs: &[(&str, &str)]) -> Result<DatastoreConfig, ConfigError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| m.get(k).cloned()).resolve()
    }

    #[test]
    fn defaults_to_the_local_store() {
        assert_eq!(
            env(&[]),
            Ok(DatastoreConfig::Local {
                path: DEFAULT_PATH.into()
            })
        );
        assert_eq!(
            env(&[("DATASTORE_PATH", "/tmp/x.db")]),
            Ok(DatastoreConfig::Local {
                path: "/tmp/x.db".into()
            })
        );
    }

    #[test]
    fn etcd_endpoints_without_a_type_mean_etcd() {
        let etcd = |endpoints: &[&str]| {
            Ok(DatastoreConfig::Etcd {
                endpoints: endpoints.iter().map(|e| e.to_string()).collect(),
                tls: EtcdTls::default(),
                user: None,
            })
        };
        // Environment, bare and with Calico's prefix (calico-node, calicoctl).
        assert_eq!(
            env(&[("ETCD_ENDPOINTS", "http://10.0.0.1:2379")]),
            etcd(&["http://10.0.0.1:2379"])
        );
        assert_eq!(
            env(&[
                ("CALICO_ETCD_ENDPOINTS", "http://10.0.0.1:2379"),
                ("DATASTORE_PATH", "/tmp/x.db")
            ]),
            etcd(&["http://10.0.0.1:2379"])
        );
        // Settings as the plugins' network config gives them.
        let conf = Settings {
            etcd_endpoints: Some("https://10.0.0.1:2379,https://10.0.0.2:2379".into()),
            etcd_ca_cert_file: Some("/etc/cni/net.d/calico-tls/etcd-ca".into()),
            ..Settings::default()
        };
        let Ok(DatastoreConfig::Etcd { endpoints, tls, .. }) = conf.resolve() else {
            panic!("etcd endpoints without a type must mean etcdv3")
        };
        assert_eq!(
            endpoints,
            ["https://10.0.0.1:2379", "https://10.0.0.2:2379"]
        );
        assert_eq!(
            tls.ca_cert_file.as_deref(),
            Some("/etc/cni/net.d/calico-tls/etcd-ca")
        );
        // A bad endpoint is refused, not taken for "no etcd".
        assert_eq!(
            env(&[("ETCD_ENDPOINTS", "10.0.0.1:2379")]),
            Err(ConfigError::BadEndpoint("10.0.0.1:2379".into()))
        );
        // An explicit type wins; blank endpoints are no endpoints.
        assert_eq!(
            env(&[
                ("DATASTORE_TYPE", "local"),
                ("ETCD_ENDPOINTS", "http://10.0.0.1:2379")
            ]),
            Ok(DatastoreConfig::Local {
                path: DEFAULT_PATH.into()
            })
        );
        for blank in ["", "  "] {
            assert_eq!(
                env(&[("ETCD_ENDPOINTS", blank)]),
                Ok(DatastoreConfig::Local {
                    path: DEFAULT_PATH.into()
                })
            );
        }
    }

    #[test]
    fn etcd_from_env_with_prefixes() {
        let c = env(&[
            ("CALICO_DATASTORE_TYPE", "etcdv3"),
            (
                "ETCD_ENDPOINTS",
                "http://127.0.0.1:2379, http://127.0.0.2:2379",
            ),
            ("ETCD_CA_CERT_FILE", "/ca.pem"),
        ]);
        let Ok(DatastoreConfig::Etcd { endpoints, tls, .. }) = c else {
            panic!("{c:?}")
        };
        assert_eq!(
            endpoints,
            vec!["http://127.0.0.1:2379", "http://127.0.0.2:2379"]
        );
        assert_eq!(tls.ca_cert_file.as_deref(), Some("/ca.pem"));
    }

    #[test]
    fn bad_settings_are_refused_clearly() {
        assert_eq!(
            env(&[("DATASTORE_TYPE", "etcdv3")]),
            Err(ConfigError::NoEndpoints)
        );
        assert_eq!(
            env(&[
                ("DATASTORE_TYPE", "etcdv3"),
                ("ETCD_ENDPOINTS", "127.0.0.1:2379")
            ]),
            Err(ConfigError::BadEndpoint("127.0.0.1:2379".into()))
        );
        let e = env(&[("DATASTORE_TYPE", "kubernetes")])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("\"kubernetes\" is not supported"), "{e}");
    }

    #[test]
    fn calicoctl_cfg_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("calicoctl.cfg");
        std::fs::write(
            &p,
            "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata:\nspec:\n  datastoreType: \"etcdv3\"\n  etcdEndpoints: \"https://10.0.0.1:2379\"\n  etcdCACertFile: /etc/ca.pem\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let Ok(DatastoreConfig::Etcd { endpoints, tls, .. }) = DatastoreConfig::from_file(&p)
        else {
            panic!()
        };
        assert_eq!(endpoints, vec!["https://10.0.0.1:2379"]);
        assert_eq!(tls.ca_cert_file.as_deref(), Some("/etc/ca.pem"));
        // No datastoreType, endpoints given: etcd, as Calico's calicoctl.
        std::fs::write(
            &p,
            "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nspec:\n  etcdEndpoints: http://10.0.0.2:2379\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let c = DatastoreConfig::from_file(&p);
        assert!(
            matches!(&c, Ok(DatastoreConfig::Etcd { endpoints, .. }) if endpoints == &["http://10.0.0.2:2379"]),
            "{c:?}"
        );
        std::fs::write(&p, "kind: Other\n").unwrap_or_else(|e| panic!("{e}"));
        assert!(DatastoreConfig::from_file(&p).is_err());
        assert!(DatastoreConfig::from_file(&dir.path().join("missing")).is_err());
    }
}
