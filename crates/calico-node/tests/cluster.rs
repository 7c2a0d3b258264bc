//! A cluster of network namespaces: three nodes joined by a bridge in a
//! "fabric" namespace, a real etcd on that bridge, `calico-node` running in
//! each node, pods attached by the real `calico` plugin run inside their
//! node's namespace. Pools use VXLAN. Traffic stays inside these namespaces.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use calico_testutil::{EtcdServer, TestNetns, require_root, workspace_bin};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_calico-node");

struct Node {
    name: String,
    ns: TestNetns,
}

struct Cluster {
    /// Running agents by node index; killed first on drop.
    agents: std::cell::RefCell<Vec<(usize, Child)>>,
    // Field order is drop order: pods and nodes before etcd and the fabric.
    nodes: Vec<Node>,
    pods: Vec<TestNetns>,
    etcd: EtcdServer,
    fabric: TestNetns,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn new(n: usize, pool_yaml: &str) -> Cluster {
        let fabric = TestNetns::new("fab");
        fabric.exec(&["sh", "-c", "ip link add br0 type bridge && ip addr add 172.31.0.254/24 dev br0 && ip link set br0 up"]);
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
        };
        let f = c.dir.path().join("pool.yaml");
        std::fs::write(&f, pool_yaml).unwrap();
        c.calicoctl(&["apply", "-f", f.to_str().unwrap()]);
        for i in 0..n {
            c.start_agent_on(i);
        }
        c
    }

    fn calicoctl(&self, args: &[&str]) -> String {
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

    fn node_cmd(&self, i: usize, args: &[&str]) -> Command {
        let n = &self.nodes[i];
        let mut c = Command::new("ip");
        c.args(["netns", "exec", n.ns.name(), BIN])
            .args(args)
            .env("NODENAME", &n.name)
            .env("DATASTORE_TYPE", "etcdv3")
            .env("ETCD_ENDPOINTS", self.etcd.endpoint())
            .env("CALICO_NETWORKING_BACKEND", "vxlan")
            .env("NO_DEFAULT_POOLS", "true")
            .env("FELIX_HEALTHENABLED", "true")
            .env("FELIX_HEALTHPORT", "9099")
            .env("CALICO_STATE_DIR", self.dir.path().join(&n.name))
            .env_remove("IP");
        c
    }

    fn start_agent_on(&self, i: usize) {
        let child = self.node_cmd(i, &[]).stderr(Stdio::null()).spawn().unwrap();
        self.agents.borrow_mut().push((i, child));
        self.wait_ready(i);
    }

    fn wait_ready(&self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self
            .node_cmd(i, &["-felix-ready"])
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

    fn kill_agent(&self, i: usize) {
        let mut agents = self.agents.borrow_mut();
        for (n, child) in agents.iter_mut() {
            if *n == i {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        agents.retain(|(n, _)| *n != i);
    }

    fn sh(&self, i: usize, cmd: &str) -> String {
        self.nodes[i].ns.exec(&["sh", "-c", cmd])
    }

    /// Adds a pod on node `i` with the calico plugin; returns (pod index, its address).
    fn add_pod(&mut self, i: usize, name: &str) -> (usize, String) {
        let pod = TestNetns::new("cpod");
        let n = &self.nodes[i];
        let conf = json!({"cniVersion": "1.0.0", "name": "k8s-pod-network", "type": "calico",
            "nodename": n.name, "mtu": 1450, "datastore_type": "etcdv3",
            "etcd_endpoints": self.etcd.endpoint(),
            "ipam_lock_file": self.dir.path().join(format!("{}.lock", n.name)),
            "log_file_path": self.dir.path().join("cni.log"),
            "ipam": {"type": "calico-ipam"}});
        let mut child = Command::new("ip")
            .args(["netns", "exec", n.ns.name()])
            .arg(workspace_bin("calico"))
            .env("CNI_COMMAND", "ADD")
            .env("CNI_CONTAINERID", format!("c-{name}"))
            .env("CNI_NETNS", pod.path())
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", "/usr/lib/cni")
            .env(
                "CNI_ARGS",
                format!("K8S_POD_NAMESPACE=default;K8S_POD_NAME={name}"),
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

    fn ping(&self, from_pod: usize, to: &str) -> bool {
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

const VXLAN_POOL: &str = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: vx}\n\
                          spec: {cidr: 10.81.0.0/16, blockSize: 26, vxlanMode: Always, natOutgoing: true}\n";

#[test]
fn vxlan_cluster() {
    require_root!();
    let mut c = Cluster::new(3, VXLAN_POOL);

    let (a, _ip_a) = c.add_pod(0, "pod-a");
    let (_b, ip_b) = c.add_pod(1, "pod-b");
    let (_c, ip_c) = c.add_pod(2, "pod-c");

    // Each node: a blackhole for its block, VXLAN routes to the others.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(c.ping(a, &ip_b) && c.ping(a, &ip_c)) {
        assert!(
            Instant::now() < deadline,
            "pods on other nodes unreachable over VXLAN"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let routes = c.sh(0, "ip route show");
    assert!(routes.contains("blackhole 10.81."), "{routes}");
    assert!(
        routes.contains("dev vxlan.calico proto 80 onlink"),
        "{routes}"
    );
    let dev = c.sh(0, "ip -d link show vxlan.calico");
    assert!(
        dev.contains("vxlan id 4096")
            && dev.contains("local 172.31.0.1")
            && dev.contains("mtu 1450"),
        "{dev}"
    );
    let fdb = c.sh(0, "bridge fdb show dev vxlan.calico");
    assert!(
        fdb.contains("dst 172.31.0.2") && fdb.contains("dst 172.31.0.3"),
        "{fdb}"
    );
    let node1 = c.calicoctl(&["get", "node", "node-1", "-o", "json"]);
    let tunnel: Value = serde_json::from_str(&node1).unwrap();
    let tunnel = tunnel["spec"]["ipv4VXLANTunnelAddr"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        c.sh(0, "ip addr show vxlan.calico")
            .contains(&format!("inet {tunnel}/32"))
    );

    // A pod added later is reachable from the other nodes within seconds.
    let t = Instant::now();
    let (_d, ip_d) = c.add_pod(2, "pod-d");
    while !c.ping(a, &ip_d) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "late pod unreachable"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "pod added later reachable across nodes after {:?}",
        t.elapsed()
    );

    // Killing node 2's agent leaves its dataplane; traffic keeps flowing.
    let before = c.sh(
        1,
        "ip route show proto 80; ip -o link show vxlan.calico | cut -d: -f1",
    );
    c.kill_agent(1);
    assert!(c.ping(a, &ip_b), "traffic stopped when the agent died");
    assert_eq!(
        c.sh(
            1,
            "ip route show proto 80; ip -o link show vxlan.calico | cut -d: -f1"
        ),
        before
    );
    c.start_agent_on(1);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        c.ping(a, &ip_b),
        "traffic stopped after the agent restarted"
    );
    assert_eq!(
        c.sh(
            1,
            "ip route show proto 80; ip -o link show vxlan.calico | cut -d: -f1"
        ),
        before,
        "a restart changed routes or recreated the device"
    );
    drop(c);
}
