//! The "host" of the calico plugin tests: a network namespace with
//! forwarding on and an uplink, its datastore, and pods as namespaces.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use calico_testutil::TestNetns;
use serde_json::{Value, json};

use super::*;

pub const BIN: &str = env!("CARGO_BIN_EXE_calico");
pub const NODE: &str = "node-a";
/// The isolated host's own addresses (on its loopback).
pub const ISOLATED_V4: &str = "192.0.2.50";
pub const ISOLATED_V6: &str = "2001:db8:50::1";

/// A host: its own namespace with forwarding on and an uplink (a veth to
/// a "world" namespace carrying the default route, as most real hosts
/// have; [`Host::isolated`] has none), and its datastore (etcd runs inside
/// the host namespace, on its loopback).
pub struct Host {
    pub ds: Ds,
    pub ns: TestNetns,
    /// The far end of the uplink; none on an isolated host.
    pub world: Option<TestNetns>,
}

pub struct Pod {
    pub ns: TestNetns,
    pub id: String,
    pub args: String,
}

impl Host {
    pub fn new(store: fn(&str) -> Ds) -> Host {
        let ns = TestNetns::new("host");
        let world = TestNetns::new("world");
        ns.exec(&[
            "sh",
            "-c",
            &format!(
                "echo 1 > /proc/sys/net/ipv4/ip_forward; echo 1 > /proc/sys/net/ipv6/conf/all/forwarding; \
                 ip link add up0 type veth peer name up1 netns {w}; \
                 ip addr add 192.0.2.1/24 dev up0; ip link set up0 up; \
                 ip netns exec {w} ip addr add 192.0.2.2/24 dev up1; ip netns exec {w} ip link set up1 up; \
                 ip route add default via 192.0.2.2",
                w = world.name()
            ),
        ]);
        let ds = store(ns.name());
        Host {
            ds,
            ns,
            world: Some(world),
        }
    }

    /// An isolated (air-gapped) host: forwarding on, its own addresses
    /// [`ISOLATED_V4`] and [`ISOLATED_V6`] on loopback, no uplink and no
    /// default route in either family.
    pub fn isolated(store: fn(&str) -> Ds) -> Host {
        let ns = TestNetns::new("iso");
        ns.exec(&[
            "sh",
            "-c",
            &format!(
                "echo 1 > /proc/sys/net/ipv4/ip_forward; echo 1 > /proc/sys/net/ipv6/conf/all/forwarding; \
                 ip addr add {ISOLATED_V4}/32 dev lo; ip addr add {ISOLATED_V6}/128 dev lo"
            ),
        ]);
        let routes = ns.exec(&[
            "sh",
            "-c",
            "ip route show default; ip -6 route show default",
        ]);
        assert!(
            routes.trim().is_empty(),
            "isolated host has a default route: {routes}"
        );
        let ds = store(ns.name());
        Host {
            ds,
            ns,
            world: None,
        }
    }

    pub fn conf(&self, version: &str, extra: Value) -> Value {
        let mut c = self.ds.conf(version, NODE, json!({"type": "calico-ipam"}));
        if let (Some(c), Some(e)) = (c.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        c
    }

    pub fn call(&self, command: &str, pod: &Pod, conf: &Value) -> Out {
        self.call_raw(
            command,
            &pod.id,
            pod.ns.path().display().to_string(),
            &pod.args,
            conf,
        )
    }

    pub fn call_raw(
        &self,
        command: &str,
        id: &str,
        netns: String,
        args: &str,
        conf: &Value,
    ) -> Out {
        self.call_within(command, id, netns, args, conf, None)
            .unwrap_or_else(|| panic!("{BIN} did not finish"))
    }

    /// [`Host::call_raw`], killed and `None` when not finished within `limit`.
    pub fn call_within(
        &self,
        command: &str,
        id: &str,
        netns: String,
        args: &str,
        conf: &Value,
        limit: Option<Duration>,
    ) -> Option<Out> {
        Call {
            bin: BIN,
            host_netns: Some(self.ns.name()),
            command,
            container: id,
            netns,
            ifname: "eth0",
            args,
            path: "/usr/lib/cni:/opt/cni/bin",
        }
        .run_within(&conf.to_string(), limit)
    }

    pub fn sh(&self, cmd: &str) -> String {
        self.ns.exec(&["sh", "-c", cmd])
    }

    /// Every link in the host namespace but loopback.
    pub fn links(&self) -> String {
        self.sh("ip -o link show | grep -v ': lo:' || true")
    }

    pub fn calicoctl_json(&self, args: &[&str]) -> Value {
        let (code, out) = self.ds.calicoctl(args);
        assert_eq!(code, 0, "calicoctl {args:?}: {out}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    pub fn endpoints(&self) -> Vec<Value> {
        let v = self.calicoctl_json(&["get", "workloadendpoints", "-A", "-o", "json"]);
        v["items"].as_array().cloned().unwrap_or_default()
    }

    pub fn ipam_in_use(&self) -> String {
        let (code, out) = self.ds.calicoctl(&["ipam", "check", "--show-problem-ips"]);
        let _ = code;
        out
    }

    /// Nothing left behind: no veth, no endpoint, no allocation.
    pub fn assert_clean(&self) {
        // Routes go synchronously; DEL leaves the veth's deletion (tens of
        // milliseconds of kernel time) to a detached process: allow it 5 s.
        let routes = self.sh("ip route show; ip -6 route show");
        assert!(!routes.contains("cali"), "leaked route:\n{routes}");
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut links = self.links();
        while links.contains("cali") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            links = self.links();
        }
        assert!(!links.contains("cali"), "leaked veth:\n{links}");
        if self.world.is_some() {
            assert!(links.contains("up0"), "the uplink went missing:\n{links}");
        }
        assert!(
            self.endpoints().is_empty(),
            "leaked endpoint: {:?}",
            self.endpoints()
        );
        let check = self.ipam_in_use();
        assert!(
            check.contains("Found 0 IPs allocated in IPAM."),
            "leaked address:\n{check}"
        );
    }
}

pub fn pod(ns_name: &str, name: &str) -> Pod {
    let ns = TestNetns::new("pod");
    let id = format!("ctr-{}-{name}", ns.name());
    Pod {
        args: format!(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE={ns_name};K8S_POD_NAME={name};K8S_POD_INFRA_CONTAINER_ID={id}"
        ),
        ns,
        id,
    }
}

pub fn bare(cidr: &str) -> &str {
    cidr.split('/').next().unwrap_or(cidr)
}

pub fn msg(out: &Out) -> String {
    out.json["msg"].as_str().unwrap_or("").to_string()
}

pub fn ping(from: &Pod, to: &str) -> bool {
    let six = if to.contains(':') { "-6" } else { "-4" };
    from.ns
        .try_exec(&["ping", six, "-c", "1", "-W", "2", to])
        .is_ok()
}

pub fn pools(h: &Host) {
    h.ds.apply(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: v4}\nspec: {cidr: '10.70.0.0/16', blockSize: 26}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: v6}\nspec: {cidr: 'fd00:70::/64', blockSize: 122}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: other}\nspec: {cidr: '10.71.0.0/24', blockSize: 28, nodeSelector: '!all()'}\n",
    );
}

pub fn local_host(_ns: &str) -> Ds {
    local()
}

pub fn etcd_host(ns: &str) -> Ds {
    etcd_in(Some(ns))
}
