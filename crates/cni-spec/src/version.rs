//! The CNI spec versions this crate speaks, and the `VERSION` command's reply.
//!
//! Supported: 0.3.0 and 0.3.1 (rich result with `interfaces`/`ips`, chaining),
//! 0.4.0 (adds `CHECK` and `prevResult` on `DEL`), 1.0.0 (drops the per-IP
//! `version` field from results) and 1.1.0 (adds `GC` and `STATUS`).
//! Versions 0.1.0 and 0.2.0 use the older `ip4`/`ip6` result shape and are
//! not supported: asking for them is error code 1.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::error::CniError;

/// Every spec version this crate supports, oldest first, as the `VERSION`
/// command reports them in `supportedVersions`.
pub const SUPPORTED: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// One supported CNI spec version. Ordered oldest to newest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CniVersion {
    /// Spec 0.3.0: rich result type, plugin chaining.
    V0_3_0,
    /// Spec 0.3.1: typo fixes only.
    V0_3_1,
    /// Spec 0.4.0: the `CHECK` command, `prevResult` on `DEL`.
    V0_4_0,
    /// Spec 1.0.0: results drop the per-IP `version` field.
    V1_0_0,
    /// Spec 1.1.0: the `GC` and `STATUS` commands, interface `mtu`.
    V1_1_0,
}

impl CniVersion {
    /// Every version, oldest first (same order as [`SUPPORTED`]).
    pub const ALL: [CniVersion; 5] = [
        CniVersion::V0_3_0,
        CniVersion::V0_3_1,
        CniVersion::V0_4_0,
        CniVersion::V1_0_0,
        CniVersion::V1_1_0,
    ];

    /// The newest version this crate implements.
    pub const LATEST: CniVersion = CniVersion::V1_1_0;

    /// The version as written on the wire, e.g. `"0.4.0"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CniVersion::V0_3_0 => "0.3.0",
            CniVersion::V0_3_1 => "0.3.1",
            CniVersion::V0_4_0 => "0.4.0",
            CniVersion::V1_0_0 => "1.0.0",
            CniVersion::V1_1_0 => "1.1.0",
        }
    }

    /// Parses a version string. Anything but an exact supported version
    /// (see [`SUPPORTED`]) is error code 1, "incompatible CNI version".
    pub fn parse(s: &str) -> Result<CniVersion, CniError> {
        CniVersion::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                CniError::incompatible_version(format!(
                    "config version {s:?} is not supported; plugin supports {}",
                    SUPPORTED.join(", ")
                ))
            })
    }

    /// Whether this version has the `CHECK` command (0.4.0 and later).
    pub fn supports_check(self) -> bool {
        self >= CniVersion::V0_4_0
    }

    /// Whether this version has the `GC` and `STATUS` commands (1.1.0 and later).
    pub fn supports_gc_status(self) -> bool {
        self >= CniVersion::V1_1_0
    }

    /// Whether results of this version carry `"version": "4"|"6"` on each IP
    /// (0.3.x and 0.4.0 do; 1.0.0 dropped it).
    pub fn has_ip_version_field(self) -> bool {
        self < CniVersion::V1_0_0
    }
}

impl fmt::Display for CniVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CniVersion {
    type Err = CniError;

    fn from_str(s: &str) -> Result<CniVersion, CniError> {
        CniVersion::parse(s)
    }
}

/// The reply to the `VERSION` command:
/// `{"cniVersion": cni_version, "supportedVersions": [..SUPPORTED]}`.
pub fn version_result(cni_version: &str) -> Value {
    serde_json::json!({
        "cniVersion": cni_version,
        "supportedVersions": SUPPORTED,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display_round_trip() {
        for (v, s) in CniVersion::ALL.into_iter().zip(SUPPORTED) {
            assert_eq!(v.to_string(), *s);
            assert_eq!(CniVersion::parse(s), Ok(v));
            assert_eq!(s.parse::<CniVersion>(), Ok(v));
        }
    }

    #[test]
    fn unsupported_versions_are_code_1() {
        for s in [
            "", "0.1.0", "0.2.0", "1.2.0", "1.0", "v1.0.0", " 1.0.0", "banana",
        ] {
            let e = CniVersion::parse(s).expect_err(s);
            assert_eq!(e.code, 1, "{s}");
            assert_eq!(e.msg, "incompatible CNI version");
            assert!(e.details.contains("1.1.0"), "{}", e.details);
        }
    }

    #[test]
    fn ordering_and_features() {
        assert!(CniVersion::V0_3_0 < CniVersion::V0_3_1);
        assert!(CniVersion::V0_4_0 < CniVersion::V1_0_0);
        assert_eq!(CniVersion::ALL.iter().max(), Some(&CniVersion::LATEST));
        let check: Vec<bool> = CniVersion::ALL.iter().map(|v| v.supports_check()).collect();
        assert_eq!(check, [false, false, true, true, true]);
        let gc: Vec<bool> = CniVersion::ALL
            .iter()
            .map(|v| v.supports_gc_status())
            .collect();
        assert_eq!(gc, [false, false, false, false, true]);
        let ipv: Vec<bool> = CniVersion::ALL
            .iter()
            .map(|v| v.has_ip_version_field())
            .collect();
        assert_eq!(ipv, [true, true, true, false, false]);
    }

    #[test]
    fn version_reply() {
        assert_eq!(
            version_result("1.1.0").to_string(),
            r#"{"cniVersion":"1.1.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}"#
        );
    }
}
