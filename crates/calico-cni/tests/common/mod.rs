//! Harness shared by the plugin tests: a datastore (SQLite file or a real
//! etcd), calicoctl over it, and running a plugin binary as a runtime does.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Stdio};

use calico_testutil::EtcdServer;

pub mod host;
use serde_json::{Value, json};

/// A datastore for the plugin: config fields to put in the network config.
pub struct Ds {
    pub fields: Value,
    pub env: Vec<(String, String)>,
    pub dir: tempfile::TempDir,
    pub _etcd: Option<EtcdServer>,
    /// The namespace calicoctl must run in to reach the store.
    pub netns: Option<String>,
}

pub fn local() -> Ds {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("ds.db").display().to_string();
    Ds {
        fields: json!({"datastore_type": "local", "datastore_path": path}),
        env: vec![("DATASTORE_PATH".into(), path)],
        dir,
        _etcd: None,
        netns: None,
    }
}

pub fn etcd() -> Ds {
    etcd_in(None)
}

/// etcd serving on the loopback of `netns` (or of this namespace).
pub fn etcd_in(netns: Option<&str>) -> Ds {
    let server = match netns {
        Some(ns) => EtcdServer::start_in(ns),
        None => EtcdServer::start(),
    };
    Ds {
        fields: json!({"datastore_type": "etcdv3", "etcd_endpoints": server.endpoint()}),
        env: vec![
            ("DATASTORE_TYPE".into(), "etcdv3".into()),
            ("ETCD_ENDPOINTS".into(), server.endpoint()),
        ],
        dir: tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")),
        _etcd: Some(server),
        netns: netns.map(str::to_string),
    }
}

pub struct Out {
    pub code: i32,
    pub json: Value,
    pub raw: String,
}

impl Ds {
    pub fn conf(&self, version: &str, node: &str, ipam: Value) -> Value {
        let mut c = json!({
            "cniVersion": version,
            "name": "k8s-pod-network",
            "type": "calico",
            "nodename": node,
            "log_file_path": self.dir.path().join("cni.log").display().to_string(),
            // One IPAM lock per simulated node, inside the test's directory.
            "ipam_lock_file": self.dir.path().join(format!("ipam-{node}.lock")).display().to_string(),
            "ipam": ipam,
        });
        if let (Some(c), Some(f)) = (c.as_object_mut(), self.fields.as_object()) {
            c.extend(f.clone());
        }
        c
    }

    pub fn calicoctl(&self, args: &[&str]) -> (i32, String) {
        let bin = calico_testutil::workspace_bin("calicoctl");
        assert!(
            bin.exists(),
            "{} is missing: run cargo test --workspace",
            bin.display()
        );
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        cmd.args(args)
            .env_remove("DATASTORE_TYPE")
            .env_remove("ETCD_ENDPOINTS")
            .env_remove("DATASTORE_PATH");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code().unwrap_or(-1), text)
    }

    pub fn apply(&self, yaml: &str) {
        let f = self.dir.path().join("apply.yaml");
        std::fs::write(&f, yaml).unwrap_or_else(|e| panic!("{e}"));
        let (code, out) = self.calicoctl(&["apply", "-f", &f.display().to_string()]);
        assert_eq!(code, 0, "{out}");
    }
}

/// How to run a plugin binary once.
pub struct Call<'a> {
    pub bin: &'a str,
    /// Run inside this namespace (`ip netns exec`), as a runtime on that host would.
    pub host_netns: Option<&'a str>,
    pub command: &'a str,
    pub container: &'a str,
    pub netns: String,
    pub ifname: &'a str,
    pub args: &'a str,
    pub path: &'a str,
}

impl Call<'_> {
    pub fn run(&self, stdin: &str) -> Out {
        self.run_within(stdin, None)
            .unwrap_or_else(|| panic!("{} did not finish", self.bin))
    }

    /// Runs the plugin; `None` (after killing it) when it has not finished
    /// within `limit`: a guard against a plugin that hangs, not a timing test.
    pub fn run_within(&self, stdin: &str, limit: Option<std::time::Duration>) -> Option<Out> {
        let mut cmd = match self.host_netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, self.bin]);
                c
            }
            None => Command::new(self.bin),
        };
        let mut child = cmd
            .env("CNI_COMMAND", self.command)
            .env("CNI_CONTAINERID", self.container)
            .env("CNI_NETNS", &self.netns)
            .env("CNI_IFNAME", self.ifname)
            .env("CNI_ARGS", self.args)
            .env("CNI_PATH", self.path)
            .env_remove("DATASTORE_TYPE")
            .env_remove("ETCD_ENDPOINTS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin));
        if let Some(mut s) = child.stdin.take() {
            let _ = s.write_all(stdin.as_bytes());
        }
        if let Some(limit) = limit {
            let deadline = std::time::Instant::now() + limit;
            while child.try_wait().unwrap_or_else(|e| panic!("{e}")).is_none() {
                if std::time::Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
        let raw = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked"),
            "{} panicked: {stderr}",
            self.bin
        );
        let json = if raw.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&raw)
                .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {raw}\nstderr: {stderr}"))
        };
        Some(Out {
            code: out.status.code().unwrap_or(-1),
            json,
            raw,
        })
    }
}

pub fn pool_yaml(name: &str, cidr: &str, block: u8) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {{name: {name}}}\nspec: {{cidr: '{cidr}', blockSize: {block}}}\n"
    )
}

pub fn ipam_v4() -> Value {
    json!({"type": "calico-ipam"})
}

pub fn addresses(out: &Out) -> Vec<String> {
    out.json["ips"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["address"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}
