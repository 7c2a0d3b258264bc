//! Value types shared by several kinds: AS numbers, ports, protocols, secret refs.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A BGP AS number, 0..=4294967295. YAML takes a number or Calico's
/// "AS dot" string form (`"1.10"` = 1×65536+10); it is written back as a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AsNumber(pub u32);

impl AsNumber {
    /// Parses `64512` or `1.10`.
    pub fn parse(s: &str) -> Result<AsNumber, String> {
        let err = || {
            format!(
                "{s:?} is not a valid AS number (0 to 4294967295, or AS dot notation like 1.10)"
            )
        };
        match s.split_once('.') {
            Some((hi, lo)) => {
                let hi: u16 = hi.parse().map_err(|_| err())?;
                let lo: u16 = lo.parse().map_err(|_| err())?;
                Ok(AsNumber((u32::from(hi) << 16) | u32::from(lo)))
            }
            None => s.parse::<u32>().map(AsNumber).map_err(|_| err()),
        }
    }
}

impl fmt::Display for AsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for AsNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.0)
    }
}

impl<'de> Deserialize<'de> for AsNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match NumOrStr::deserialize(d)? {
            NumOrStr::Num(n) => u32::try_from(n).map(AsNumber).map_err(|_| {
                serde::de::Error::custom(format!("AS number {n} is out of range (0 to 4294967295)"))
            }),
            NumOrStr::Str(s) => AsNumber::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrStr {
    Num(i64),
    Str(String),
}

/// A port match: a number, a range `"min:max"`, or a named port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Port {
    /// One port.
    Number(u16),
    /// An inclusive range.
    Range(u16, u16),
    /// A named port (resolved against endpoints' `ports`).
    Named(String),
}

impl Port {
    /// Parses `80`, `8000:8080` or a port name, with Calico's rules.
    pub fn parse(s: &str) -> Result<Port, String> {
        if let Some((a, b)) = s.split_once(':') {
            let a: u16 = a
                .trim()
                .parse()
                .map_err(|_| format!("invalid port range {s:?}: {a:?} is not a port number"))?;
            let b: u16 = b
                .trim()
                .parse()
                .map_err(|_| format!("invalid port range {s:?}: {b:?} is not a port number"))?;
            if a > b {
                return Err(format!(
                    "invalid port range {s:?}: minimum {a} is greater than maximum {b}"
                ));
            }
            return Ok(if a == b {
                Port::Number(a)
            } else {
                Port::Range(a, b)
            });
        }
        if let Ok(n) = s.parse::<i64>() {
            return u16::try_from(n)
                .map(Port::Number)
                .map_err(|_| format!("port {n} is out of range (0 to 65535)"));
        }
        crate::validate::dns1123_label(s).map_err(|_| {
            format!("{s:?} is not a port number, a range like 8000:8080, or a valid port name")
        })?;
        Ok(Port::Named(s.to_string()))
    }
}

impl Serialize for Port {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Port::Number(n) => s.serialize_u16(*n),
            Port::Range(a, b) => s.serialize_str(&format!("{a}:{b}")),
            Port::Named(n) => s.serialize_str(n),
        }
    }
}

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match NumOrStr::deserialize(d)? {
            NumOrStr::Num(n) => u16::try_from(n).map(Port::Number).map_err(|_| {
                serde::de::Error::custom(format!("port {n} is out of range (0 to 65535)"))
            }),
            NumOrStr::Str(s) => Port::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// An IP protocol: a name Calico knows or a number 1..=255.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `TCP`, `UDP`, `ICMP`, `ICMPv6`, `SCTP` or `UDPLite` (as written).
    Named(String),
    /// A protocol number.
    Number(u8),
}

const PROTOCOL_NAMES: &[&str] = &["TCP", "UDP", "ICMP", "ICMPv6", "SCTP", "UDPLite"];

impl Protocol {
    /// Parses a protocol name (case-insensitive, as Calico) or number.
    pub fn parse(s: &str) -> Result<Protocol, String> {
        if let Ok(n) = s.parse::<i64>() {
            return match u8::try_from(n) {
                Ok(n) if n >= 1 => Ok(Protocol::Number(n)),
                _ => Err(format!("protocol number {n} is out of range (1 to 255)")),
            };
        }
        if PROTOCOL_NAMES.iter().any(|p| p.eq_ignore_ascii_case(s)) {
            Ok(Protocol::Named(s.to_string()))
        } else {
            Err(format!(
                "{s:?} is not a valid protocol (TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a number 1 to 255)"
            ))
        }
    }

    /// The canonical upper-case name, or the number as text.
    pub fn canonical(&self) -> String {
        match self {
            Protocol::Named(n) => PROTOCOL_NAMES
                .iter()
                .find(|p| p.eq_ignore_ascii_case(n))
                .map_or_else(|| n.clone(), |p| p.to_string()),
            Protocol::Number(n) => n.to_string(),
        }
    }

    /// Whether rules with this protocol may match on ports.
    pub fn supports_ports(&self) -> bool {
        matches!(
            self.canonical().as_str(),
            "TCP" | "UDP" | "SCTP" | "UDPLite" | "6" | "17" | "132" | "136"
        )
    }

    /// Whether this is ICMP (v4 or v6).
    pub fn is_icmp(&self) -> bool {
        matches!(self.canonical().as_str(), "ICMP" | "ICMPv6" | "1" | "58")
    }
}

impl Serialize for Protocol {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Protocol::Named(n) => s.serialize_str(n),
            Protocol::Number(n) => s.serialize_u8(*n),
        }
    }
}

impl<'de> Deserialize<'de> for Protocol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match NumOrStr::deserialize(d)? {
            NumOrStr::Num(n) => Protocol::parse(&n.to_string()).map_err(serde::de::Error::custom),
            NumOrStr::Str(s) => Protocol::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// A reference to a key of a Kubernetes secret (BGP passwords).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeyRef {
    /// Secret name.
    pub name: String,
    /// Key within the secret.
    pub key: String,
    /// Whether the secret or key may be missing (Kubernetes `SecretKeySelector`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// A password given by secret reference.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPPassword {
    /// Where the password is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeyRef>,
}

/// Checks an optional selector string, recording a parse error under `field`.
pub(crate) fn check_selector(
    errs: &mut crate::validate::Errors,
    field: &str,
    sel: &Option<String>,
) {
    if let Some(s) = sel
        && let Err(e) = crate::selector::Selector::parse(s)
    {
        errs.add(field, e.to_string());
    }
}

/// Writes a float that holds an integer as an integer (`100`, not `100.0`), as Go does.
pub(crate) mod order_float {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes an optional policy order.
    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => s.serialize_i64(*f as i64),
            Some(f) => s.serialize_f64(*f),
            None => s.serialize_none(),
        }
    }

    /// Deserializes an optional policy order.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Option::<f64>::deserialize(d)
    }
}

/// `skip_serializing_if` helper for `false` booleans.
pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_numbers() {
        assert_eq!(AsNumber::parse("64512"), Ok(AsNumber(64512)));
        assert_eq!(AsNumber::parse("1.10"), Ok(AsNumber(65546)));
        assert_eq!(AsNumber::parse("4294967295"), Ok(AsNumber(u32::MAX)));
        assert!(AsNumber::parse("4294967296").is_err());
        assert!(AsNumber::parse("-1").is_err());
        assert!(serde_json::from_str::<AsNumber>("4294967296").is_err());
        assert_eq!(
            serde_json::from_str::<AsNumber>("\"1.1\"").ok(),
            Some(AsNumber(65537))
        );
    }

    #[test]
    fn ports() {
        assert_eq!(Port::parse("80"), Ok(Port::Number(80)));
        assert_eq!(Port::parse("8000:8080"), Ok(Port::Range(8000, 8080)));
        assert_eq!(Port::parse("http"), Ok(Port::Named("http".into())));
        assert!(Port::parse("8080:8000").is_err());
        assert!(Port::parse("70000").is_err());
        assert!(Port::parse("1:70000").is_err());
        assert!(Port::parse("Bad Name").is_err());
        assert_eq!(
            serde_json::to_string(&Port::Range(1, 2)).ok().as_deref(),
            Some("\"1:2\"")
        );
        assert!(serde_json::from_str::<Port>("-1").is_err());
    }

    #[test]
    fn protocols() {
        assert!(Protocol::parse("TCP").is_ok_and(|p| p.supports_ports()));
        assert!(Protocol::parse("udp").is_ok_and(|p| p.supports_ports()));
        assert!(Protocol::parse("ICMPv6").is_ok_and(|p| p.is_icmp()));
        assert_eq!(Protocol::parse("6"), Ok(Protocol::Number(6)));
        assert!(Protocol::parse("0").is_err());
        assert!(Protocol::parse("256").is_err());
        assert!(Protocol::parse("GRE").is_err());
    }
}
