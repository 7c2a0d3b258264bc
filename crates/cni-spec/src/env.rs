//! The CNI protocol parameters (`CNI_COMMAND`, `CNI_CONTAINERID`,
//! `CNI_NETNS`, `CNI_IFNAME`, `CNI_ARGS`, `CNI_PATH`), checked per command.
//!
//! The caller supplies a lookup function (e.g. wrapping `std::env::var`);
//! this module never reads the process environment itself. Required
//! parameters per command follow spec 1.1.0:
//!
//! | command | required | optional |
//! |---|---|---|
//! | `ADD`, `CHECK` | `CNI_CONTAINERID`, `CNI_NETNS`, `CNI_IFNAME` | `CNI_ARGS`, `CNI_PATH` |
//! | `DEL` | `CNI_CONTAINERID`, `CNI_IFNAME` | `CNI_NETNS`, `CNI_ARGS`, `CNI_PATH` |
//! | `GC` | `CNI_PATH` | |
//! | `STATUS` | | `CNI_PATH` |
//! | `VERSION` | | |
//!
//! `CNI_COMMAND` is always required. An empty value counts as missing.
//! Missing or invalid parameters are error code 4 naming the variables.

use std::fmt;
use std::str::FromStr;

use crate::error::CniError;

/// The operation the runtime asks for (`CNI_COMMAND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// `ADD`: attach the container to the network.
    Add,
    /// `DEL`: detach the container and release its resources.
    Del,
    /// `CHECK` (spec 0.4.0+): verify the attachment is as expected.
    Check,
    /// `VERSION`: report the supported spec versions.
    Version,
    /// `GC` (spec 1.1.0+): clean up resources of attachments not listed valid.
    Gc,
    /// `STATUS` (spec 1.1.0+): report whether the plugin is ready for `ADD`.
    Status,
}

impl Command {
    /// Every command.
    pub const ALL: [Command; 6] = [
        Command::Add,
        Command::Del,
        Command::Check,
        Command::Version,
        Command::Gc,
        Command::Status,
    ];

    /// The command as written in `CNI_COMMAND`, e.g. `"ADD"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Version => "VERSION",
            Command::Gc => "GC",
            Command::Status => "STATUS",
        }
    }

    /// Parses `CNI_COMMAND` (case-sensitive, as the spec writes it);
    /// anything else is error code 4.
    pub fn parse(s: &str) -> Result<Command, CniError> {
        Command::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| CniError::invalid_env(format!("unknown CNI_COMMAND: {s}")))
    }

    /// The variables (besides `CNI_COMMAND`) this command requires.
    pub fn required_vars(self) -> &'static [&'static str] {
        match self {
            Command::Add | Command::Check => &[CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME],
            Command::Del => &[CNI_CONTAINERID, CNI_IFNAME],
            Command::Gc => &[CNI_PATH],
            Command::Version | Command::Status => &[],
        }
    }

    /// Whether the command acts on one attachment (container id + interface):
    /// `ADD`, `DEL` and `CHECK`.
    pub fn is_attachment(self) -> bool {
        matches!(self, Command::Add | Command::Del | Command::Check)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Command {
    type Err = CniError;

    fn from_str(s: &str) -> Result<Command, CniError> {
        Command::parse(s)
    }
}

/// Name of the variable holding the command.
pub const CNI_COMMAND: &str = "CNI_COMMAND";
/// Name of the variable holding the container id.
pub const CNI_CONTAINERID: &str = "CNI_CONTAINERID";
/// Name of the variable holding the network namespace path.
pub const CNI_NETNS: &str = "CNI_NETNS";
/// Name of the variable holding the interface name inside the container.
pub const CNI_IFNAME: &str = "CNI_IFNAME";
/// Name of the variable holding the extra `K=V;K=V` arguments.
pub const CNI_ARGS: &str = "CNI_ARGS";
/// Name of the variable holding the plugin search path.
pub const CNI_PATH: &str = "CNI_PATH";

/// The protocol parameters of one plugin invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    /// `CNI_COMMAND`.
    pub command: Command,
    /// `CNI_CONTAINERID`; empty when not given (allowed for `VERSION`, `GC`, `STATUS`).
    pub container_id: String,
    /// `CNI_NETNS`; `None` when not given or empty (allowed for `DEL`).
    pub netns: Option<String>,
    /// `CNI_IFNAME`; empty when not given (allowed for `VERSION`, `GC`, `STATUS`).
    pub ifname: String,
    /// `CNI_ARGS` split into `(key, value)` pairs, in order.
    pub args: Vec<(String, String)>,
    /// `CNI_PATH` split on `:`, empty entries dropped.
    pub path: Vec<String>,
}

impl Env {
    /// Reads and checks the parameters through `get` (which returns `None`
    /// for an unset variable).
    ///
    /// Errors (all code 4): `CNI_COMMAND` missing or unknown; variables the
    /// command requires missing or empty (all named, like libcni's
    /// `required env variables [CNI_NETNS,CNI_IFNAME] missing`); a malformed
    /// `CNI_ARGS` pair; for `ADD`/`DEL`/`CHECK`, a container id or interface
    /// name the spec forbids (see [`validate_container_id`],
    /// [`validate_ifname`]).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Env, CniError> {
        let non_empty = |name: &str| get(name).filter(|v| !v.is_empty());
        let command = match non_empty(CNI_COMMAND) {
            Some(c) => Command::parse(&c)?,
            None => return Err(missing(&[CNI_COMMAND])),
        };
        let absent: Vec<&str> = command
            .required_vars()
            .iter()
            .copied()
            .filter(|name| non_empty(name).is_none())
            .collect();
        if !absent.is_empty() {
            return Err(missing(&absent));
        }
        let container_id = non_empty(CNI_CONTAINERID).unwrap_or_default();
        let ifname = non_empty(CNI_IFNAME).unwrap_or_default();
        if command.is_attachment() {
            validate_container_id(&container_id)?;
            validate_ifname(&ifname)?;
        }
        let args = match non_empty(CNI_ARGS) {
            Some(raw) => parse_cni_args(&raw)?,
            None => Vec::new(),
        };
        let path = non_empty(CNI_PATH)
            .map(|p| parse_cni_path(&p))
            .unwrap_or_default();
        Ok(Env {
            command,
            container_id,
            netns: non_empty(CNI_NETNS),
            ifname,
            args,
            path,
        })
    }

    /// The value of `key` in `CNI_ARGS`; when a key repeats, the last wins
    /// (as with libcni's `LoadArgs`).
    pub fn arg(&self, key: &str) -> Option<&str> {
        self.args
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The Kubernetes pod identity passed in `CNI_ARGS`.
    pub fn k8s_args(&self) -> K8sArgs {
        K8sArgs::from_env(self)
    }
}

fn missing(names: &[&str]) -> CniError {
    CniError::invalid_env(format!(
        "required env variables [{}] missing",
        names.join(",")
    ))
}

/// Splits `CNI_ARGS` (`K=V;K=V`) into pairs.
///
/// Each `;`-separated pair must be `KEY=VALUE` with exactly one `=` and a
/// non-empty key (libcni's rule); a value may be empty. Empty segments (as
/// in a trailing `;`) are skipped. A malformed pair is error code 4.
pub fn parse_cni_args(raw: &str) -> Result<Vec<(String, String)>, CniError> {
    let mut out = Vec::new();
    for pair in raw.split(';').filter(|p| !p.is_empty()) {
        let mut parts = pair.split('=');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(k), Some(v), None) if !k.is_empty() => out.push((k.to_string(), v.to_string())),
            _ => {
                return Err(CniError::invalid_env(format!(
                    "invalid CNI_ARGS pair {pair:?}: want KEY=VALUE"
                )));
            }
        }
    }
    Ok(out)
}

/// Splits `CNI_PATH` on `:` (the Linux list separator), dropping empty entries.
pub fn parse_cni_path(raw: &str) -> Vec<String> {
    raw.split(':')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// Checks a container id against the spec: not empty, starting with an
/// ASCII alphanumeric, then only alphanumerics, `_`, `.` and `-`.
/// Empty is code 3 ("missing containerID", as libcni); bad characters code 4.
pub fn validate_container_id(id: &str) -> Result<(), CniError> {
    let mut chars = id.chars();
    match chars.next() {
        None => Err(CniError::unknown_container("missing containerID")),
        Some(first)
            if first.is_ascii_alphanumeric()
                && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) =>
        {
            Ok(())
        }
        Some(_) => Err(CniError::invalid_env("invalid characters in containerID")
            .with_details(format!("CNI_CONTAINERID={id:?}"))),
    }
}

/// Checks an interface name against the spec: not empty, fewer than 16
/// bytes, not `.` or `..`, no `/`, `:` or whitespace. Failures are code 4.
pub fn validate_ifname(name: &str) -> Result<(), CniError> {
    let bad = |msg: &str, details: &str| {
        Err(CniError::invalid_env(msg.to_string())
            .with_details(format!("CNI_IFNAME={name:?}: {details}")))
    };
    if name.is_empty() {
        return bad(
            "interface name is empty",
            "interface name must not be empty",
        );
    }
    if name.len() > 15 {
        return bad(
            "interface name is too long",
            "interface name should be less than 16 characters",
        );
    }
    if name == "." || name == ".." {
        return bad(
            "interface name is . or ..",
            "interface name must not be . or ..",
        );
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        return bad(
            "interface name contains / or : or whitespace characters",
            "interface name must not contain / or : or whitespace",
        );
    }
    Ok(())
}

/// The Kubernetes pod identity that kubelet/CRI runtimes pass in `CNI_ARGS`.
/// Empty values read as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct K8sArgs {
    /// `K8S_POD_NAMESPACE`.
    pub namespace: Option<String>,
    /// `K8S_POD_NAME`.
    pub pod_name: Option<String>,
    /// `K8S_POD_INFRA_CONTAINER_ID`.
    pub infra_container_id: Option<String>,
}

impl K8sArgs {
    /// Extracts the pod identity from parsed `CNI_ARGS` pairs (last value wins).
    pub fn from_args(args: &[(String, String)]) -> K8sArgs {
        let get = |key: &str| {
            args.iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        K8sArgs {
            namespace: get("K8S_POD_NAMESPACE"),
            pod_name: get("K8S_POD_NAME"),
            infra_container_id: get("K8S_POD_INFRA_CONTAINER_ID"),
        }
    }

    /// Extracts the pod identity from an invocation's `CNI_ARGS`.
    pub fn from_env(env: &Env) -> K8sArgs {
        K8sArgs::from_args(&env.args)
    }

    /// Whether both the namespace and pod name are present, i.e. the
    /// invocation is for a Kubernetes pod.
    pub fn is_pod(&self) -> bool {
        self.namespace.is_some() && self.pod_name.is_some()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    const FULL: &[(&str, &str)] = &[
        ("CNI_CONTAINERID", "abc123"),
        ("CNI_NETNS", "/var/run/netns/blue"),
        ("CNI_IFNAME", "eth0"),
        (
            "CNI_ARGS",
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=nginx;K8S_POD_INFRA_CONTAINER_ID=abc123",
        ),
        ("CNI_PATH", "/opt/cni/bin::/usr/libexec/cni"),
    ];

    fn with_command(cmd: &str, skip: &[&str]) -> Vec<(&'static str, String)> {
        let mut v: Vec<(&'static str, String)> = FULL
            .iter()
            .filter(|(k, _)| !skip.contains(k))
            .map(|(k, v)| (*k, v.to_string()))
            .collect();
        v.push(("CNI_COMMAND", cmd.to_string()));
        v
    }

    fn env_of(vars: &[(&'static str, String)]) -> Result<Env, CniError> {
        let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Env::from_lookup(lookup(&pairs))
    }

    #[test]
    fn full_add() {
        let env = env_of(&with_command("ADD", &[])).expect("valid env");
        assert_eq!(env.command, Command::Add);
        assert_eq!(env.container_id, "abc123");
        assert_eq!(env.netns.as_deref(), Some("/var/run/netns/blue"));
        assert_eq!(env.ifname, "eth0");
        assert_eq!(env.path, ["/opt/cni/bin", "/usr/libexec/cni"]);
        assert_eq!(env.arg("IgnoreUnknown"), Some("1"));
        assert_eq!(env.arg("nope"), None);
        let k8s = env.k8s_args();
        assert_eq!(
            k8s,
            K8sArgs {
                namespace: Some("default".into()),
                pod_name: Some("nginx".into()),
                infra_container_id: Some("abc123".into()),
            }
        );
        assert!(k8s.is_pod());
    }

    #[test]
    fn missing_command() {
        let e = env_of(&[]).expect_err("no command");
        assert_eq!(e.code, 4);
        assert_eq!(e.msg, "required env variables [CNI_COMMAND] missing");
        let e = env_of(&[("CNI_COMMAND", String::new())]).expect_err("empty command");
        assert_eq!(e.msg, "required env variables [CNI_COMMAND] missing");
    }

    #[test]
    fn unknown_command() {
        for c in ["add", "FOO", "INIT"] {
            let e = env_of(&with_command(c, &[])).expect_err(c);
            assert_eq!(e.code, 4);
            assert_eq!(e.msg, format!("unknown CNI_COMMAND: {c}"));
        }
    }

    #[test]
    fn each_missing_required_var() {
        for cmd in Command::ALL {
            for var in cmd.required_vars() {
                for empty in [false, true] {
                    let mut vars = with_command(cmd.as_str(), &[var]);
                    if empty {
                        vars.push((var, String::new()));
                    }
                    let e = env_of(&vars).expect_err(var);
                    assert_eq!(e.code, 4, "{cmd} {var}");
                    assert_eq!(e.msg, format!("required env variables [{var}] missing"));
                }
            }
        }
    }

    #[test]
    fn all_missing_vars_are_named() {
        let e = env_of(&[("CNI_COMMAND", "ADD".into())]).expect_err("nothing set");
        assert_eq!(
            e.msg,
            "required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME] missing"
        );
        let e = env_of(&[("CNI_COMMAND", "DEL".into())]).expect_err("nothing set");
        assert_eq!(
            e.msg,
            "required env variables [CNI_CONTAINERID,CNI_IFNAME] missing"
        );
        let e = env_of(&[("CNI_COMMAND", "GC".into())]).expect_err("nothing set");
        assert_eq!(e.msg, "required env variables [CNI_PATH] missing");
    }

    #[test]
    fn optional_vars_per_command() {
        let del = env_of(&with_command("DEL", &["CNI_NETNS", "CNI_ARGS", "CNI_PATH"]))
            .expect("DEL without netns");
        assert_eq!(del.netns, None);
        assert!(del.args.is_empty());
        assert!(del.path.is_empty());
        for cmd in ["VERSION", "STATUS"] {
            let env = env_of(&[("CNI_COMMAND", cmd.into())]).expect(cmd);
            assert_eq!(env.container_id, "");
            assert_eq!(env.ifname, "");
        }
        let gc = env_of(&[
            ("CNI_COMMAND", "GC".into()),
            ("CNI_PATH", "/opt/cni/bin".into()),
        ])
        .expect("GC");
        assert_eq!(gc.command, Command::Gc);
        assert_eq!(gc.path, ["/opt/cni/bin"]);
    }

    #[test]
    fn cni_args_parsing() {
        assert_eq!(parse_cni_args(""), Ok(vec![]));
        assert_eq!(
            parse_cni_args("FOO=BAR;ABC=123"),
            Ok(vec![
                ("FOO".into(), "BAR".into()),
                ("ABC".into(), "123".into())
            ])
        );
        assert_eq!(
            parse_cni_args("A=;B=2;"),
            Ok(vec![("A".into(), String::new()), ("B".into(), "2".into())])
        );
        for bad in ["FOO", "A=1;B", "=x", "A=1=2", "A=1;;=;"] {
            let e = parse_cni_args(bad).expect_err(bad);
            assert_eq!(e.code, 4, "{bad}");
            assert!(e.msg.contains("CNI_ARGS"), "{}", e.msg);
        }
        let mut vars = with_command("ADD", &["CNI_ARGS"]);
        vars.push(("CNI_ARGS", "K8S_POD_NAME".into()));
        let e = env_of(&vars).expect_err("malformed");
        assert_eq!(
            e.msg,
            "invalid CNI_ARGS pair \"K8S_POD_NAME\": want KEY=VALUE"
        );
    }

    #[test]
    fn last_arg_wins() {
        let args = parse_cni_args("K8S_POD_NAME=a;K8S_POD_NAME=b;K8S_POD_NAMESPACE=").expect("ok");
        let k = K8sArgs::from_args(&args);
        assert_eq!(k.pod_name.as_deref(), Some("b"));
        assert_eq!(k.namespace, None);
        assert!(!k.is_pod());
    }

    #[test]
    fn cni_path_parsing() {
        assert_eq!(parse_cni_path("/a:/b"), ["/a", "/b"]);
        assert_eq!(parse_cni_path("::/a:"), ["/a"]);
        assert!(parse_cni_path("").is_empty());
    }

    #[test]
    fn container_id_rules() {
        for ok in ["a", "0", "abc-DEF_1.2", "3f6940ab5ab43bc522569d15b23f8c1b"] {
            assert_eq!(validate_container_id(ok), Ok(()), "{ok}");
        }
        assert_eq!(validate_container_id("").map_err(|e| e.code), Err(3));
        for bad in ["-a", "_a", ".a", "a b", "a/b", "ä"] {
            assert_eq!(
                validate_container_id(bad).map_err(|e| e.code),
                Err(4),
                "{bad}"
            );
        }
        let mut vars = with_command("ADD", &["CNI_CONTAINERID"]);
        vars.push(("CNI_CONTAINERID", "-bad".into()));
        let e = env_of(&vars).expect_err("bad id");
        assert_eq!(e.msg, "invalid characters in containerID");
    }

    #[test]
    fn ifname_rules() {
        for ok in ["eth0", "a", "cali1234567890a", "net-1.2_x"] {
            assert_eq!(validate_ifname(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a:b",
            "a b",
            "a\tb",
            "cali1234567890ab",
        ] {
            assert_eq!(validate_ifname(bad).map_err(|e| e.code), Err(4), "{bad}");
        }
        let mut vars = with_command("CHECK", &["CNI_IFNAME"]);
        vars.push(("CNI_IFNAME", "eth0:1".into()));
        let e = env_of(&vars).expect_err("bad ifname");
        assert_eq!(
            e.msg,
            "interface name contains / or : or whitespace characters"
        );
    }

    #[test]
    fn command_round_trip() {
        for c in Command::ALL {
            assert_eq!(c.as_str().parse::<Command>(), Ok(c));
            assert_eq!(c.to_string(), c.as_str());
        }
    }
}
