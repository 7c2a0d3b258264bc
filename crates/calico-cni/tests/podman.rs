//! End to end with a real container runtime: podman (CNI backend, runc)
//! runs busybox containers on a conflist that chains `calico`, `portmap`
//! and `bandwidth`. The containers get pool addresses, ping and reach each
//! other over HTTP, a published host port reaches a container, and removing
//! the containers releases every address, veth and endpoint.
//!
//! A runtime works in the machine's own namespace, so this test touches it:
//! it turns on IPv4 forwarding and lets portmap add its iptables chains, and
//! puts back everything it changed when it ends (also on failure). Traffic
//! goes only to the containers' addresses and to 127.0.0.1.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use calico_testutil::{free_port, is_root, workspace_bin};

const NETWORK: &str = "calicorse2e";
const NODE: &str = "e2e-node";

/// The machine state this test may change, captured first and put back on drop.
struct HostGuard {
    dir: tempfile::TempDir,
    ip_forward: String,
    nft_tables: BTreeSet<String>,
    had_cni_dir: bool,
    had_hostport_chains: [bool; 2],
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr)))
    }
}

fn nft_tables() -> BTreeSet<String> {
    run(Command::new("nft").args(["list", "tables"]))
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

fn has_hostport_chains(tool: &str) -> bool {
    run(Command::new(tool).args(["-t", "nat", "-S"])).is_ok_and(|s| s.contains("CNI-HOSTPORT-DNAT"))
}

impl HostGuard {
    fn new() -> HostGuard {
        HostGuard {
            dir: tempfile::tempdir().unwrap(),
            ip_forward: std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
                .unwrap()
                .trim()
                .to_string(),
            nft_tables: nft_tables(),
            had_cni_dir: Path::new("/var/lib/cni").exists(),
            had_hostport_chains: [
                has_hostport_chains("iptables"),
                has_hostport_chains("ip6tables"),
            ],
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn podman(&self) -> Command {
        let mut c = Command::new("podman");
        c.arg("--root")
            .arg(self.path("root"))
            .arg("--runroot")
            .arg(self.path("runroot"))
            .env("CONTAINERS_CONF", self.path("containers.conf"));
        c
    }
}

impl Drop for HostGuard {
    fn drop(&mut self) {
        // Containers first: their DELs remove veths, routes and port maps.
        let _ = run(self.podman().args(["rm", "-f", "-a", "-t", "0"]));
        let _ = std::fs::write("/proc/sys/net/ipv4/ip_forward", &self.ip_forward);
        // portmap leaves its (empty) base chains behind; remove what it added.
        for (i, tool) in ["iptables", "ip6tables"].iter().enumerate() {
            if self.had_hostport_chains[i] {
                continue;
            }
            let t = |args: &[&str]| {
                let _ = run(Command::new(tool).args(["-t", "nat"]).args(args));
            };
            for hook in ["PREROUTING", "OUTPUT"] {
                let jump = "-m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT";
                let args: Vec<&str> = ["-D", hook].into_iter().chain(jump.split(' ')).collect();
                t(&args);
            }
            t(&[
                "-D",
                "POSTROUTING",
                "-m",
                "comment",
                "--comment",
                "CNI portfwd requiring masquerade",
                "-j",
                "CNI-HOSTPORT-MASQ",
            ]);
            for chain in [
                "CNI-HOSTPORT-DNAT",
                "CNI-HOSTPORT-MASQ",
                "CNI-HOSTPORT-SETMARK",
            ] {
                t(&["-F", chain]);
                t(&["-X", chain]);
            }
        }
        // Tables iptables-nft created for portmap.
        for table in nft_tables().difference(&self.nft_tables) {
            let words: Vec<&str> = table.split_whitespace().collect();
            if let ["table", family, name] = words.as_slice() {
                let _ = run(Command::new("nft").args(["delete", "table", family, name]));
            }
        }
        if !self.had_cni_dir {
            let _ = std::fs::remove_dir_all("/var/lib/cni");
        }
    }
}

fn calicoctl(g: &HostGuard, args: &[&str]) -> String {
    let out = Command::new(workspace_bin("calicoctl"))
        .args(args)
        .env("DATASTORE_TYPE", "local")
        .env("DATASTORE_PATH", g.path("ds.db"))
        .env_remove("ETCD_ENDPOINTS")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn http_get(port: u16) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(3))
        .map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut body = String::new();
    s.read_to_string(&mut body).map_err(|e| e.to_string())?;
    Ok(body)
}

#[test]
fn podman_containers_on_calico() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    if run(Command::new("podman").arg("--version")).is_err()
        || !Path::new("/usr/sbin/runc").exists()
    {
        eprintln!("skipped: podman and runc are not installed (Debian podman, runc)");
        return;
    }
    let g = HostGuard::new();
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").unwrap();

    // A busybox root filesystem with a page to serve.
    let rootfs = g.path("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::create_dir_all(rootfs.join("www")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for tool in ["sh", "ip", "ping", "httpd", "wget", "sleep", "cat"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(tool)).unwrap();
    }
    std::fs::write(rootfs.join("www/index.html"), "hello-from-calico-rs\n").unwrap();

    // podman's private configuration: CNI backend, our plugins first.
    let plugins = Path::new(env!("CARGO_BIN_EXE_calico")).parent().unwrap();
    std::fs::create_dir_all(g.path("net")).unwrap();
    std::fs::write(
        g.path("containers.conf"),
        format!(
            "[network]\nnetwork_backend = \"cni\"\ncni_plugin_dirs = [\"{}\", \"/usr/lib/cni\"]\n\
             network_config_dir = \"{}\"\n[engine]\ncgroup_manager = \"cgroupfs\"\nruntime = \"runc\"\n\
             [engine.runtimes]\nrunc = [\"/usr/sbin/runc\"]\n",
            plugins.display(),
            g.path("net").display()
        ),
    )
    .unwrap();
    let conflist = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": NETWORK,
        "plugins": [
            {"type": "calico", "datastore_type": "local",
             "datastore_path": g.path("ds.db").display().to_string(),
             "nodename": NODE, "log_level": "info",
             "ipam_lock_file": g.path("ipam.lock").display().to_string(),
             "log_file_path": g.path("cni.log").display().to_string(),
             "ipam": {"type": "calico-ipam"}},
            {"type": "portmap", "snat": true, "capabilities": {"portMappings": true}},
            {"type": "bandwidth", "ingressRate": 100_000_000, "ingressBurst": 1_000_000}
        ]
    });
    std::fs::write(g.path("net/calico.conflist"), conflist.to_string()).unwrap();
    std::fs::write(
        g.path("cluster.yaml"),
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: e2e}\nspec: {cidr: 10.251.0.0/16, blockSize: 26}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: e2e-node}\n",
    )
    .unwrap();
    let applied = calicoctl(
        &g,
        &["apply", "-f", &g.path("cluster.yaml").display().to_string()],
    );
    assert!(applied.contains("Successfully applied"), "{applied}");

    let host_port = free_port();
    let start = |name: &str, publish: Option<u16>| {
        let mut c = g.podman();
        c.args(["run", "-d", "--name", name, "--network", NETWORK]);
        if let Some(p) = publish {
            c.args(["-p", &format!("{p}:80")]);
        }
        c.args([
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            "--rootfs",
        ])
        .arg(&rootfs)
        .args(["httpd", "-f", "-p", "80", "-h", "/www"]);
        run(&mut c).unwrap_or_else(|e| {
            let log = std::fs::read_to_string(g.path("cni.log")).unwrap_or_default();
            panic!("podman run {name}: {e}\ncni log:\n{log}")
        })
    };
    start("web-a", None);
    start("web-b", Some(host_port));
    let ip_of = |name: &str| {
        run(g.podman().args([
            "inspect",
            "-f",
            &format!("{{{{.NetworkSettings.Networks.{NETWORK}.IPAddress}}}}"),
            name,
        ]))
        .unwrap()
        .trim()
        .to_string()
    };
    let (a, b) = (ip_of("web-a"), ip_of("web-b"));
    assert!(
        a.starts_with("10.251.") && b.starts_with("10.251.") && a != b,
        "{a} {b}"
    );

    // The endpoints calico recorded, and their veths on the host.
    let eps: serde_json::Value = serde_json::from_str(&calicoctl(
        &g,
        &["get", "workloadendpoints", "-A", "-o", "json"],
    ))
    .unwrap();
    let veths: Vec<String> = eps["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["spec"]["interfaceName"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(veths.len(), 2, "{eps}");
    for v in &veths {
        let link = run(Command::new("ip").args(["link", "show", v])).unwrap();
        assert!(link.contains("ee:ee:ee:ee:ee:ee"), "{link}");
        // bandwidth found the host end in calico's result and shaped it.
        let qdisc = run(Command::new("tc").args(["qdisc", "show", "dev", v])).unwrap();
        assert!(
            qdisc.contains("tbf"),
            "bandwidth did not shape {v}: {qdisc}"
        );
    }

    // Container to container: ping and HTTP.
    let ping = run(g
        .podman()
        .args(["exec", "web-b", "ping", "-c", "1", "-W", "3", &a]));
    assert!(ping.is_ok(), "web-b cannot ping web-a: {ping:?}");
    let page = run(g
        .podman()
        .args(["exec", "web-b", "wget", "-qO-", &format!("http://{a}/")]));
    assert_eq!(page.as_deref().map(str::trim), Ok("hello-from-calico-rs"));
    let page = run(g
        .podman()
        .args(["exec", "web-a", "wget", "-qO-", &format!("http://{b}/")]));
    assert_eq!(page.as_deref().map(str::trim), Ok("hello-from-calico-rs"));

    // The published port (portmap, chained after calico) reaches web-b.
    let got = http_get(host_port);
    assert!(
        got.as_deref()
            .is_ok_and(|b| b.contains("hello-from-calico-rs")),
        "127.0.0.1:{host_port}: {got:?}"
    );

    // Removing the containers removes everything calico made.
    run(g.podman().args(["rm", "-f", "-t", "0", "web-a", "web-b"])).unwrap();
    let routes = run(Command::new("ip").args(["route", "show"])).unwrap();
    assert!(!routes.contains("10.251."), "routes left behind:\n{routes}");
    let eps = calicoctl(&g, &["get", "workloadendpoints", "-A"]);
    assert_eq!(eps.lines().count(), 1, "endpoints left behind:\n{eps}");
    let check = calicoctl(&g, &["ipam", "check", "--show-problem-ips"]);
    assert!(check.contains("Found 0 IPs allocated in IPAM."), "{check}");
    assert!(check.contains("found 0 problems"), "{check}");
    // The veths go a moment after DEL returns (deleted by a detached process).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    for v in &veths {
        while run(Command::new("ip").args(["link", "show", v])).is_ok() {
            assert!(std::time::Instant::now() < deadline, "{v} left behind");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
