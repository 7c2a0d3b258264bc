//! The CNI result: one version-independent type, written in the exact wire
//! format of a chosen spec version and read back from any supported one.
//!
//! Wire rules applied:
//! - every version: `{"cniVersion", "interfaces", "ips", "routes", "dns"}`,
//!   each list omitted when empty (IPAM plugins leave out `interfaces`) and
//!   `dns` omitted when it has nothing in it, as in the spec's examples;
//! - 0.3.0, 0.3.1, 0.4.0: each IP carries `"version": "4"` or `"6"`, which
//!   must match its address;
//! - 1.0.0 and later: no per-IP `version`;
//! - interface `mtu` exists from libcni's 1.x result type (written for
//!   1.0.0 and 1.1.0, as libcni does; spec 1.1.0 documents it) and is not
//!   written for 0.x results.
//!
//! Addresses are `ip/prefix` text on the wire (`"10.0.0.5/32"`) and keep
//! their host bits, as libcni's `ParseCIDR` does.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::CniError;
use crate::version::CniVersion;

/// A plugin's result, independent of spec version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniResult {
    /// The interfaces the plugin created (empty for IPAM plugins).
    pub interfaces: Vec<Interface>,
    /// The IP configuration assigned.
    pub ips: Vec<IpConfig>,
    /// The routes to install in the sandbox.
    pub routes: Vec<Route>,
    /// DNS information.
    pub dns: Dns,
}

/// One interface in a result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interface {
    /// The interface name.
    pub name: String,
    /// The hardware address; empty when L2 addresses are not meaningful
    /// (then omitted on the wire).
    pub mac: String,
    /// The netns path (or VM id) for sandbox interfaces; `None` for host interfaces.
    pub sandbox: Option<String>,
    /// The interface MTU (1.x results only).
    pub mtu: Option<u32>,
}

/// One IP configuration in a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpConfig {
    /// The address, host bits kept (the part before `/`).
    pub address: IpAddr,
    /// The prefix length (the part after `/`).
    pub prefix: u8,
    /// The subnet's default gateway, if any.
    pub gateway: Option<IpAddr>,
    /// Index into [`CniResult::interfaces`]; `None` in IPAM results.
    pub interface: Option<usize>,
}

/// One route in a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The destination: address and prefix length.
    pub dst: (IpAddr, u8),
    /// The next hop; `None` means the plugin's default gateway.
    pub gw: Option<IpAddr>,
}

/// DNS information, in results and in network configurations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    /// Priority-ordered nameserver addresses.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_vec"
    )]
    pub nameservers: Vec<String>,
    /// The local domain; empty when absent.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_string"
    )]
    pub domain: String,
    /// Priority-ordered search domains.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_vec"
    )]
    pub search: Vec<String>,
    /// Resolver options.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_vec"
    )]
    pub options: Vec<String>,
}

impl Dns {
    /// Whether nothing is set (then the `dns` key is omitted from results).
    pub fn is_empty(&self) -> bool {
        self.nameservers.is_empty()
            && self.domain.is_empty()
            && self.search.is_empty()
            && self.options.is_empty()
    }

    fn to_value(&self) -> Value {
        let mut m = Map::new();
        if !self.nameservers.is_empty() {
            m.insert("nameservers".into(), strings(&self.nameservers));
        }
        if !self.domain.is_empty() {
            m.insert("domain".into(), Value::from(self.domain.as_str()));
        }
        if !self.search.is_empty() {
            m.insert("search".into(), strings(&self.search));
        }
        if !self.options.is_empty() {
            m.insert("options".into(), strings(&self.options));
        }
        Value::Object(m)
    }

    fn from_value(v: &Value) -> Result<Dns, CniError> {
        if v.is_null() {
            return Ok(Dns::default());
        }
        let obj = object(v, "dns")?;
        Ok(Dns {
            nameservers: string_list(obj, "nameservers", "dns")?,
            domain: opt_string(obj, "domain", "dns")?.unwrap_or_default(),
            search: string_list(obj, "search", "dns")?,
            options: string_list(obj, "options", "dns")?,
        })
    }
}

fn null_vec<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

fn null_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// Writes an address and prefix as CIDR text, e.g. `ip_net(10.0.0.5, 32)`
/// is `"10.0.0.5/32"`.
pub fn ip_net(addr: IpAddr, prefix: u8) -> String {
    format!("{addr}/{prefix}")
}

/// Parses CIDR text like `"10.0.0.5/32"` or `"fd00::1/128"` into the address
/// (host bits kept) and prefix length. The prefix must be plain decimal
/// digits, at most 32 for IPv4 and 128 for IPv6. Failures are code 6.
pub fn parse_ip_net(s: &str) -> Result<(IpAddr, u8), CniError> {
    let bad = |why: &str| CniError::decoding_failure(format!("invalid CIDR {s:?}: {why}"));
    let (addr, prefix) = s.split_once('/').ok_or_else(|| bad("missing /prefix"))?;
    let addr: IpAddr = addr.parse().map_err(|_| bad("bad IP address"))?;
    if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("bad prefix length"));
    }
    let prefix: u8 = prefix.parse().map_err(|_| bad("bad prefix length"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(bad("prefix length out of range"));
    }
    Ok((addr, prefix))
}

fn ip_version(addr: IpAddr) -> &'static str {
    if addr.is_ipv4() { "4" } else { "6" }
}

fn strings(list: &[String]) -> Value {
    Value::Array(list.iter().map(|s| Value::from(s.as_str())).collect())
}

impl Interface {
    fn to_value(&self, version: CniVersion) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), Value::from(self.name.as_str()));
        if !self.mac.is_empty() {
            m.insert("mac".into(), Value::from(self.mac.as_str()));
        }
        if !version.has_ip_version_field()
            && let Some(mtu) = self.mtu
        {
            m.insert("mtu".into(), Value::from(mtu));
        }
        if let Some(sandbox) = &self.sandbox {
            m.insert("sandbox".into(), Value::from(sandbox.as_str()));
        }
        Value::Object(m)
    }

    fn from_value(v: &Value) -> Result<Interface, CniError> {
        let obj = object(v, "interfaces[]")?;
        let mtu = match obj.get("mtu") {
            None | Some(Value::Null) => None,
            Some(m) => Some(
                m.as_u64()
                    .and_then(|m| u32::try_from(m).ok())
                    .ok_or_else(|| field_error("interfaces[].mtu", "a non-negative integer"))?,
            ),
        };
        Ok(Interface {
            name: opt_string(obj, "name", "interfaces[]")?.unwrap_or_default(),
            mac: opt_string(obj, "mac", "interfaces[]")?.unwrap_or_default(),
            sandbox: opt_string(obj, "sandbox", "interfaces[]")?,
            mtu,
        })
    }
}

impl IpConfig {
    fn to_value(self, version: CniVersion) -> Value {
        let mut m = Map::new();
        if version.has_ip_version_field() {
            m.insert("version".into(), Value::from(ip_version(self.address)));
        }
        if let Some(i) = self.interface {
            m.insert("interface".into(), Value::from(i));
        }
        m.insert(
            "address".into(),
            Value::from(ip_net(self.address, self.prefix)),
        );
        if let Some(gw) = self.gateway {
            m.insert("gateway".into(), Value::from(gw.to_string()));
        }
        Value::Object(m)
    }

    fn from_value(v: &Value) -> Result<IpConfig, CniError> {
        let obj = object(v, "ips[]")?;
        let address = opt_string(obj, "address", "ips[]")?
            .ok_or_else(|| field_error("ips[].address", "a CIDR string"))?;
        let (address, prefix) = parse_ip_net(&address)?;
        let gateway = opt_ip(obj, "gateway", "ips[]")?;
        let interface = match obj.get("interface") {
            None | Some(Value::Null) => None,
            Some(i) => Some(
                i.as_u64()
                    .and_then(|i| usize::try_from(i).ok())
                    .ok_or_else(|| field_error("ips[].interface", "a non-negative integer"))?,
            ),
        };
        if let Some(ver) = opt_string(obj, "version", "ips[]")? {
            let family_ok = |a: IpAddr| ip_version(a) == ver;
            if (ver != "4" && ver != "6")
                || !family_ok(address)
                || gateway.is_some_and(|g| !family_ok(g))
            {
                return Err(CniError::decoding_failure(format!(
                    "ip version {ver:?} does not match address {}",
                    ip_net(address, prefix)
                )));
            }
        }
        Ok(IpConfig {
            address,
            prefix,
            gateway,
            interface,
        })
    }
}

impl Route {
    fn to_value(self) -> Value {
        let mut m = Map::new();
        m.insert("dst".into(), Value::from(ip_net(self.dst.0, self.dst.1)));
        if let Some(gw) = self.gw {
            m.insert("gw".into(), Value::from(gw.to_string()));
        }
        Value::Object(m)
    }

    fn from_value(v: &Value) -> Result<Route, CniError> {
        let obj = object(v, "routes[]")?;
        let dst = opt_string(obj, "dst", "routes[]")?
            .ok_or_else(|| field_error("routes[].dst", "a CIDR string"))?;
        Ok(Route {
            dst: parse_ip_net(&dst)?,
            gw: opt_ip(obj, "gw", "routes[]")?,
        })
    }
}

impl CniResult {
    /// The result in the exact wire format of `version` (see the module
    /// docs), with `cniVersion` set to it.
    pub fn to_json(&self, version: CniVersion) -> Value {
        let mut m = Map::new();
        m.insert("cniVersion".into(), Value::from(version.as_str()));
        if !self.interfaces.is_empty() {
            let list = self.interfaces.iter().map(|i| i.to_value(version));
            m.insert("interfaces".into(), Value::Array(list.collect()));
        }
        if !self.ips.is_empty() {
            let list = self.ips.iter().map(|ip| ip.to_value(version));
            m.insert("ips".into(), Value::Array(list.collect()));
        }
        if !self.routes.is_empty() {
            let list = self.routes.iter().map(|r| r.to_value());
            m.insert("routes".into(), Value::Array(list.collect()));
        }
        if !self.dns.is_empty() {
            m.insert("dns".into(), self.dns.to_value());
        }
        Value::Object(m)
    }

    /// Reads a result of any supported version, e.g. a `prevResult` or a
    /// delegated IPAM plugin's output.
    ///
    /// `cniVersion` may be absent (the spec's `prevResult` examples omit
    /// it); when present it must be a supported version (code 1 otherwise).
    /// Missing or `null` lists read as empty; unknown keys are ignored. A
    /// 0.x per-IP `version` must match the address family. Other shape
    /// errors are code 6.
    pub fn from_json(v: &Value) -> Result<CniResult, CniError> {
        let obj = object(v, "result")?;
        match obj.get("cniVersion") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => {
                CniVersion::parse(s)?;
            }
            Some(_) => return Err(field_error("cniVersion", "a string")),
        }
        Ok(CniResult {
            interfaces: list(obj, "interfaces", Interface::from_value)?,
            ips: list(obj, "ips", IpConfig::from_value)?,
            routes: list(obj, "routes", Route::from_value)?,
            dns: obj.get("dns").map_or(Ok(Dns::default()), Dns::from_value)?,
        })
    }

    /// This result as it survives a round trip through `version`'s wire
    /// format: the same, except that 0.x results cannot carry interface MTUs.
    #[must_use]
    pub fn for_version(&self, version: CniVersion) -> CniResult {
        let mut r = self.clone();
        if version.has_ip_version_field() {
            for i in &mut r.interfaces {
                i.mtu = None;
            }
        }
        r
    }
}

fn field_error(field: &str, want: &str) -> CniError {
    CniError::decoding_failure(format!("invalid result: {field} must be {want}"))
}

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, CniError> {
    v.as_object().ok_or_else(|| field_error(what, "an object"))
}

fn opt_string(obj: &Map<String, Value>, key: &str, ctx: &str) -> Result<Option<String>, CniError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(field_error(&format!("{ctx}.{key}"), "a string")),
    }
}

fn opt_ip(obj: &Map<String, Value>, key: &str, ctx: &str) -> Result<Option<IpAddr>, CniError> {
    match opt_string(obj, key, ctx)? {
        None => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| field_error(&format!("{ctx}.{key}"), "an IP address")),
    }
}

fn string_list(obj: &Map<String, Value>, key: &str, ctx: &str) -> Result<Vec<String>, CniError> {
    list(obj, key, |v| {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| field_error(&format!("{ctx}.{key}[]"), "a string"))
    })
}

fn list<T>(
    obj: &Map<String, Value>,
    key: &str,
    each: impl Fn(&Value) -> Result<T, CniError>,
) -> Result<Vec<T>, CniError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(each).collect(),
        Some(_) => Err(field_error(key, "a list")),
    }
}

#[cfg(test)]
mod tests;
