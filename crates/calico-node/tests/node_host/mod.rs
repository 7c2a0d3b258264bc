//! The test host for `node.rs`: a network namespace with an uplink veth
//! to a second namespace (the "world"), a datastore (a SQLite file, or a
//! real etcd inside the namespace), and the agent and calicoctl run inside.

use std::path::PathBuf;
use std::process::{Child, Command, Output};

use calico_testutil::{EtcdServer, TestNetns, workspace_bin};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_calico-node");

pub struct Host {
    pub ns: TestNetns,
    _world: TestNetns,
    pub dir: tempfile::TempDir,
    pub store: Vec<(String, String)>,
    _etcd: Option<EtcdServer>,
}

impl Host {
    pub fn new(etcd: bool) -> Host {
        let ns = TestNetns::new("nh");
        let world = TestNetns::new("nw");
        ns.exec(&[
            "sh",
            "-c",
            &format!(
                "ip link add up0 type veth peer name up1 netns {w}; ip addr add 192.0.2.1/24 dev up0; \
                 ip link set up0 mtu 1400 up; ip netns exec {w} ip addr add 192.0.2.2/24 dev up1; \
                 ip netns exec {w} ip link set up1 up; ip route add default via 192.0.2.2",
                w = world.name()
            ),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let (store, etcd) = if etcd {
            let e = EtcdServer::start_in(ns.name());
            (
                vec![
                    ("DATASTORE_TYPE".into(), "etcdv3".into()),
                    ("ETCD_ENDPOINTS".into(), e.endpoint()),
                ],
                Some(e),
            )
        } else {
            (
                vec![
                    ("DATASTORE_TYPE".into(), "local".into()),
                    (
                        "DATASTORE_PATH".into(),
                        dir.path().join("ds.db").display().to_string(),
                    ),
                ],
                None,
            )
        };
        Host {
            ns,
            _world: world,
            dir,
            store,
            _etcd: etcd,
        }
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn cmd(&self, bin: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.ns.name(), bin]).args(args);
        for k in [
            "DATASTORE_TYPE",
            "DATASTORE_PATH",
            "ETCD_ENDPOINTS",
            "NODENAME",
            "IP",
            "IP6",
        ] {
            c.env_remove(k);
        }
        for (k, v) in &self.store {
            c.env(k, v);
        }
        c.env("CALICO_STATE_DIR", self.state());
        c.env("CALICO_IPAM_SOCKET", self.dir.path().join("ipam.sock"));
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    pub fn node(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.cmd(BIN, args, env).output().unwrap()
    }

    pub fn calicoctl(&self, args: &[&str]) -> String {
        let bin = workspace_bin("calicoctl");
        assert!(
            bin.exists(),
            "{} missing: cargo build --workspace",
            bin.display()
        );
        let out = self.cmd(bin.to_str().unwrap(), args, &[]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "calicoctl {args:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }

    pub fn get(&self, kind: &str, name: &str) -> Value {
        serde_json::from_str(&self.calicoctl(&["get", kind, name, "-o", "json"])).unwrap()
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A running agent, killed when dropped.
pub struct Agent(pub Child);
impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
