//! Kernel parameters under `/proc/sys`.
//!
//! `/proc/sys/net` shows the network namespace of the thread that opens the
//! file: call these inside [`crate::NetNs::run`] for another namespace.

use std::io;

/// Writes `value` to `/proc/sys/<key with dots as slashes>`, e.g.
/// `net.ipv4.conf.cali1234.proxy_arp`. Interface names may not contain
/// dots here; use [`set_iface`] for per-interface keys.
pub fn set(key: &str, value: &str) -> io::Result<()> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    write(&path, value)
}

/// Reads a kernel parameter, trimmed.
pub fn get(key: &str) -> io::Result<String> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    read(&path)
}

/// Writes a per-interface parameter: `net/<family>/<table>/<iface>/<name>`,
/// e.g. (`ipv4`, `conf`, `cali1234`, `proxy_arp`).
pub fn set_iface(
    family: &str,
    table: &str,
    iface: &str,
    name: &str,
    value: &str,
) -> io::Result<()> {
    write(&iface_path(family, table, iface, name), value)
}

/// Reads a per-interface parameter.
pub fn get_iface(family: &str, table: &str, iface: &str, name: &str) -> io::Result<String> {
    read(&iface_path(family, table, iface, name))
}

fn iface_path(family: &str, table: &str, iface: &str, name: &str) -> String {
    format!("/proc/sys/net/{family}/{table}/{iface}/{name}")
}

fn write(path: &str, value: &str) -> io::Result<()> {
    std::fs::write(path, value).map_err(|e| io::Error::new(e.kind(), format!("write {path}: {e}")))
}

fn read(path: &str) -> io::Result<String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| io::Error::new(e.kind(), format!("read {path}: {e}")))
}
