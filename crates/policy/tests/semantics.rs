//! Calico's policy semantics, one behaviour per test. Every case is decided
//! twice: by the oracle, and by the compiled nftables run through the
//! reference interpreter; both must give the expected answer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use calico_policy::Packet;
use calico_policy::model::{Model, proto};
use calico_policy::oracle::evaluate_model;
use common::{Dataplane, input, namespace, packet, pod, pod_on};

struct World {
    dataplane: Dataplane,
    model: Model,
}

impl World {
    fn new(yaml: &str) -> World {
        World::new_with(yaml, |_| {})
    }

    /// Like `new`, with the input adjusted by `f` first.
    fn new_with(yaml: &str, f: impl FnOnce(&mut calico_policy::PolicyInput)) -> World {
        let mut input = input(yaml);
        f(&mut input);
        // Every endpoint of node1 is local (tests with node2 use simulate's per-node compile).
        input.local_interfaces = input
            .workload_endpoints
            .iter()
            .map(|w| w.spec.interface_name.clone())
            .collect();
        input.local_interfaces.extend(
            input
                .host_endpoints
                .iter()
                .map(|h| h.spec.interface_name.clone()),
        );
        let model = Model::build(&input);
        assert!(model.problems.is_empty(), "{:?}", model.problems);
        World {
            dataplane: Dataplane::new(&input),
            model,
        }
    }

    /// (allowed, logs), asserting the oracle and the dataplane agree.
    fn send(&self, p: &Packet) -> (bool, usize) {
        let v = evaluate_model(&self.model, p);
        let (allowed, logs) = self.dataplane.send(&self.model, p);
        assert_eq!(
            (v.allowed, v.logs),
            (allowed, logs),
            "oracle ({}) and dataplane disagree on {p:?}",
            v.reason
        );
        (allowed, logs)
    }

    fn allowed(&self, from: &str, to: &str, protocol: u8, port: u16) -> bool {
        self.send(&packet(&self.model, from, to, protocol, port)).0
    }

    fn tcp(&self, from: &str, to: &str, port: u16) -> bool {
        self.allowed(from, to, proto::TCP, port)
    }
}

fn base() -> String {
    [
        namespace("a", &[("team", "blue")]),
        namespace("b", &[("team", "red")]),
        pod("a", "x", "10.0.0.1", &[("app", "web")]),
        pod("a", "y", "10.0.0.2", &[("app", "db")]),
        pod("b", "z", "10.0.1.1", &[("app", "web")]),
    ]
    .concat()
}

fn with(extra: &str) -> World {
    World::new(&format!("{}{extra}", base()))
}

#[test]
fn no_policy_means_the_namespace_profile_allows() {
    let w = with("");
    assert!(w.tcp("a/x", "b/z", 80));
    assert!(w.tcp("10.9.9.9", "a/y", 5432));
    assert!(w.tcp("a/y", "8.8.8.8", 53));
}

#[test]
fn a_namespace_without_profile_allows_and_other_missing_profiles_deny() {
    let w = World::new(&[
        pod("ghost", "g", "10.0.2.1", &[]),
        "---\napiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata: {name: vm, namespace: default}\nspec: {orchestrator: cni, node: node1, interfaceName: calivm, ipNetworks: [10.0.3.1/32], profiles: [nothing]}\n".to_string(),
    ]
    .concat());
    assert!(w.tcp("10.9.9.9", "ghost/g", 80));
    assert!(!w.tcp("10.9.9.9", "default/vm", 80));
}

#[test]
fn kubernetes_default_deny_ingress_and_egress() {
    let w = with(
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: a}\nspec:\n  podSelector: {}\n  policyTypes: [Ingress, Egress]\n",
    );
    assert!(!w.tcp("b/z", "a/x", 80), "ingress denied");
    assert!(!w.tcp("a/x", "b/z", 80), "egress denied");
    assert!(!w.tcp("a/x", "a/y", 80), "within the namespace too");
    assert!(w.tcp("b/z", "8.8.8.8", 80), "other namespaces unaffected");
}

#[test]
fn kubernetes_allow_from_namespace_and_pod_selectors() {
    let w = with(
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: db, namespace: a}\nspec:\n  podSelector: {matchLabels: {app: db}}\n  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {team: red}}\n      podSelector: {matchLabels: {app: web}}\n    ports: [{port: 5432}]\n",
    );
    assert!(w.tcp("b/z", "a/y", 5432), "red web pod");
    assert!(!w.tcp("a/x", "a/y", 5432), "blue namespace");
    assert!(!w.tcp("b/z", "a/y", 5433), "other port");
    assert!(!w.allowed("b/z", "a/y", proto::UDP, 5432), "other protocol");
    assert!(
        w.tcp("a/y", "a/x", 80),
        "pods not selected keep their profile"
    );
}

#[test]
fn kubernetes_pod_selector_alone_is_limited_to_the_policy_namespace() {
    let w = with(
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: web, namespace: a}\nspec:\n  podSelector: {matchLabels: {app: db}}\n  ingress:\n  - from: [{podSelector: {matchLabels: {app: web}}}]\n",
    );
    assert!(w.tcp("a/x", "a/y", 1));
    assert!(!w.tcp("b/z", "a/y", 1), "same labels in another namespace");
}

#[test]
fn ip_block_with_except() {
    let w = with(
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: cidr, namespace: a}\nspec:\n  podSelector: {}\n  ingress:\n  - from: [{ipBlock: {cidr: 10.0.0.0/16, except: [10.0.1.0/24]}}]\n",
    );
    assert!(w.tcp("a/y", "a/x", 80));
    assert!(!w.tcp("b/z", "a/x", 80), "10.0.1.1 is excepted");
    assert!(!w.tcp("10.1.0.1", "a/x", 80));
}

#[test]
fn port_ranges_and_named_ports() {
    let w = World::new(&[
        namespace("a", &[]),
        pod("a", "c", "10.0.0.9", &[]),
        pod_on("node1", "a", "s", "10.0.0.10", &[("app", "srv")], &[("http", "TCP", 8080), ("dns", "UDP", 53)]),
        pod_on("node1", "a", "t", "10.0.0.11", &[("app", "srv")], &[("http", "TCP", 9090)]),
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: a}\nspec:\n  podSelector: {matchLabels: {app: srv}}\n  ingress:\n  - ports: [{port: 80, endPort: 82}, {port: http}, {port: dns, protocol: UDP}]\n".to_string(),
    ]
    .concat());
    assert!(w.tcp("a/c", "a/s", 81));
    assert!(!w.tcp("a/c", "a/s", 83));
    assert!(w.tcp("a/c", "a/s", 8080), "named port of s");
    assert!(!w.tcp("a/c", "a/s", 9090), "9090 is t's http, not s's");
    assert!(w.tcp("a/c", "a/t", 9090));
    assert!(w.allowed("a/c", "a/s", proto::UDP, 53));
    assert!(!w.tcp("a/c", "a/s", 53), "dns is UDP");
}

#[test]
fn egress_to_a_net() {
    let w = with(
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: out, namespace: a}\nspec:\n  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Egress]\n  egress:\n  - to: [{ipBlock: {cidr: 8.8.8.0/24}}]\n",
    );
    assert!(w.tcp("a/x", "8.8.8.8", 53));
    assert!(!w.tcp("a/x", "1.1.1.1", 53));
    assert!(!w.tcp("a/x", "a/y", 80));
    assert!(w.tcp("a/y", "1.1.1.1", 53), "not selected");
}

#[test]
fn pass_to_the_next_tier_and_tier_default_actions() {
    let tiers = "---\napiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: security}\nspec: {order: 100}\n---\napiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: platform}\nspec: {order: 200, defaultAction: Pass}\n";
    let w = with(&format!(
        "{tiers}---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: security.pass}}\nspec:\n  tier: security\n  selector: app == 'web'\n  ingress:\n  - {{action: Pass, source: {{nets: [10.0.0.0/24]}}}}\n  - {{action: Deny, protocol: TCP, destination: {{ports: [22]}}}}\n---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: platform.noop}}\nspec:\n  tier: platform\n  selector: all()\n  ingress:\n  - {{action: Deny, protocol: UDP}}\n---\napiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {{name: allow-80, namespace: b}}\nspec:\n  selector: app == 'web'\n  ingress:\n  - {{action: Allow, protocol: TCP, destination: {{ports: [80]}}}}\n"
    ));
    // z (b, web): security passes 10.0.0.0/24, denies the rest of TCP 22, then
    // end of tier security → Deny for everything else from outside 10.0.0.0/24.
    assert!(
        w.tcp("a/x", "b/z", 80),
        "passed by security, platform passes by default, allowed in default"
    );
    assert!(
        !w.tcp("a/x", "b/z", 81),
        "default tier applies and ends in deny"
    );
    assert!(!w.tcp("10.5.0.1", "b/z", 80), "security tier ends in deny");
    assert!(
        !w.allowed("a/x", "b/z", proto::UDP, 53),
        "platform denies UDP"
    );
    // y (a, db): only platform applies; it passes by default, no default-tier
    // policy → profile allows.
    assert!(w.tcp("b/z", "a/y", 5432));
    assert!(!w.allowed("b/z", "a/y", proto::UDP, 5432));
}

#[test]
fn deny_before_allow_by_order_and_name_tie_break() {
    let w = with(
        "---\napiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: b-allow, namespace: a}\nspec:\n  order: 10\n  selector: all()\n  ingress: [{action: Allow}]\n---\napiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: a-deny, namespace: a}\nspec:\n  order: 10\n  selector: app == 'db'\n  ingress: [{action: Deny, protocol: TCP}]\n---\napiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: first, namespace: a}\nspec:\n  order: 1\n  selector: app == 'web'\n  ingress: [{action: Deny, source: {selector: app == 'db'}}]\n",
    );
    assert!(
        !w.tcp("b/z", "a/y", 80),
        "a-deny sorts before b-allow at equal order"
    );
    assert!(w.allowed("b/z", "a/y", proto::UDP, 80));
    assert!(!w.tcp("a/y", "a/x", 80), "order 1 denies db → web");
    assert!(w.tcp("b/z", "a/x", 80));
}

#[test]
fn log_logs_and_continues() {
    let w = with(
        "---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: log}\nspec:\n  selector: app == 'db'\n  ingress:\n  - {action: Log, protocol: TCP, destination: {ports: [1, 2]}}\n  - {action: Allow, protocol: TCP}\n",
    );
    assert_eq!(
        w.send(&packet(&w.model, "a/x", "a/y", proto::TCP, 2)),
        (true, 1)
    );
    assert_eq!(
        w.send(&packet(&w.model, "a/x", "a/y", proto::TCP, 3)),
        (true, 0)
    );
    assert_eq!(
        w.send(&packet(&w.model, "a/x", "a/y", proto::UDP, 2)),
        (false, 0)
    );
}

#[test]
fn global_policy_over_namespaces() {
    let w = with(
        "---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: blue-only}\nspec:\n  namespaceSelector: team == 'blue'\n  ingress:\n  - {action: Allow, source: {namespaceSelector: team == 'blue'}}\n",
    );
    assert!(w.tcp("a/x", "a/y", 1));
    assert!(!w.tcp("b/z", "a/y", 1));
    assert!(w.tcp("a/x", "b/z", 1), "b is not selected");
}

#[test]
fn global_policy_namespace_selector_all_means_any_namespace() {
    let w = with(
        "---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: ns-all}\nspec:\n  namespaceSelector: all()\n  ingress:\n  - {action: Allow, source: {namespaceSelector: all()}}\n---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {name: g, labels: {kind: ext}}\nspec: {nets: [172.16.0.0/12]}\n",
    );
    assert!(w.tcp("b/z", "a/x", 1), "from a pod (in a namespace)");
    assert!(
        !w.tcp("172.16.0.1", "a/x", 1),
        "a global network set is in no namespace"
    );
}

#[test]
fn network_sets_are_selectable_by_label() {
    let w = with(
        "---\napiVersion: projectcalico.org/v3\nkind: NetworkSet\nmetadata: {name: partners, namespace: a, labels: {role: partner}}\nspec: {nets: [203.0.113.0/24]}\n---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {name: corp, labels: {role: corp}}\nspec: {nets: [198.51.100.0/24, '2001:db8::/32']}\n---\napiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: p, namespace: a}\nspec:\n  selector: app == 'web'\n  ingress:\n  - {action: Allow, source: {selector: role == 'partner'}}\n---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: corp}\nspec:\n  selector: app == 'db'\n  ingress:\n  - {action: Allow, source: {selector: role == 'corp'}}\n  - {action: Allow, source: {namespaceSelector: team == 'blue'}}\n",
    );
    assert!(
        w.tcp("203.0.113.7", "a/x", 1),
        "namespaced set, in the policy's namespace"
    );
    assert!(!w.tcp("198.51.100.7", "a/x", 1));
    assert!(
        w.tcp("198.51.100.7", "a/y", 1),
        "global set from a global policy"
    );
    assert!(w.tcp("a/x", "a/y", 1), "namespace selector: a is blue");
    assert!(!w.tcp("b/z", "a/y", 1));
}

#[test]
fn namespaced_network_sets_inherit_namespace_labels() {
    let w = with(
        "---\napiVersion: projectcalico.org/v3\nkind: NetworkSet\nmetadata: {name: s, namespace: b}\nspec: {nets: [203.0.113.0/24]}\n---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: red}\nspec:\n  selector: app == 'db'\n  ingress:\n  - {action: Allow, source: {namespaceSelector: team == 'red'}}\n",
    );
    assert!(w.tcp("203.0.113.1", "a/y", 1));
    assert!(w.tcp("b/z", "a/y", 1));
    assert!(!w.tcp("a/x", "a/y", 1));
}

#[test]
fn service_accounts() {
    let w = World::new(&[
        namespace("a", &[]),
        "---\napiVersion: projectcalico.org/v3\nkind: Profile\nmetadata: {name: ksa.a.api}\nspec:\n  labelsToApply: {pcsa.projectcalico.org/name: api, pcsa.tier: gold}\n".to_string(),
        "---\napiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata: {name: c, namespace: a}\nspec: {orchestrator: k8s, node: node1, interfaceName: calic, ipNetworks: [10.0.0.3/32], serviceAccountName: api, profiles: [kns.a, ksa.a.api]}\n".to_string(),
        pod("a", "d", "10.0.0.4", &[]),
        pod("a", "srv", "10.0.0.5", &[("app", "srv")]),
        "---\napiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: sa, namespace: a}\nspec:\n  selector: app == 'srv'\n  ingress:\n  - {action: Allow, protocol: TCP, source: {serviceAccounts: {names: [api]}}, destination: {ports: [80]}}\n  - {action: Allow, protocol: TCP, source: {serviceAccounts: {selector: tier == 'gold'}}, destination: {ports: [81]}}\n".to_string(),
    ]
    .concat());
    assert!(w.tcp("a/c", "a/srv", 80));
    assert!(w.tcp("a/c", "a/srv", 81));
    assert!(!w.tcp("a/d", "a/srv", 80));
    assert!(!w.tcp("a/d", "a/srv", 81));
}

#[test]
fn protocol_not_protocol_ip_version_and_icmp() {
    let w = World::new(&[
        namespace("a", &[]),
        pod("a", "x", "10.0.0.1", &[]),
        pod("a", "v6", "fd00::1", &[]),
        "---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec:\n  selector: all()\n  ingress:\n  - {action: Deny, protocol: ICMP, icmp: {type: 8, code: 1}}\n  - {action: Allow, protocol: ICMP, notICMP: {type: 0}}\n  - {action: Allow, notProtocol: TCP, ipVersion: 6}\n  - {action: Allow, protocol: 132}\n".to_string(),
    ]
    .concat());
    let m = &w.model;
    let mut ping = packet(m, "10.1.1.1", "a/x", proto::ICMP, 0);
    assert!(w.send(&ping).0, "echo request, code 0");
    ping.icmp_code = 1;
    assert!(!w.send(&ping).0, "type 8 code 1 denied");
    ping.icmp_type = 0;
    ping.icmp_code = 0;
    assert!(!w.send(&ping).0, "notICMP type 0");
    assert!(w.allowed("fd00::9", "a/v6", proto::UDP, 1), "v6, not TCP");
    assert!(!w.allowed("fd00::9", "a/v6", proto::TCP, 1));
    assert!(!w.allowed("10.1.1.1", "a/x", proto::UDP, 1), "UDP over v4");
    assert!(w.allowed("10.1.1.1", "a/x", proto::SCTP, 1));
}

#[test]
fn not_icmp_with_code() {
    let w = World::new(&[
        namespace("a", &[]),
        pod("a", "x", "10.0.0.1", &[]),
        "---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec:\n  selector: all()\n  ingress:\n  - {action: Log, protocol: ICMP, notICMP: {type: 3, code: 4}}\n  - {action: Allow, protocol: ICMP, notICMP: {type: 3, code: 4}}\n".to_string(),
    ]
    .concat());
    let mut p = packet(&w.model, "10.1.1.1", "a/x", proto::ICMP, 0);
    for (t, c, ok) in [(3, 4, false), (3, 3, true), (8, 4, true), (8, 0, true)] {
        p.icmp_type = t;
        p.icmp_code = c;
        assert_eq!(w.send(&p), (ok, usize::from(ok)), "type {t} code {c}");
    }
}

#[test]
fn nets_not_nets_selectors_and_not_ports_on_both_sides() {
    let w = with(
        "---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec:\n  selector: app == 'web'\n  types: [Egress]\n  egress:\n  - action: Allow\n    protocol: TCP\n    source: {notNets: [10.0.1.0/24], notPorts: ['40000:40010']}\n    destination: {notSelector: app == 'db', nets: [10.0.0.0/8], ports: ['1000:2000']}\n  - action: Allow\n    protocol: UDP\n    destination: {selector: app == 'db', notPorts: [53]}\n",
    );
    let m = &w.model;
    assert!(!w.tcp("a/x", "a/y", 1500), "db excluded");
    let mut p = packet(m, "a/x", "10.200.0.1", proto::TCP, 1500);
    p.src_port = 50000;
    assert!(w.send(&p).0);
    p.src_port = 40005;
    assert!(!w.send(&p).0, "source port excluded");
    let mut p = packet(m, "b/z", "10.200.0.1", proto::TCP, 1500);
    p.src_port = 50000;
    assert!(!w.send(&p).0, "z's address is in notNets");
    assert!(w.allowed("a/x", "a/y", proto::UDP, 54));
    assert!(!w.allowed("a/x", "a/y", proto::UDP, 53));
    assert!(!w.allowed("a/x", "b/z", proto::UDP, 54), "z is not db");
}

/// `notPorts` alone (no address match on that side, a protocol number):
/// found missing from the compiled rule by calico-node's reachability test.
#[test]
fn not_ports_alone_with_a_protocol_number() {
    let w = with(
        "---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec:\n  selector: app == 'web'\n  types: [Egress]\n  egress:\n  - action: Allow\n    protocol: 6\n    destination: {notPorts: [81]}\n",
    );
    assert!(w.tcp("a/x", "a/y", 80));
    assert!(!w.tcp("a/x", "a/y", 81), "81 is excluded");
    assert!(!w.allowed("a/x", "a/y", proto::UDP, 80), "TCP only");
}

#[test]
fn endpoint_to_host_default_action_and_host_to_workload() {
    let w = with("");
    assert!(!w.tcp("a/x", "host", 10250), "Drop by default");
    assert!(
        w.tcp("host", "a/x", 80),
        "host to own workloads is not policed"
    );
    let w = with(
        "---\napiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {name: default}\nspec: {defaultEndpointToHostAction: Accept}\n",
    );
    assert!(w.tcp("a/x", "host", 10250));
    let w = with(
        "---\napiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {name: default}\nspec: {defaultEndpointToHostAction: Return}\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: a}\nspec: {podSelector: {}, policyTypes: [Egress]}\n",
    );
    assert!(!w.tcp("a/x", "host", 10250), "egress policy still applies");
    assert!(w.tcp("b/z", "host", 10250));
}

#[test]
fn neighbour_discovery_and_encapsulation_from_workloads() {
    let w = World::new(
        &[
            namespace("a", &[]),
            pod("a", "v", "fd00::5", &[]),
            pod("a", "x", "10.0.0.1", &[]),
        ]
        .concat(),
    );
    let mut ns = packet(&w.model, "a/v", "host", proto::ICMPV6, 0);
    ns.icmp_type = 135;
    assert!(w.send(&ns).0, "neighbour solicitation reaches the host");
    ns.icmp_type = 128;
    assert!(!w.send(&ns).0, "ping to the host: Drop");
    assert!(
        !w.allowed("a/x", "10.9.0.1", proto::UDP, 4789),
        "VXLAN from a workload"
    );
    assert!(
        !w.allowed("a/x", "10.9.0.1", proto::IPIP, 0),
        "IP-in-IP from a workload"
    );
    assert!(w.allowed("a/x", "10.9.0.1", proto::UDP, 4790));
}

#[test]
fn host_endpoints_failsafe_and_policy() {
    let w = with(
        "---\napiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata: {name: node1-eth0, labels: {role: node}}\nspec: {node: node1, interfaceName: eth0, expectedIPs: [192.168.0.10]}\n---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: hep}\nspec:\n  selector: role == 'node'\n  ingress:\n  - {action: Allow, protocol: TCP, destination: {ports: [443]}}\n  egress:\n  - {action: Allow, protocol: UDP, destination: {ports: [123]}}\n",
    );
    assert!(w.tcp("10.9.9.9", "host@node1-eth0", 22), "failsafe ssh");
    assert!(
        w.tcp("10.9.9.9", "host@node1-eth0", 6443),
        "failsafe apiserver"
    );
    assert!(w.tcp("10.9.9.9", "host@node1-eth0", 443), "policy");
    assert!(!w.tcp("10.9.9.9", "host@node1-eth0", 8080));
    assert!(w.allowed("host@node1-eth0", "10.9.9.9", proto::UDP, 123));
    assert!(
        w.allowed("host@node1-eth0", "10.9.9.9", proto::UDP, 53),
        "failsafe dns out"
    );
    assert!(!w.allowed("host@node1-eth0", "10.9.9.9", proto::UDP, 124));
    assert!(
        w.tcp("a/x", "b/z", 80),
        "workload traffic is not host endpoint traffic"
    );
}

#[test]
fn host_endpoint_without_policy_or_profile_denies_except_failsafe() {
    let w = with(
        "---\napiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata: {name: h}\nspec: {node: node1, interfaceName: eth1}\n",
    );
    assert!(!w.tcp("10.9.9.9", "host@h", 80));
    assert!(w.allowed("10.9.9.9", "host@h", proto::UDP, 68));
    let w = with(
        "---\napiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata: {name: h}\nspec: {node: node1, interfaceName: eth1, profiles: [projectcalico-default-allow]}\n",
    );
    assert!(w.tcp("10.9.9.9", "host@h", 80), "built-in allow profile");
}

#[test]
fn overlay_between_cluster_hosts_passes_host_endpoints() {
    let yaml = format!(
        "{}---\napiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata: {{name: h}}\nspec: {{node: node1, interfaceName: eth1}}\n",
        base()
    );
    let w = World::new_with(&yaml, |i| {
        i.settings.hosts = vec!["192.168.0.11".parse().unwrap(), "fd00::11".parse().unwrap()];
    });
    assert!(
        w.allowed("192.168.0.11", "host@h", proto::UDP, 4789),
        "VXLAN from a node"
    );
    assert!(
        w.allowed("fd00::11", "host@h", proto::UDP, 4789),
        "VXLAN from a node, IPv6"
    );
    assert!(
        w.allowed("192.168.0.11", "host@h", proto::IPIP, 0),
        "IP-in-IP from a node"
    );
    assert!(
        w.allowed("host@h", "192.168.0.11", proto::UDP, 4789),
        "VXLAN to a node"
    );
    assert!(
        !w.allowed("192.168.0.99", "host@h", proto::UDP, 4789),
        "VXLAN from elsewhere"
    );
    assert!(
        !w.allowed("192.168.0.99", "host@h", proto::IPIP, 0),
        "IP-in-IP from elsewhere"
    );
    assert!(
        !w.tcp("192.168.0.11", "host@h", 80),
        "only the overlay passes"
    );
    assert!(
        !w.allowed("host@h", "192.168.0.11", proto::UDP, 4790),
        "another UDP port"
    );
}

#[test]
fn cross_node_traffic_checks_egress_and_ingress_on_their_nodes() {
    let w = World::new(&[
        namespace("a", &[]),
        pod_on("node1", "a", "p", "10.0.0.1", &[("app", "c")], &[]),
        pod_on("node2", "a", "q", "10.0.1.1", &[("app", "s")], &[("web", "TCP", 8080)]),
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: s, namespace: a}\nspec:\n  podSelector: {matchLabels: {app: s}}\n  ingress: [{from: [{podSelector: {matchLabels: {app: c}}}], ports: [{port: web}]}]\n".to_string(),
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: c, namespace: a}\nspec:\n  podSelector: {matchLabels: {app: c}}\n  policyTypes: [Egress]\n  egress: [{ports: [{port: 8080}, {port: 53, protocol: UDP}]}]\n".to_string(),
    ]
    .concat());
    assert!(w.tcp("a/p", "a/q", 8080));
    assert!(!w.tcp("a/p", "a/q", 8081));
    assert!(
        w.tcp("a/q", "a/p", 8080),
        "no policy governs q's egress or p's ingress"
    );
}
