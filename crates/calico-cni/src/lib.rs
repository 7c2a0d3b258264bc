//! Shared plumbing of the `calico` and `calico-ipam` CNI plugins: reading
//! one invocation (environment + stdin), finding the datastore and the node
//! name the way Calico's plugins do, logging to a file (never to stdout),
//! and printing a result or a CNI error.

pub mod datastore_lock;
pub mod ipam;
pub mod k8s;
pub mod log;
pub mod plugin;

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

use calico_datastore::config::Settings;
use calico_datastore::{ConfigError, Store, StoreError};
use cni_spec::config::NetConf;
use cni_spec::env::{Command, Env};
use cni_spec::error::CniError;
use serde_json::Value;

/// Where calico-node writes the node name for the plugins.
pub const NODENAME_FILE: &str = "/var/lib/calico/nodename";

/// One plugin invocation.
pub struct Invocation {
    /// The CNI environment.
    pub env: Env,
    /// The network configuration from stdin.
    pub conf: NetConf,
    /// Stdin as given (passed on to a delegated IPAM plugin).
    pub raw: Vec<u8>,
}

/// The `cniVersion` to answer in: the config's, else the newest we support.
pub fn answer_version(stdin: &[u8]) -> String {
    serde_json::from_slice::<Value>(stdin)
        .ok()
        .and_then(|v| {
            v.get("cniVersion")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .filter(|v| cni_spec::version::SUPPORTED.contains(&v.as_str()))
        .unwrap_or_else(|| "1.1.0".to_string())
}

/// The largest network configuration read from stdin (16 MiB: a real one
/// is a few KiB).
pub const MAX_CONFIG: u64 = 16 << 20;

/// Reads the network configuration from `r`, at most [`MAX_CONFIG`] bytes
/// (so memory stays bounded whatever the runtime sends): more is a
/// decoding failure (code 6) that names the limit, as is a read error.
pub fn read_config(r: impl Read) -> Result<Vec<u8>, CniError> {
    let mut buf = Vec::new();
    r.take(MAX_CONFIG + 1).read_to_end(&mut buf).map_err(|e| {
        CniError::decoding_failure(format!("cannot read the network config from stdin: {e}"))
    })?;
    if buf.len() as u64 > MAX_CONFIG {
        return Err(CniError::decoding_failure(format!(
            "the network config on stdin is larger than {} MiB (the most a plugin reads)",
            MAX_CONFIG >> 20
        )));
    }
    Ok(buf)
}

/// Runs a plugin: reads the invocation, answers VERSION itself, hands the
/// rest to `f`, and prints its result (or the CNI error) on stdout.
pub fn main_with(
    plugin: &str,
    f: impl FnOnce(&Invocation) -> Result<Option<Value>, CniError>,
) -> ExitCode {
    let read = read_config(std::io::stdin().lock());
    let stdin = read.as_deref().unwrap_or_default();
    let version = answer_version(stdin);
    let out = (|| {
        let stdin = read?;
        let env = Env::from_lookup(|k| std::env::var(k).ok())?;
        if env.command == Command::Version {
            return Ok(Some(cni_spec::version::version_result(&version)));
        }
        let conf = NetConf::parse(&stdin)?;
        conf.version()?;
        log::init(&conf, plugin, &env);
        let inv = Invocation {
            env,
            conf,
            raw: stdin,
        };
        let r = f(&inv);
        let command = inv.env.command.as_str();
        match &r {
            Ok(_) => ::log::info!("{command} done"),
            Err(e) => ::log::error!("{command} failed (code {}): {}", e.code, e.msg),
        }
        r
    })();
    match out {
        Ok(Some(v)) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            println!("{}", e.to_json(&version));
            ExitCode::FAILURE
        }
    }
}

/// The datastore named by the network config (`datastore_type`,
/// `datastore_path`, `etcd_*`), falling back to the environment.
pub fn datastore(conf: &NetConf) -> Result<Arc<dyn Store>, CniError> {
    datastore_config(conf)?.connect().map_err(store_error)
}

/// Where the datastore is, from the network config, else the environment.
pub fn datastore_config(conf: &NetConf) -> Result<calico_datastore::DatastoreConfig, CniError> {
    let env = Settings::from_lookup(|k| std::env::var(k).ok());
    let s = Settings {
        datastore_type: conf.datastore_type.clone().or(env.datastore_type),
        datastore_path: conf.datastore_path.clone().or(env.datastore_path),
        etcd_endpoints: conf.etcd_endpoints.clone().or(env.etcd_endpoints),
        etcd_key_file: conf.etcd_key_file.clone().or(env.etcd_key_file),
        etcd_cert_file: conf.etcd_cert_file.clone().or(env.etcd_cert_file),
        etcd_ca_cert_file: conf.etcd_ca_cert_file.clone().or(env.etcd_ca_cert_file),
        etcd_username: env.etcd_username,
        etcd_password: env.etcd_password,
    };
    s.resolve()
        .map_err(|e: ConfigError| CniError::invalid_network_config(e.to_string()))
}

/// Maps a datastore failure to a CNI error: unreachable is "try again later" (11).
pub fn store_error(e: StoreError) -> CniError {
    match e {
        StoreError::Unavailable { .. } => CniError::try_again_later(e.to_string()),
        other => CniError::io_failure(other.to_string()),
    }
}

/// The node name: `nodename` in the config, else the file calico-node
/// writes (`nodename_file`, default /var/lib/calico/nodename), else the hostname.
pub fn nodename(conf: &NetConf) -> String {
    if let Some(n) = conf.nodename.as_deref().filter(|n| !n.is_empty()) {
        return n.to_string();
    }
    let file = conf.nodename_file.as_deref().unwrap_or(NODENAME_FILE);
    if let Ok(n) = std::fs::read_to_string(file) {
        let n = n.trim();
        if !n.is_empty() {
            return n.to_string();
        }
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Prints a CNI error saying `plugin` is not implemented yet (the `calico`
/// plugin until its issue lands).
pub fn not_yet(plugin: &str) -> ExitCode {
    let e = CniError::new(
        100,
        format!("{plugin} (calico-rs) is not implemented yet"),
        "",
    );
    println!("{}", e.to_json("1.1.0"));
    ExitCode::FAILURE
}
