//! A minimal file logger for the plugins. CNI plugins must never write logs
//! to stdout (it carries the result); we append to `log_file_path`
//! (default /var/log/calico/cni/cni.log) and drop messages we cannot write.

use std::io::Write;
use std::sync::OnceLock;

use cni_spec::config::NetConf;
use cni_spec::env::Env;

/// Calico's default CNI log file.
pub const DEFAULT_LOG_FILE: &str = "/var/log/calico/cni/cni.log";

static TARGET: OnceLock<(String, String)> = OnceLock::new();

/// Sets the log file and the line prefix for this process.
pub fn init(conf: &NetConf, plugin: &str, env: &Env) {
    let level = conf
        .log_level
        .as_deref()
        .unwrap_or("info")
        .to_ascii_lowercase();
    if level == "none" || level == "off" {
        return;
    }
    let path = conf
        .log_file_path
        .clone()
        .unwrap_or_else(|| DEFAULT_LOG_FILE.to_string());
    let prefix = format!(
        "{plugin} pid={} container={}",
        std::process::id(),
        env.container_id
    );
    let _ = TARGET.set((path, prefix));
}

/// Appends one line to the log file, if one is set and writable.
pub fn info(msg: &str) {
    let Some((path, prefix)) = TARGET.get() else {
        return;
    };
    let p = std::path::Path::new(path);
    if let Some(dir) = p.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
    {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let _ = writeln!(f, "{now} {prefix} {msg}");
    }
}
