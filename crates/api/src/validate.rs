//! Shared field checks used by every resource's validation, with Calico's rules.
//!
//! Each check returns `Err(reason)` with a lowercase reason; the caller
//! attaches the field path through [`Errors`].

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// One invalid field: its path (e.g. `spec.blockSize`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field inside the resource, e.g. `spec.ingress[0].action`.
    pub field: String,
    /// Why the value was refused.
    pub reason: String,
}

/// All the reasons one resource was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    /// `Kind(namespace/name)` of the resource.
    pub resource: String,
    /// Every invalid field found (never empty).
    pub errors: Vec<FieldError>,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is invalid: ", self.resource)?;
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", e.field, e.reason)?;
        }
        Ok(())
    }
}

/// Collects field errors while walking a resource.
#[derive(Debug, Default)]
pub struct Errors {
    /// The errors gathered so far.
    pub list: Vec<FieldError>,
}

impl Errors {
    /// Records that `field` is invalid because of `reason`.
    pub fn add(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.list.push(FieldError {
            field: field.into(),
            reason: reason.into(),
        });
    }

    /// Records the error of a check, if any.
    pub fn check(&mut self, field: impl Into<String>, r: Result<(), String>) {
        if let Err(reason) = r {
            self.add(field, reason);
        }
    }
}

/// A DNS-1123 subdomain: lowercase alphanumerics, `-` and `.`, starting and
/// ending with an alphanumeric, at most 253 characters (Calico's rule for names).
pub fn dns1123_subdomain(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("name must not be empty".into());
    }
    if s.len() > 253 {
        return Err(format!(
            "name is {} characters long, the maximum is 253",
            s.len()
        ));
    }
    for part in s.split('.') {
        dns1123_label_inner(part).map_err(|_| {
            format!(
                "name {s:?} must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            )
        })?;
    }
    Ok(())
}

/// A DNS-1123 label: like a subdomain without dots, at most 63 characters.
pub fn dns1123_label(s: &str) -> Result<(), String> {
    if s.len() > 63 {
        return Err(format!("{s:?} is longer than 63 characters"));
    }
    dns1123_label_inner(s).map_err(|_| {
        format!("{s:?} must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character")
    })
}

fn dns1123_label_inner(s: &str) -> Result<(), ()> {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) if alnum(f) && alnum(l) => {}
        _ => return Err(()),
    }
    if b.iter().all(|c| alnum(c) || *c == b'-') {
        Ok(())
    } else {
        Err(())
    }
}

/// A Kubernetes label key: optional DNS prefix and `/`, then a name of at most
/// 63 characters of alphanumerics, `-`, `_`, `.`, starting and ending alphanumeric.
pub fn label_key(k: &str) -> Result<(), String> {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    if let Some(p) = prefix {
        dns1123_subdomain(p).map_err(|_| format!("label key {k:?} has an invalid prefix"))?;
    }
    if name.is_empty() || name.len() > 63 || !qualified_chars(name) {
        return Err(format!(
            "label key {k:?} must be at most 63 alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric"
        ));
    }
    Ok(())
}

/// A Kubernetes label value: empty, or at most 63 characters like a key name.
pub fn label_value(v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Ok(());
    }
    if v.len() > 63 || !qualified_chars(v) {
        return Err(format!(
            "label value {v:?} must be at most 63 alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric"
        ));
    }
    Ok(())
}

fn qualified_chars(s: &str) -> bool {
    let b = s.as_bytes();
    let ok_end = |c: Option<&u8>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    ok_end(b.first())
        && ok_end(b.last())
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Parses a CIDR (`10.0.0.0/8`, `fd00::/64`). A bare address is not a CIDR.
pub fn cidr(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .map_err(|_| format!("{s:?} is not a valid CIDR"))
}

/// Parses a CIDR or a bare address (taken as /32 or /128), as Calico's `nets` fields allow.
pub fn cidr_or_ip(s: &str) -> Result<IpNet, String> {
    if let Ok(n) = s.parse::<IpNet>() {
        return Ok(n);
    }
    s.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("{s:?} is not a valid IP address or CIDR"))
}

/// Parses an IP address.
pub fn ip(s: &str) -> Result<IpAddr, String> {
    s.parse::<IpAddr>()
        .map_err(|_| format!("{s:?} is not a valid IP address"))
}

/// Parses an address with an optional prefix length (`10.0.0.1/24` or `10.0.0.1`),
/// as Node `bgp.ipv4Address` takes.
pub fn ip_with_optional_prefix(s: &str) -> Result<IpAddr, String> {
    match s.split_once('/') {
        Some((a, len)) => {
            let addr = ip(a)?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            match len.parse::<u8>() {
                Ok(l) if l <= max => Ok(addr),
                _ => Err(format!("{s:?} has an invalid prefix length")),
            }
        }
        None => ip(s),
    }
}

/// A MAC address `aa:bb:cc:dd:ee:ff`.
pub fn mac(s: &str) -> Result<(), String> {
    parse_mac(s)
        .map(|_| ())
        .ok_or_else(|| format!("{s:?} is not a valid MAC address"))
}

/// A MAC address `aa:bb:cc:dd:ee:ff` (or with `-`), surrounding spaces
/// ignored.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.trim().split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (byte, p) in mac.iter_mut().zip(&parts) {
        if p.len() != 2 || !p.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        *byte = u8::from_str_radix(p, 16).ok()?;
    }
    Some(mac)
}

/// An interface name as Calico's validator takes it (`^[a-zA-Z0-9_.-]{1,15}$`):
/// a name Linux accepts, and one that nft and every other consumer can
/// carry between quotes without escaping.
pub fn interface_name(s: &str) -> Result<(), String> {
    if s.is_empty()
        || s.len() > 15
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(format!(
            "{s:?} is not a valid interface name (1 to 15 characters of a-z, A-Z, 0-9, '_', '.' and '-')"
        ));
    }
    Ok(())
}

/// One of a fixed set of values.
pub fn one_of(value: &str, allowed: &[&str]) -> Result<(), String> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(format!("{value:?} is not one of {}", allowed.join(", ")))
    }
}

/// A Go-style duration as Calico's config fields take (`90s`, `1m30s`, `500ms`, `2h`).
pub fn duration(s: &str) -> Result<(), String> {
    parse_duration(s).map(|_| ())
}

/// Parses a Go-style duration into seconds (negative for a leading `-`).
pub fn parse_duration(s: &str) -> Result<f64, String> {
    let err = || format!("{s:?} is not a valid duration (e.g. 90s, 1m30s, 500ms)");
    let (sign, mut rest) = match s.strip_prefix('-') {
        Some(r) => (-1.0, r),
        None => (1.0, s),
    };
    if rest.is_empty() {
        return Err(err());
    }
    if rest == "0" {
        return Ok(0.0);
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        let value: f64 = if n == 0 {
            return Err(err());
        } else {
            rest[..n].parse().map_err(|_| err())?
        };
        rest = &rest[n..];
        let (unit, scale) = [
            ("ns", 1e-9),
            ("us", 1e-6),
            ("µs", 1e-6),
            ("ms", 1e-3),
            ("s", 1.0),
            ("m", 60.0),
            ("h", 3600.0),
        ]
        .into_iter()
        .filter(|(u, _)| rest.starts_with(*u))
        .max_by_key(|(u, _)| u.len())
        .ok_or_else(err)?;
        total += value * scale;
        rest = &rest[unit.len()..];
    }
    Ok(sign * total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(dns1123_subdomain("default-ipv4-ippool").is_ok());
        assert!(dns1123_subdomain("node.host-1").is_ok());
        assert!(dns1123_subdomain("Bad").is_err());
        assert!(dns1123_subdomain("-bad").is_err());
        assert!(dns1123_subdomain("bad.").is_err());
        assert!(dns1123_subdomain("").is_err());
        assert!(dns1123_subdomain(&"a".repeat(254)).is_err());
        assert!(dns1123_label("a.b").is_err());
    }

    #[test]
    fn labels() {
        assert!(label_key("app").is_ok());
        assert!(label_key("kubernetes.io/hostname").is_ok());
        assert!(label_key("projectcalico.org/My_Key.1").is_ok());
        assert!(label_key("bad key").is_err());
        assert!(label_key("/x").is_err());
        assert!(label_value("").is_ok());
        assert!(label_value("v1.2_3").is_ok());
        assert!(label_value("-x").is_err());
    }

    #[test]
    fn addresses() {
        assert!(cidr("10.0.0.0/8").is_ok());
        assert!(cidr("10.0.0.0").is_err());
        assert!(cidr("10.0.0.0/33").is_err());
        assert!(cidr_or_ip("10.0.0.1").is_ok());
        assert!(ip_with_optional_prefix("10.0.0.1/24").is_ok());
        assert!(ip_with_optional_prefix("10.0.0.1/40").is_err());
        assert!(mac("ee:ee:ee:ee:ee:ee").is_ok());
        assert!(mac("ee:ee:ee:ee:ee").is_err());
        assert_eq!(
            parse_mac(" 02-00-0A:ff:10:2b "),
            Some([2, 0, 0x0a, 0xff, 0x10, 0x2b])
        );
        assert_eq!(parse_mac("2:0:a:ff:10:2b"), None, "two digits each");
        assert_eq!(parse_mac("02:00:0a:ff:10:+b"), None);
        assert!(interface_name("eth0").is_ok());
        assert!(interface_name("a-very-long-interface").is_err());
        assert!(interface_name("cali0ef24ba.1_x").is_ok());
        for bad in [
            "", "cali\"x", "a b", "a/b", "a:b", "ca\\li", "calé", "a\nb", "x*",
        ] {
            assert!(interface_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn durations() {
        for ok in ["90s", "1m30s", "500ms", "2h", "0", "1.5s"] {
            assert!(duration(ok).is_ok(), "{ok}");
        }
        for bad in ["", "s", "10", "10x", "1m30"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_duration("1m30s"), Ok(90.0));
        assert_eq!(parse_duration("1h"), Ok(3600.0));
        assert_eq!(parse_duration("-2s"), Ok(-2.0));
        assert_eq!(parse_duration("0"), Ok(0.0));
        assert!((parse_duration("250ms").unwrap() - 0.25).abs() < 1e-12);
    }
}
