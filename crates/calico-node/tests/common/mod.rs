//! A cluster of network namespaces: nodes joined by a bridge in a "fabric"
//! namespace, a real etcd on that bridge, `calico-node` running in each
//! node, pods attached by the real `calico` plugin run inside their node's
//! namespace. Traffic stays inside these namespaces.

#![allow(dead_code)] // each test file uses its own part of the harness

pub mod bird;
pub mod peers;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use calico_testutil::{EtcdServer, TestNetns, workspace_bin};
use serde_json::{Value, json};

/// The calico-node binary: cargo's, for calico-node's own tests and
/// benches; the workspace build's, for another crate's tests that use this
/// harness (`cargo test --workspace` builds it).
pub fn bin() -> std::path::PathBuf {
    option_env!("CARGO_BIN_EXE_calico-node")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace_bin("calico-node"))
}

pub struct Node {
    pub name: String,
    pub ns: TestNetns,
}

pub struct Cluster {
    /// Running agents by node index; killed first on drop.
    pub agents: std::cell::RefCell<Vec<(usize, Child)>>,
    // Field order is drop order: pods and nodes before etcd and the fabric.
    pub nodes: Vec<Node>,
    pub pods: Vec<TestNetns>,
    pub etcd: EtcdServer,
    pub fabric: TestNetns,
    pub dir: tempfile::TempDir,
    /// `CALICO_NETWORKING_BACKEND` of the agents.
    pub backend: &'static str,
    /// More environment for agents started from now on.
    pub extra_env: std::cell::RefCell<Vec<(String, String)>>,
}

impl Cluster {
    pub fn new(n: usize, pool_yaml: &str) -> Cluster {
        Cluster::with_backend(n, pool_yaml, "vxlan")
    }

    /// Like `new`, the agents with `CALICO_NETWORKING_BACKEND=backend`.
    pub fn with_backend(n: usize, pool_yaml: &str, backend: &'static str) -> Cluster {
        Cluster::build(n, pool_yaml, backend, false)
    }

    /// Dual stack: node `i` also has `fd00:31::<i>/64` (the bridge
    /// `fd00:31::fe`), found by the agents' IPv6 autodetection.
    pub fn dual_stack(n: usize, pool_yaml: &str, backend: &'static str) -> Cluster {
        Cluster::build(n, pool_yaml, backend, true)
    }

    fn build(n: usize, pool_yaml: &str, backend: &'static str, ipv6: bool) -> Cluster {
        let fabric = TestNetns::new("fab");
        // The bridge gets an address of its own: left to itself it takes
        // the lowest of its ports' and moves when a lower one joins (the
        // `ext` namespace of tests/cluster.rs), and frames the nodes still
        // send to the old address are dropped until their ARP caches renew,
        // ~5 s of silence from etcd (issue 13, point 5).
        fabric.exec(&["sh", "-c", "ip link add br0 address 02:31:00:00:00:fe type bridge && ip addr add 172.31.0.254/24 dev br0 && ip link set br0 up"]);
        if ipv6 {
            fabric.exec(&["ip", "addr", "add", "fd00:31::fe/64", "dev", "br0", "nodad"]);
        }
        let etcd = EtcdServer::start_in_at(fabric.name(), "172.31.0.254");
        let dir = tempfile::tempdir().unwrap();
        let mut nodes = Vec::new();
        for i in 1..=n {
            let ns = TestNetns::new("node");
            let addr = format!("172.31.0.{i}");
            ns.exec(&[
                "sh",
                "-c",
                &format!(
                    "ip link add eth0 type veth peer name n{i} netns {f} && \
                     ip netns exec {f} ip link set n{i} master br0 up && \
                     ip addr add {addr}/24 dev eth0 && ip link set eth0 up && \
                     ip route add default via 172.31.0.254",
                    f = fabric.name()
                ),
            ]);
            if ipv6 {
                ns.exec(&[
                    "ip",
                    "addr",
                    "add",
                    &format!("fd00:31::{i}/64"),
                    "dev",
                    "eth0",
                    "nodad",
                ]);
            }
            nodes.push(Node {
                name: format!("node-{i}"),
                ns,
            });
        }
        let c = Cluster {
            agents: std::cell::RefCell::new(Vec::new()),
            nodes,
            pods: Vec::new(),
            etcd,
            fabric,
            dir,
            backend,
            extra_env: std::cell::RefCell::new(Vec::new()),
        };
        if ipv6 {
            c.extra_env.borrow_mut().extend([
                ("IP6".to_string(), "autodetect".to_string()),
                (
                    "IP6_AUTODETECTION_METHOD".to_string(),
                    "cidr=fd00:31::/64".to_string(),
                ),
            ]);
        }
        let f = c.dir.path().join("pool.yaml");
        std::fs::write(&f, pool_yaml).unwrap();
        c.calicoctl(&["apply", "-f", f.to_str().unwrap()]);
        for i in 0..n {
            c.start_agent_on(i);
        }
        c
    }

    pub fn calicoctl(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", self.fabric.name()])
            .arg(workspace_bin("calicoctl"))
            .args(args)
            .env("DATASTORE_TYPE", "etcdv3")
            .env("ETCD_ENDPOINTS", self.etcd.endpoint())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "calicoctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn node_cmd(&self, i: usize, args: &[&str]) -> Command {
        let n = &self.nodes[i];
        let mut c = Command::new("ip");
        c.args(["netns", "exec", n.ns.name()])
            .arg(bin())
            .args(args)
            .env("NODENAME", &n.name)
            .env("DATASTORE_TYPE", "etcdv3")
            .env("ETCD_ENDPOINTS", self.etcd.endpoint())
            .env("CALICO_NETWORKING_BACKEND", self.backend)
            .env("NO_DEFAULT_POOLS", "true")
            // Calico's default: no health server. The probes and
            // `calicoctl node status` ask the control socket in the state
            // directory.
            .env_remove("FELIX_HEALTHENABLED")
            .env("CALICO_STATE_DIR", self.dir.path().join(&n.name))
            .env(
                "CALICO_IPAM_SOCKET",
                self.dir.path().join(format!("{}.sock", n.name)),
            )
            .env_remove("IP");
        for (k, v) in self.extra_env.borrow().iter() {
            c.env(k, v);
        }
        c
    }

    pub fn start_agent_on(&self, i: usize) {
        // CALICO_TEST_AGENT_LOGS=DIR keeps each agent's log as DIR/<fabric netns>-<node>.log.
        let log = match std::env::var_os("CALICO_TEST_AGENT_LOGS") {
            Some(dir) => {
                let f = std::path::Path::new(&dir).join(format!(
                    "{}-{}.log",
                    self.fabric.name(),
                    self.nodes[i].name
                ));
                Stdio::from(std::fs::File::create(f).unwrap())
            }
            None => Stdio::null(),
        };
        let child = self.node_cmd(i, &[]).stderr(log).spawn().unwrap();
        self.agents.borrow_mut().push((i, child));
        self.wait_ready(i);
    }

    /// Like `start_agent_on`, the agent's log (stderr) written to `log`.
    pub fn start_agent_logging_to(&self, i: usize, log: &std::path::Path) {
        let f = std::fs::File::create(log).unwrap();
        let child = self.node_cmd(i, &[]).stderr(f).spawn().unwrap();
        self.agents.borrow_mut().push((i, child));
        self.wait_ready(i);
    }

    pub fn wait_ready(&self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self
            .node_cmd(i, &["-felix-ready"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
        {
            assert!(
                Instant::now() < deadline,
                "{} never became ready",
                self.nodes[i].name
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn kill_agent(&self, i: usize) {
        let mut agents = self.agents.borrow_mut();
        for (n, child) in agents.iter_mut() {
            if *n == i {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        agents.retain(|(n, _)| *n != i);
    }

    pub fn sh(&self, i: usize, cmd: &str) -> String {
        self.nodes[i].ns.exec(&["sh", "-c", cmd])
    }

    /// Adds a pod on node `i` with the calico plugin; returns (pod index, its address).
    pub fn add_pod(&mut self, i: usize, name: &str) -> (usize, String) {
        self.add_pod_with(i, name, json!({}))
    }

    /// Like `add_pod`, with extra network-config fields merged in.
    pub fn add_pod_with(&mut self, i: usize, name: &str, extra: Value) -> (usize, String) {
        self.add_pod_in(i, "default", name, extra)
    }

    /// Like `add_pod_with`, for a pod of Kubernetes namespace `namespace`.
    pub fn add_pod_in(
        &mut self,
        i: usize,
        namespace: &str,
        name: &str,
        extra: Value,
    ) -> (usize, String) {
        let pod = TestNetns::new("cpod");
        let n = &self.nodes[i];
        let mut conf = json!({"cniVersion": "1.0.0", "name": "k8s-pod-network", "type": "calico",
            "nodename": n.name, "mtu": 1450, "datastore_type": "etcdv3",
            "etcd_endpoints": self.etcd.endpoint(),
            "ipam_lock_file": self.dir.path().join(format!("{}.lock", n.name)),
            // Allocation through the node's calico-node (its IPAM service).
            "ipam_socket": self.dir.path().join(format!("{}.sock", n.name)),
            "log_file_path": self.dir.path().join("cni.log"),
            "ipam": {"type": "calico-ipam"}});
        if let (Some(c), Some(e)) = (conf.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        let mut child = Command::new("ip")
            .args(["netns", "exec", n.ns.name()])
            .arg(workspace_bin("calico"))
            .env("CNI_COMMAND", "ADD")
            .env("CNI_CONTAINERID", format!("c-{namespace}-{name}"))
            .env("CNI_NETNS", pod.path())
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", "/usr/lib/cni")
            .env(
                "CNI_ARGS",
                format!("K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={name}"),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(conf.to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(out.status.success(), "ADD {name}: {v}");
        let ip = v["ips"][0]["address"]
            .as_str()
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string();
        self.pods.push(pod);
        (self.pods.len() - 1, ip)
    }

    pub fn ping(&self, from_pod: usize, to: &str) -> bool {
        self.pods[from_pod]
            .try_exec(&["ping", "-c", "1", "-W", "1", to])
            .is_ok()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, mut c) in self.agents.borrow_mut().drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
