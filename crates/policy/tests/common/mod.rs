//! Shared helpers of the integration tests: YAML fixtures, a packet
//! builder, and a per-node dataplane simulation (compile each node's table,
//! run the packet through the hooks it crosses with the reference interpreter).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use calico_policy::model::{EndpointId, EndpointKind, Model};
use calico_policy::nft::sim::{self, SimPacket};
use calico_policy::nft::{Hook, Ruleset, compile::compile};
use calico_policy::{Packet, Peer, PolicyInput};

/// Decodes multi-document YAML into an input. A document of kind `Local`
/// lists the local interfaces: `{kind: Local, interfaces: [cali1, eth0]}`.
pub fn input(yaml: &str) -> PolicyInput {
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(yaml).expect("valid YAML");
    let mut inp = PolicyInput::default();
    for d in docs.into_iter().filter(|d| !d.is_null()) {
        if d["kind"] == "Local" {
            let ifaces = d["interfaces"].as_array().cloned().unwrap_or_default();
            inp.local_interfaces
                .extend(ifaces.iter().filter_map(|i| i.as_str()).map(String::from));
            continue;
        }
        let problems = inp
            .add_document(d.clone())
            .unwrap_or_else(|e| panic!("{e}\n{d}"));
        assert!(problems.is_empty(), "{problems:?}");
    }
    inp
}

/// The interface name of a test pod.
pub fn iface(name: &str) -> String {
    let mut s = format!("cali{name}");
    s.truncate(15);
    s
}

/// A Kubernetes pod's WorkloadEndpoint on `node1`, interface `cali<name>`.
pub fn pod(ns: &str, name: &str, ip: &str, labels: &[(&str, &str)]) -> String {
    pod_on("node1", ns, name, ip, labels, &[])
}

/// A pod with named ports `(name, protocol, port)`, on `node`.
pub fn pod_on(
    node: &str,
    ns: &str,
    name: &str,
    ip: &str,
    labels: &[(&str, &str)],
    ports: &[(&str, &str, u16)],
) -> String {
    let labels: String = labels
        .iter()
        .map(|(k, v)| format!("\n    {k}: '{v}'"))
        .collect();
    let ports: String = ports
        .iter()
        .map(|(n, p, port)| format!("\n  - {{name: '{n}', protocol: {p}, port: {port}}}"))
        .collect();
    let ports = if ports.is_empty() {
        String::new()
    } else {
        format!("\n  ports:{ports}")
    };
    let net = if ip.contains(':') {
        format!("{ip}/128")
    } else {
        format!("{ip}/32")
    };
    format!(
        "---\napiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata:\n  name: '{name}'\n  namespace: '{ns}'\n  labels:\n    projectcalico.org/namespace: '{ns}'{labels}\nspec:\n  orchestrator: k8s\n  node: '{node}'\n  pod: '{name}'\n  endpoint: eth0\n  interfaceName: '{}'\n  ipNetworks: [{net}]\n  profiles: ['kns.{ns}']{ports}\n",
        iface(name)
    )
}

/// The `kns.<ns>` profile Calico keeps for a namespace: allow both ways,
/// namespace labels as `pcns.<key>` plus `pcns.projectcalico.org/name`.
pub fn namespace(ns: &str, labels: &[(&str, &str)]) -> String {
    let labels: String = labels
        .iter()
        .map(|(k, v)| format!("\n    pcns.{k}: '{v}'"))
        .collect();
    format!(
        "---\napiVersion: projectcalico.org/v3\nkind: Profile\nmetadata:\n  name: 'kns.{ns}'\nspec:\n  ingress: [{{action: Allow}}]\n  egress: [{{action: Allow}}]\n  labelsToApply:\n    pcns.projectcalico.org/name: '{ns}'{labels}\n"
    )
}

/// A name the tests use for a peer: `ns/pod`, `host` (the other end's own
/// host), `host@<hep>` (through a host endpoint) or an address (outside).
pub fn peer(m: &Model, s: &str) -> (Peer, IpAddr) {
    if s == "host" {
        return (
            Peer::Host { endpoint: None },
            "192.168.0.1".parse().unwrap(),
        );
    }
    if let Some(hep) = s.strip_prefix("host@") {
        let id = EndpointId::host(hep);
        let ip = m
            .endpoint(&id)
            .and_then(|e| e.labelled.nets.first())
            .map_or("192.168.0.1".parse().unwrap(), |n| n.addr());
        return (Peer::Host { endpoint: Some(id) }, ip);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return (Peer::Outside, ip);
    }
    let (ns, name) = s.split_once('/').expect("ns/pod");
    let id = EndpointId::workload(ns, name);
    let ep = m
        .endpoint(&id)
        .unwrap_or_else(|| panic!("no endpoint {id}"));
    let ip = ep
        .labelled
        .nets
        .first()
        .expect("endpoint has an address")
        .addr();
    (Peer::Workload(id), ip)
}

/// A packet between two named peers.
pub fn packet(m: &Model, from: &str, to: &str, protocol: u8, dst_port: u16) -> Packet {
    let (from, src) = peer(m, from);
    let (to, dst) = peer(m, to);
    Packet {
        src,
        dst,
        protocol,
        src_port: 40000,
        dst_port,
        icmp_type: 8,
        icmp_code: 0,
        from,
        to,
    }
}

/// The node an endpoint lives on.
fn node_of(input: &PolicyInput, id: &EndpointId) -> String {
    match id.kind {
        EndpointKind::Workload => input
            .workload_endpoints
            .iter()
            .find(|w| w.metadata.name == id.name && w.metadata.namespace == id.namespace)
            .map(|w| w.spec.node.clone()),
        EndpointKind::Host => input
            .host_endpoints
            .iter()
            .find(|h| h.metadata.name == id.name)
            .map(|h| h.spec.node.clone()),
    }
    .unwrap_or_default()
}

/// The ruleset of one node: the input with that node's interfaces local.
pub fn node_ruleset(input: &PolicyInput, node: &str) -> Ruleset {
    let mut i = input.clone();
    i.local_interfaces = input
        .workload_endpoints
        .iter()
        .filter(|w| w.spec.node == node)
        .map(|w| w.spec.interface_name.clone())
        .chain(
            input
                .host_endpoints
                .iter()
                .filter(|h| h.spec.node == node)
                .map(|h| h.spec.interface_name.clone()),
        )
        .collect::<BTreeSet<_>>();
    compile(&Model::build(&i))
}

/// The uplink interface of every simulated node.
pub const UPLINK: &str = "uplink0";

/// Every node's compiled table, to run packets through.
pub struct Dataplane {
    input: PolicyInput,
    nodes: BTreeMap<String, Ruleset>,
}

impl Dataplane {
    /// Compiles the table of every node that has an endpoint.
    pub fn new(input: &PolicyInput) -> Dataplane {
        let nodes: BTreeSet<String> = input
            .workload_endpoints
            .iter()
            .map(|w| w.spec.node.clone())
            .chain(input.host_endpoints.iter().map(|h| h.spec.node.clone()))
            .collect();
        Dataplane {
            input: input.clone(),
            nodes: nodes
                .into_iter()
                .map(|n| (n.clone(), node_ruleset(input, &n)))
                .collect(),
        }
    }

    /// Runs `p` through the tables of the nodes it crosses; returns
    /// (delivered, log lines).
    pub fn send(&self, m: &Model, p: &Packet) -> (bool, usize) {
        let input = &self.input;
        let iface_of = |id: &EndpointId| {
            m.endpoint(id)
                .map(|e| e.interface.clone())
                .unwrap_or_default()
        };
        let hop = |node: &str, hook: Hook, iif: &str, oif: &str| {
            let sp = SimPacket {
                src: p.src,
                dst: p.dst,
                protocol: p.protocol,
                src_port: p.src_port,
                dst_port: p.dst_port,
                icmp_type: p.icmp_type,
                icmp_code: p.icmp_code,
                iif: iif.to_string(),
                oif: oif.to_string(),
                ct: None,
            };
            sim::run(&self.nodes[node], hook, &sp).expect("ruleset runs")
        };
        let mut hops = Vec::new();
        match (&p.from, &p.to) {
            (Peer::Workload(a), Peer::Workload(b)) => {
                let (na, nb) = (node_of(input, a), node_of(input, b));
                if na == nb {
                    hops.push(hop(&na, Hook::Forward, &iface_of(a), &iface_of(b)));
                } else {
                    hops.push(hop(&na, Hook::Forward, &iface_of(a), UPLINK));
                    hops.push(hop(&nb, Hook::Forward, UPLINK, &iface_of(b)));
                }
            }
            (Peer::Workload(a), Peer::Host { .. }) => {
                hops.push(hop(&node_of(input, a), Hook::Input, &iface_of(a), ""))
            }
            (Peer::Workload(a), Peer::Outside) => {
                hops.push(hop(&node_of(input, a), Hook::Forward, &iface_of(a), UPLINK))
            }
            (Peer::Host { .. }, Peer::Workload(b)) => {
                hops.push(hop(&node_of(input, b), Hook::Output, "", &iface_of(b)))
            }
            (Peer::Outside, Peer::Workload(b)) => {
                hops.push(hop(&node_of(input, b), Hook::Forward, UPLINK, &iface_of(b)))
            }
            (Peer::Outside, Peer::Host { endpoint: Some(h) }) => {
                hops.push(hop(&node_of(input, h), Hook::Input, &iface_of(h), ""))
            }
            (Peer::Host { endpoint: Some(h) }, Peer::Outside) => {
                hops.push(hop(&node_of(input, h), Hook::Output, "", &iface_of(h)))
            }
            _ => {}
        }
        let mut logs = 0;
        for h in hops {
            logs += h.logs;
            if !h.accepted {
                return (false, logs);
            }
        }
        (true, logs)
    }
}

/// N policies and M endpoints (all local, on `node1`) in 10 groups: policy
/// i applies to group i mod 10 and allows TCP to one port from the endpoint
/// labelled `id == e<i mod M>`.
pub fn scale_input(policies: usize, endpoints: usize) -> PolicyInput {
    let mut i = PolicyInput::default();
    let mut add = |v: serde_json::Value| {
        i.add_document(v).unwrap();
    };
    add(
        serde_json::json!({"apiVersion": "projectcalico.org/v3", "kind": "Profile", "metadata": {"name": "kns.scale"},
               "spec": {"ingress": [{"action": "Allow"}], "egress": [{"action": "Allow"}]}}),
    );
    for e in 0..endpoints {
        add(
            serde_json::json!({"apiVersion": "projectcalico.org/v3", "kind": "WorkloadEndpoint",
                   "metadata": {"name": format!("e{e}"), "namespace": "scale",
                                "labels": {"group": format!("g{}", e % 10), "id": format!("e{e}")}},
                   "spec": {"orchestrator": "k8s", "node": "node1", "interfaceName": format!("cali{e:08}"),
                            "ipNetworks": [format!("10.{}.{}.{}/32", e / 65536, (e / 256) % 256, e % 256)],
                            "profiles": ["kns.scale"]}}),
        );
    }
    for p in 0..policies {
        add(
            serde_json::json!({"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
                   "metadata": {"name": format!("p{p}"), "namespace": "scale"},
                   "spec": {"order": p, "selector": format!("group == 'g{}'", p % 10),
                            "ingress": [{"action": "Allow", "protocol": "TCP",
                                         "source": {"selector": format!("id == 'e{}'", p % endpoints)},
                                         "destination": {"ports": [8000 + p % 1000]}}]}}),
        );
    }
    i.local_interfaces = (0..endpoints).map(|e| format!("cali{e:08}")).collect();
    i
}
