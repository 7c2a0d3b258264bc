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
            .env(
                "CALICO_IPAM_SOCKET",
                self.dir.path().join(format!("{}.sock", n.name)),
            )
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
        self.add_pod_with(i, name, json!({}))
    }

    /// Like `add_pod`, with extra network-config fields merged in.
    fn add_pod_with(&mut self, i: usize, name: &str, extra: Value) -> (usize, String) {
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

    // NAT outgoing, floating IPs and anti-spoofing toward an "external"
    // namespace on the fabric.
    let ext = TestNetns::new("ext");
    ext.exec(&[
        "sh",
        "-c",
        &format!(
            "ip link add eth0 type veth peer name ext0 netns {f} && ip netns exec {f} ip link set ext0 master br0 up && \
             ip addr add 172.31.0.200/24 dev eth0 && ip link set eth0 up && ip route add 172.30.5.5/32 via 172.31.0.1",
            f = c.fabric.name()
        ),
    ]);
    let ext_ns = calico_dataplane::NetNs::open(ext.path()).unwrap();
    let listener = ext_ns
        .run(|| std::net::TcpListener::bind("172.31.0.200:7000"))
        .unwrap()
        .unwrap();
    // Accepts one connection on a thread while the pod connects, and
    // returns the source address the external side saw.
    let peer_of = |c: &Cluster, pod: usize| {
        std::thread::scope(|s| {
            let acc = s.spawn(|| {
                let (conn, peer) = listener.accept().unwrap();
                drop(conn);
                peer.ip().to_string()
            });
            let out =
                c.pods[pod].try_exec(&["sh", "-c", "echo hi | busybox nc -w 2 172.31.0.200 7000"]);
            let peer = acc.join().unwrap();
            let _ = out;
            peer
        })
    };
    assert_eq!(
        peer_of(&c, a),
        "172.31.0.1",
        "pool traffic leaving the pools is masqueraded to the node address"
    );

    let (e, ip_e) = c.add_pod_with(
        0,
        "pod-e",
        json!({"feature_control": {"floating_ips": true},
               "runtimeConfig": {"io.kubernetes.cri.pod-annotations":
                   {"cni.projectcalico.org/floatingIPs": "[\"172.30.5.5\"]"}}}),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !c.sh(0, "nft list table inet calico").contains("dnat ip to") {
        assert!(
            Instant::now() < deadline,
            "floating IP rules never appeared"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        peer_of(&c, e),
        "172.30.5.5",
        "a pod with a floating IP leaves with it"
    );
    let server = Command::new("ip")
        .args([
            "netns",
            "exec",
            c.pods[e].name(),
            "busybox",
            "nc",
            "-l",
            "-p",
            "8000",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let sent = ext.try_exec(&[
        "sh",
        "-c",
        "echo via-floating | busybox nc -w 2 172.30.5.5 8000",
    ]);
    let got = server.wait_with_output().unwrap();
    assert!(sent.is_ok(), "{sent:?}");
    assert_eq!(String::from_utf8_lossy(&got.stdout).trim(), "via-floating");
    let _ = ip_e;

    // Anti-spoofing: a pod sending from an address that is not its own is dropped.
    c.pods[a].exec(&["ip", "addr", "add", "10.81.250.250/32", "dev", "eth0"]);
    assert!(
        c.pods[a]
            .try_exec(&["ping", "-c", "1", "-W", "1", "-I", "10.81.250.250", &ip_b])
            .is_err(),
        "a spoofed source got through"
    );
    assert!(c.ping(a, &ip_b), "the pod's own address must still work");

    // The datastore goes away: agents stay live, turn not ready, and leave
    // the dataplane alone; when it is back they are ready again.
    c.etcd.kill();
    let probe = |c: &Cluster, flag: &str| c.node_cmd(0, &[flag]).output().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = probe(&c, "-felix-ready");
        if !r.status.success() {
            assert!(
                String::from_utf8_lossy(&r.stderr).contains("datastore"),
                "{r:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node-1 stayed ready without its datastore"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        probe(&c, "-felix-live").status.success(),
        "not live without the datastore"
    );
    assert!(
        c.ping(a, &ip_b),
        "traffic stopped when the datastore went away"
    );
    c.etcd.restart();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !probe(&c, "-felix-ready").status.success() {
        assert!(Instant::now() < deadline, "node-1 never became ready again");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(c.ping(a, &ip_b));
    drop(c);
}
