//! The CNI error object and the spec's well-known error codes.
//!
//! A failing plugin exits non-zero and prints
//! `{"cniVersion": .., "code": .., "msg": .., "details": ..}` on stdout
//! (`details` optional). Codes 1-99 are reserved by the spec: 1-7 and 11
//! since 0.4.0/1.0.0, 50 and 51 since 1.1.0 (for `STATUS`); plugins may use
//! 100 and above freely.

use serde_json::{Map, Value};

/// Code 1: the configuration's `cniVersion` is not supported.
pub const INCOMPATIBLE_VERSION: u32 = 1;
/// Code 2: an unsupported field in the network configuration.
pub const UNSUPPORTED_FIELD: u32 = 2;
/// Code 3: the container is unknown or does not exist.
pub const UNKNOWN_CONTAINER: u32 = 3;
/// Code 4: invalid or missing necessary environment variables.
pub const INVALID_ENV_VARS: u32 = 4;
/// Code 5: an I/O failure, e.g. reading the configuration from stdin.
pub const IO_FAILURE: u32 = 5;
/// Code 6: content could not be decoded (bad JSON, bad version string).
pub const DECODING_FAILURE: u32 = 6;
/// Code 7: the network configuration failed validation.
pub const INVALID_NETWORK_CONFIG: u32 = 7;
/// Code 11: a transient condition; the runtime should retry later.
pub const TRY_AGAIN_LATER: u32 = 11;
/// Code 50 (spec 1.1.0, `STATUS`): the plugin is not available.
pub const PLUGIN_NOT_AVAILABLE: u32 = 50;
/// Code 51 (spec 1.1.0, `STATUS`): the plugin is not available and existing
/// containers may have limited connectivity.
pub const LIMITED_CONNECTIVITY: u32 = 51;

/// A CNI error: what a plugin prints on stdout when it fails.
///
/// `Display` shows `msg` only; `details` is the long form for the runtime's
/// logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{msg}")]
pub struct CniError {
    /// The numeric error code (0-99 reserved by the spec, 100+ plugin specific).
    pub code: u32,
    /// A short, lowercase error message.
    pub msg: String,
    /// A longer explanation; empty when there is none (then omitted on the wire).
    pub details: String,
}

impl CniError {
    /// An error with any code, message and details.
    pub fn new(code: u32, msg: impl Into<String>, details: impl Into<String>) -> CniError {
        CniError {
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }

    /// Replaces the details of this error.
    #[must_use]
    pub fn with_details(mut self, details: impl Into<String>) -> CniError {
        self.details = details.into();
        self
    }

    /// Code 1, message "incompatible CNI version", with `details` saying why.
    pub fn incompatible_version(details: impl Into<String>) -> CniError {
        CniError::new(INCOMPATIBLE_VERSION, "incompatible CNI version", details)
    }

    /// Code 2: the message must name the unsupported key and its value.
    pub fn unsupported_field(msg: impl Into<String>) -> CniError {
        CniError::new(UNSUPPORTED_FIELD, msg, "")
    }

    /// Code 3: the container is unknown; the runtime need not clean it up.
    pub fn unknown_container(msg: impl Into<String>) -> CniError {
        CniError::new(UNKNOWN_CONTAINER, msg, "")
    }

    /// Code 4: the message must name the invalid variables.
    pub fn invalid_env(msg: impl Into<String>) -> CniError {
        CniError::new(INVALID_ENV_VARS, msg, "")
    }

    /// Code 5: an I/O failure.
    pub fn io_failure(msg: impl Into<String>) -> CniError {
        CniError::new(IO_FAILURE, msg, "")
    }

    /// Code 6: content could not be decoded.
    pub fn decoding_failure(msg: impl Into<String>) -> CniError {
        CniError::new(DECODING_FAILURE, msg, "")
    }

    /// Code 7: the network configuration is invalid.
    pub fn invalid_network_config(msg: impl Into<String>) -> CniError {
        CniError::new(INVALID_NETWORK_CONFIG, msg, "")
    }

    /// Code 11: a transient condition; retry later.
    pub fn try_again_later(msg: impl Into<String>) -> CniError {
        CniError::new(TRY_AGAIN_LATER, msg, "")
    }

    /// Code 50: the plugin is not available (answer to `STATUS`).
    pub fn plugin_not_available(msg: impl Into<String>) -> CniError {
        CniError::new(PLUGIN_NOT_AVAILABLE, msg, "")
    }

    /// Code 51: the plugin is not available and existing containers may have
    /// limited connectivity (answer to `STATUS`).
    pub fn limited_connectivity(msg: impl Into<String>) -> CniError {
        CniError::new(LIMITED_CONNECTIVITY, msg, "")
    }

    /// The error object as a JSON value, `details` omitted when empty.
    pub fn to_value(&self, cni_version: &str) -> Value {
        let mut m = Map::new();
        m.insert("cniVersion".into(), Value::from(cni_version));
        m.insert("code".into(), Value::from(self.code));
        m.insert("msg".into(), Value::from(self.msg.as_str()));
        if !self.details.is_empty() {
            m.insert("details".into(), Value::from(self.details.as_str()));
        }
        Value::Object(m)
    }

    /// The error object as the JSON text a plugin prints on stdout:
    /// `{"cniVersion":..,"code":..,"msg":..,"details":..}`, `details`
    /// omitted when empty.
    pub fn to_json(&self, cni_version: &str) -> String {
        self.to_value(cni_version).to_string()
    }

    /// Reads an error object printed by another plugin (e.g. a delegated
    /// IPAM plugin). Returns `None` when `v` has no numeric `code`; a
    /// missing `msg` or `details` reads as empty.
    pub fn from_value(v: &Value) -> Option<CniError> {
        let code = v.get("code")?.as_u64()?;
        let code = u32::try_from(code).ok()?;
        let text = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Some(CniError {
            code,
            msg: text("msg"),
            details: text("details"),
        })
    }
}

impl From<serde_json::Error> for CniError {
    /// A JSON error is a decoding failure (code 6).
    fn from(e: serde_json::Error) -> CniError {
        CniError::decoding_failure(format!("failed to decode json: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_codes() {
        let cases = [
            (CniError::incompatible_version("x"), 1),
            (CniError::unsupported_field("x"), 2),
            (CniError::unknown_container("x"), 3),
            (CniError::invalid_env("x"), 4),
            (CniError::io_failure("x"), 5),
            (CniError::decoding_failure("x"), 6),
            (CniError::invalid_network_config("x"), 7),
            (CniError::try_again_later("x"), 11),
            (CniError::plugin_not_available("x"), 50),
            (CniError::limited_connectivity("x"), 51),
        ];
        for (e, code) in cases {
            assert_eq!(e.code, code, "{e:?}");
        }
        assert_eq!(
            CniError::incompatible_version("d").msg,
            "incompatible CNI version"
        );
    }

    #[test]
    fn display_is_msg() {
        let e = CniError::new(100, "boom", "long story");
        assert_eq!(e.to_string(), "boom");
    }

    #[test]
    fn json_omits_empty_details() {
        let e = CniError::invalid_env("required env variables [CNI_NETNS] missing");
        assert_eq!(
            e.to_json("1.0.0"),
            r#"{"cniVersion":"1.0.0","code":4,"msg":"required env variables [CNI_NETNS] missing"}"#
        );
    }

    #[test]
    fn json_with_details() {
        let e = CniError::incompatible_version("config is 0.2.0");
        assert_eq!(
            e.to_json("0.4.0"),
            r#"{"cniVersion":"0.4.0","code":1,"msg":"incompatible CNI version","details":"config is 0.2.0"}"#
        );
    }

    #[test]
    fn json_escapes_text() {
        let e = CniError::new(100, "bad \"quote\"\n", "");
        let v: Value = serde_json::from_str(&e.to_json("1.1.0")).expect("valid json");
        assert_eq!(v["msg"], "bad \"quote\"\n");
    }

    #[test]
    fn reads_back_error_objects() {
        let e = CniError::new(7, "m", "d");
        assert_eq!(CniError::from_value(&e.to_value("1.0.0")), Some(e));
        let v = serde_json::json!({"code": 3, "msg": "gone"});
        assert_eq!(
            CniError::from_value(&v),
            Some(CniError::unknown_container("gone"))
        );
        assert_eq!(CniError::from_value(&serde_json::json!({"msg": "x"})), None);
        assert_eq!(CniError::from_value(&serde_json::json!({"code": -1})), None);
        assert_eq!(CniError::from_value(&serde_json::json!([1])), None);
    }

    #[test]
    fn json_error_is_decoding_failure() {
        let err = serde_json::from_str::<Value>("{").expect_err("bad json");
        let e = CniError::from(err);
        assert_eq!(e.code, DECODING_FAILURE);
        assert!(e.msg.starts_with("failed to decode json"));
    }
}
