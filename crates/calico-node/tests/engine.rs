//! The incremental engine against the from-scratch computation, on a real
//! SQLite store: random sequences of datastore changes (nodes, pools,
//! blocks, workload and host endpoints, policies, profiles, network sets,
//! tiers, Felix settings, the datastore lock, malformed values, keys the
//! dataplane never reads, lost watches and re-lists) go into the store;
//! the engine sees them through a real watch (or a re-list), and after
//! every step
//! - its routes equal `felix::model::desired` of a fresh snapshot read from
//!   the store, and the route writer's deltas, replayed, equal it too;
//! - its policy ruleset equals `calico_policy`'s compilation of a fresh
//!   `felix::policy::read`;
//! - its `inet calico` document equals the snapshot's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use calico_api::{Kind, ResourceKey};
use calico_datastore::keys::resource_key;
use calico_datastore::local::LocalStore;
use calico_datastore::{Client, Op, Store, Watch};
use calico_node::engine::cache::{Cache, WATCH_PREFIX};
use calico_node::engine::calc::Calc;
use calico_node::engine::writer::{Call, Recording};
use calico_node::engine::{Engine, relist};
use calico_node::felix::model::{Desired, Item};
use calico_node::felix::{model, policy, settings, sync};
use ipnet::IpNet;
use proptest::prelude::*;
use serde_json::{Value, json};

const ME: &str = "n0";
const NODES: [&str; 3] = ["n0", "n1", "n2"];
const NAMESPACES: [&str; 2] = ["a", "b"];
const POOL_CIDRS: [&str; 3] = ["10.81.0.0/16", "10.82.0.0/16", "fd00:81::/112"];
const MODES: [&str; 3] = ["Never", "Always", "CrossSubnet"];
const BLOCKS: [&str; 6] = [
    "10.81.0.0/26",
    "10.81.0.64/26",
    "10.82.0.0/26",
    "10.82.0.64/26",
    "fd00:81::/122",
    "10.99.0.0/26",
];
const LABELS: [&str; 3] = ["web", "db", "cache"];
const SELECTORS: [&str; 5] = [
    "all()",
    "app == 'web'",
    "app == 'db'",
    "has(app)",
    "app != 'web'",
];
const NETS: [&str; 4] = ["10.0.0.0/24", "10.0.0.1/32", "10.0.0.0/8", "fd00::/64"];

#[derive(Debug, Clone)]
enum Op_ {
    Node {
        i: usize,
        subnet: bool,
        host: u8,
        tunnel: bool,
    },
    Pool {
        i: usize,
        cidr: usize,
        vxlan: usize,
        ipip: usize,
        nat: bool,
        disabled: bool,
    },
    Block {
        i: usize,
        owner: Option<usize>,
        borrower: Option<usize>,
    },
    Wep {
        ns: usize,
        i: usize,
        node: usize,
        label: usize,
        ip: u8,
        bad: bool,
        spoof: bool,
        nat: bool,
    },
    Hep {
        i: usize,
        node: usize,
        label: usize,
    },
    Gnp {
        i: usize,
        sel: usize,
        peer: usize,
        order: u8,
        tier: bool,
    },
    Np {
        ns: usize,
        i: usize,
        sel: usize,
        peer: usize,
    },
    Profile {
        ns: usize,
        team: usize,
    },
    NetSet {
        i: usize,
        nets: usize,
        label: usize,
        global: bool,
    },
    Tier {
        order: u8,
    },
    Felix {
        node: bool,
        vni: u16,
        floating: bool,
        spoof: bool,
    },
    Lock(bool),
    Delete {
        which: usize,
    },
    Garbage {
        which: usize,
    },
    Ignored,
    Relist,
}

fn op() -> impl Strategy<Value = Op_> {
    prop_oneof![
        3 => (0..3usize, any::<bool>(), 1..4u8, any::<bool>())
            .prop_map(|(i, subnet, host, tunnel)| Op_::Node { i, subnet, host, tunnel }),
        2 => (0..2usize, 0..3usize, 0..3usize, 0..3usize, any::<bool>(), prop::bool::weighted(0.2))
            .prop_map(|(i, cidr, vxlan, ipip, nat, disabled)| Op_::Pool { i, cidr, vxlan, ipip, nat, disabled }),
        4 => (0..6usize, prop::option::of(0..3usize), prop::option::of(0..3usize))
            .prop_map(|(i, owner, borrower)| Op_::Block { i, owner, borrower }),
        8 => (0..2usize, 0..4usize, 0..3usize, 0..3usize, 1..6u8, prop::bool::weighted(0.1),
              prop::bool::weighted(0.2), prop::bool::weighted(0.2))
            .prop_map(|(ns, i, node, label, ip, bad, spoof, nat)| Op_::Wep { ns, i, node, label, ip, bad, spoof, nat }),
        1 => (0..2usize, 0..2usize, 0..3usize).prop_map(|(i, node, label)| Op_::Hep { i, node, label }),
        3 => (0..3usize, 0..5usize, 0..5usize, 0..3u8, any::<bool>())
            .prop_map(|(i, sel, peer, order, tier)| Op_::Gnp { i, sel, peer, order, tier }),
        2 => (0..2usize, 0..2usize, 0..5usize, 0..5usize)
            .prop_map(|(ns, i, sel, peer)| Op_::Np { ns, i, sel, peer }),
        2 => (0..2usize, 0..3usize).prop_map(|(ns, team)| Op_::Profile { ns, team }),
        2 => (0..2usize, 0..4usize, 0..3usize, any::<bool>())
            .prop_map(|(i, nets, label, global)| Op_::NetSet { i, nets, label, global }),
        1 => (0..3u8).prop_map(|order| Op_::Tier { order }),
        2 => (any::<bool>(), 4096..4099u16, any::<bool>(), any::<bool>())
            .prop_map(|(node, vni, floating, spoof)| Op_::Felix { node, vni, floating, spoof }),
        1 => any::<bool>().prop_map(Op_::Lock),
        4 => (0..64usize).prop_map(|which| Op_::Delete { which }),
        1 => (0..64usize).prop_map(|which| Op_::Garbage { which }),
        1 => Just(Op_::Ignored),
        1 => Just(Op_::Relist),
    ]
}

fn key(kind: Kind, ns: Option<&str>, name: &str) -> String {
    resource_key(&ResourceKey {
        kind,
        namespace: ns.map(str::to_string),
        name: name.to_string(),
    })
}

fn doc(kind: &str, ns: Option<&str>, name: &str, labels: Value, spec: Value) -> Vec<u8> {
    let mut meta = json!({"name": name, "labels": labels});
    if let Some(ns) = ns {
        meta["namespace"] = json!(ns);
    }
    serde_json::to_vec(&json!({
        "apiVersion": "projectcalico.org/v3", "kind": kind,
        "metadata": meta, "spec": spec}))
    .unwrap()
}

/// The key and value (`None`: nothing to write) of an op.
fn write(op: &Op_) -> Option<(String, Vec<u8>)> {
    Some(match *op {
        Op_::Node {
            i,
            subnet,
            host,
            tunnel,
        } => {
            let name = NODES[i];
            let net = if subnet { "172.31.0" } else { "172.30.0" };
            let mut spec =
                json!({"bgp": {"ipv4Address": format!("{net}.{}/24", 10 * i as u8 + host)}});
            if tunnel {
                spec["ipv4VXLANTunnelAddr"] = json!(format!("10.81.{i}.1"));
                spec["vxlanTunnelMACAddr"] = json!(format!("66:00:00:00:00:0{i}"));
            }
            (
                key(Kind::Node, None, name),
                doc("Node", None, name, json!({}), spec),
            )
        }
        Op_::Pool {
            i,
            cidr,
            vxlan,
            ipip,
            nat,
            disabled,
        } => {
            let name = format!("pool-{i}");
            let v6 = POOL_CIDRS[cidr].contains(':');
            let spec = json!({"cidr": POOL_CIDRS[cidr], "blockSize": if v6 { 122 } else { 26 },
                "vxlanMode": if v6 { "Never" } else { MODES[vxlan] },
                "ipipMode": if v6 || vxlan != 0 { "Never" } else { MODES[ipip] },
                "natOutgoing": nat, "disabled": disabled, "nodeSelector": "all()"});
            (
                key(Kind::IPPool, None, &name),
                doc("IPPool", None, &name, json!({}), spec),
            )
        }
        Op_::Block { i, owner, borrower } => {
            let net: IpNet = BLOCKS[i].parse().unwrap();
            let mut b = calico_ipam::Block::new(net, owner.map(|o| NODES[o]));
            if let Some(n) = borrower {
                b.allocations[1] = Some(0);
                b.unallocated.retain(|o| *o != 1);
                b.attributes.push(calico_ipam::Attribute {
                    handle_id: Some("h".into()),
                    secondary: [("node".to_string(), NODES[n].to_string())].into(),
                });
            }
            (
                calico_ipam::keys::block(&net),
                serde_json::to_vec(&b).unwrap(),
            )
        }
        Op_::Wep {
            ns,
            i,
            node,
            label,
            ip,
            bad,
            spoof,
            nat,
        } => {
            let ns_ = NAMESPACES[ns];
            let node = NODES[node];
            let name = format!("{node}-k8s-p{i}-eth0");
            let iface = if bad {
                format!("cali\"{ns}{i}")
            } else {
                format!("cali{ns}{i}x")
            };
            let addr = format!("10.81.{}.{}", ns, ip);
            let mut spec = json!({"node": node, "orchestrator": "k8s", "pod": format!("p{i}"),
                "endpoint": "eth0", "interfaceName": iface,
                "ipNetworks": [format!("{addr}/32")], "profiles": [format!("kns.{ns_}")]});
            if spoof {
                spec["allowSpoofedSourcePrefixes"] = json!(["10.200.0.0/24"]);
            }
            if nat {
                spec["ipNATs"] = json!([{"internalIP": addr, "externalIP": "192.0.2.7"}]);
            }
            let labels = json!({"app": LABELS[label], "projectcalico.org/namespace": ns_,
                "projectcalico.org/orchestrator": "k8s"});
            (
                key(Kind::WorkloadEndpoint, Some(ns_), &name),
                doc("WorkloadEndpoint", Some(ns_), &name, labels, spec),
            )
        }
        Op_::Hep { i, node, label } => {
            let name = format!("hep-{i}");
            let spec = json!({"node": NODES[node], "interfaceName": format!("eth{i}"),
                "expectedIPs": [format!("172.31.0.{}", 50 + i)]});
            (
                key(Kind::HostEndpoint, None, &name),
                doc(
                    "HostEndpoint",
                    None,
                    &name,
                    json!({"app": LABELS[label]}),
                    spec,
                ),
            )
        }
        Op_::Gnp {
            i,
            sel,
            peer,
            order,
            tier,
        } => {
            let name = if tier {
                format!("t1.gnp-{i}")
            } else {
                format!("gnp-{i}")
            };
            let spec = json!({"order": order, "selector": SELECTORS[sel],
                "tier": if tier { "t1" } else { "default" },
                "ingress": [{"action": "Allow", "protocol": "TCP",
                    "source": {"selector": SELECTORS[peer]}, "destination": {"ports": [80]}}],
                "egress": [{"action": "Allow", "destination": {"nets": ["10.0.0.0/8"]}}]});
            (
                key(Kind::GlobalNetworkPolicy, None, &name),
                doc("GlobalNetworkPolicy", None, &name, json!({}), spec),
            )
        }
        Op_::Np { ns, i, sel, peer } => {
            let ns_ = NAMESPACES[ns];
            let name = format!("np-{i}");
            let spec = json!({"selector": SELECTORS[sel], "types": ["Ingress"],
                "ingress": [{"action": "Allow", "source": {"selector": SELECTORS[peer]}}]});
            (
                key(Kind::NetworkPolicy, Some(ns_), &name),
                doc("NetworkPolicy", Some(ns_), &name, json!({}), spec),
            )
        }
        Op_::Profile { ns, team } => {
            let name = format!("kns.{}", NAMESPACES[ns]);
            let spec = json!({"ingress": [{"action": "Allow"}], "egress": [{"action": "Allow"}],
                "labelsToApply": {"pcns.team": LABELS[team], "pcns.projectcalico.org/name": NAMESPACES[ns]}});
            (
                key(Kind::Profile, None, &name),
                doc("Profile", None, &name, json!({}), spec),
            )
        }
        Op_::NetSet {
            i,
            nets,
            label,
            global,
        } => {
            let name = format!("set-{i}");
            let spec = json!({"nets": [NETS[nets], NETS[(nets + 1) % NETS.len()]]});
            let labels = json!({"app": LABELS[label]});
            if global {
                (
                    key(Kind::GlobalNetworkSet, None, &name),
                    doc("GlobalNetworkSet", None, &name, labels, spec),
                )
            } else {
                (
                    key(Kind::NetworkSet, Some("a"), &name),
                    doc("NetworkSet", Some("a"), &name, labels, spec),
                )
            }
        }
        Op_::Tier { order } => (
            key(Kind::Tier, None, "t1"),
            doc(
                "Tier",
                None,
                "t1",
                json!({}),
                json!({"order": 100 * u32::from(order)}),
            ),
        ),
        Op_::Felix {
            node,
            vni,
            floating,
            spoof,
        } => {
            let name = if node {
                format!("node.{ME}")
            } else {
                "default".into()
            };
            let spec = json!({"vxlanVNI": vni,
                "floatingIPs": if floating { "Enabled" } else { "Disabled" },
                "workloadSourceSpoofing": if spoof { "Any" } else { "Disabled" }});
            (
                key(Kind::FelixConfiguration, None, &name),
                doc("FelixConfiguration", None, &name, json!({}), spec),
            )
        }
        Op_::Lock(locked) => (
            key(Kind::ClusterInformation, None, "default"),
            doc(
                "ClusterInformation",
                None,
                "default",
                json!({}),
                json!({"datastoreReady": !locked, "clusterGUID": "g"}),
            ),
        ),
        Op_::Ignored => (
            "/calico/ipam/v2/handle/k8s-pod-network.abc".into(),
            b"{\"block\":{}}".to_vec(),
        ),
        Op_::Delete { .. } | Op_::Garbage { .. } | Op_::Relist => return None,
    })
}

/// A test world: the store, the engine, its cache and watch.
struct World {
    _dir: tempfile::TempDir,
    client: Client,
    engine: Engine<Recording, Recording>,
    rec: Recording,
    cache: Cache,
    watch: Box<dyn Watch>,
    rev: i64,
    /// The last revision taken from the watch or a list.
    seen: i64,
    /// The routes as the writer was told, replayed.
    kernel: BTreeSet<Item>,
    kernel_wl: BTreeMap<IpNet, String>,
}

fn items(d: &Desired) -> BTreeSet<Item> {
    let mut s = BTreeSet::new();
    s.extend(d.blackholes.iter().map(|n| Item::Blackhole(*n)));
    s.extend(d.vxlan_routes.iter().map(|(n, a)| Item::VxlanRoute(*n, *a)));
    s.extend(d.neighbours.iter().map(|(a, m)| Item::Neighbour(*a, *m)));
    s.extend(d.fdb.iter().map(|(m, a)| Item::Fdb(*m, *a)));
    s.extend(
        d.direct_routes
            .iter()
            .map(|(n, a)| Item::DirectRoute(*n, *a)),
    );
    s.extend(d.ipip_routes.iter().map(|(n, a)| Item::IpipRoute(*n, *a)));
    s
}

/// This node's engine writing to `rec`, with no BGP speaker.
fn engine_over(rec: &Recording) -> Engine<Recording, Recording> {
    Engine::new(
        Calc::new(ME, BTreeMap::new(), false),
        rec.clone(),
        rec.clone(),
        None,
    )
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(LocalStore::open(dir.path().join("ds.db")).unwrap());
        let client = Client::new(store);
        let rec = Recording::default();
        let mut engine = engine_over(&rec);
        let mut cache = Cache::new();
        let rev = relist(&client, &mut cache, &mut engine).unwrap();
        let watch = client.store().watch(WATCH_PREFIX, rev + 1).unwrap();
        let mut w = World {
            _dir: dir,
            client,
            engine,
            rec,
            cache,
            watch,
            rev,
            seen: rev,
            kernel: BTreeSet::new(),
            kernel_wl: BTreeMap::new(),
        };
        w.flush();
        w
    }

    fn put(&mut self, k: String, v: Vec<u8>) {
        let rev = self
            .client
            .store()
            .txn(&[], &[Op::Put { key: k, value: v }])
            .unwrap()
            .unwrap();
        self.rev = self.rev.max(rev);
    }

    fn delete(&mut self, which: usize) {
        let (kvs, _) = self.client.store().list("/calico/").unwrap();
        if kvs.is_empty() {
            return;
        }
        let k = kvs[which % kvs.len()].key.clone();
        if let Some(rev) = self
            .client
            .store()
            .txn(&[], &[Op::Delete { key: k }])
            .unwrap()
        {
            self.rev = self.rev.max(rev);
        }
    }

    fn garbage(&mut self, which: usize) {
        let k = match which % 4 {
            0 => key(Kind::WorkloadEndpoint, Some("a"), "n0-k8s-p0-eth0"),
            1 => key(Kind::Node, None, "n1"),
            2 => calico_ipam::keys::block(&BLOCKS[0].parse().unwrap()),
            _ => key(Kind::GlobalNetworkPolicy, None, "gnp-0"),
        };
        self.put(k, b"{not json".to_vec());
    }

    /// Takes in what the watch has (up to the last write), or re-lists.
    fn catch_up(&mut self, relisting: bool) -> Vec<Call> {
        if relisting {
            let rev = relist(&self.client, &mut self.cache, &mut self.engine).unwrap();
            self.watch = self.client.store().watch(WATCH_PREFIX, rev + 1).unwrap();
            self.rev = self.rev.max(rev);
            self.seen = self.rev;
        } else {
            while self.seen < self.rev {
                let Some(e) = self.watch.next(Duration::from_secs(5)).unwrap() else {
                    panic!("the watch never delivered revision {}", self.rev);
                };
                self.seen = e.mod_revision;
                if let Some(c) = self.cache.event(e.kind, e.key, e.value, e.mod_revision) {
                    self.engine.apply(c);
                }
            }
        }
        self.flush()
    }

    /// Flushes the engine and replays what its writers were told; returns that.
    fn flush(&mut self) -> Vec<Call> {
        let rep = self.engine.flush();
        assert!(rep.failed.is_empty(), "{:?}", rep.failed);
        let calls = std::mem::take(&mut *self.rec.calls.lock().unwrap());
        for call in calls.clone() {
            if let Call::Apply {
                workload_routes,
                forget,
                ..
            } = &call
            {
                // Conntrack entries go for exactly the addresses whose
                // route went or moved.
                let want: BTreeSet<IpAddr> = workload_routes
                    .iter()
                    .filter(|(n, now)| {
                        n.prefix_len() == n.max_prefix_len()
                            && self
                                .kernel_wl
                                .get(n)
                                .is_some_and(|b| now.as_ref() != Some(b))
                    })
                    .map(|(n, _)| n.addr())
                    .collect();
                assert_eq!(forget, &want, "{workload_routes:?}");
            }
            match call {
                Call::Resync | Call::Apply { full: true, .. } => {
                    self.kernel = items(self.engine.calc().desired());
                    self.kernel_wl = self.engine.calc().desired().workload_routes.clone();
                }
                Call::Apply {
                    items,
                    workload_routes,
                    ..
                } => {
                    for (item, add) in items {
                        if add {
                            assert!(self.kernel.insert(item), "added twice: {item:?}");
                        } else {
                            assert!(
                                self.kernel.remove(&item),
                                "removed what was not there: {item:?}"
                            );
                        }
                    }
                    for (n, iface) in workload_routes {
                        match iface {
                            Some(i) => self.kernel_wl.insert(n, i),
                            None => self.kernel_wl.remove(&n),
                        };
                    }
                }
                Call::Nft(_) | Call::Table(_) | Call::Dormant(_) | Call::Wake(_) => {}
            }
        }
        calls
    }

    /// The from-scratch computation on what the store holds now.
    fn check(&self) -> Result<(), TestCaseError> {
        let env = BTreeMap::new();
        let (eff, _) = settings::read(&self.client, ME, &env).unwrap();
        let (weps, _, _) = self
            .client
            .list_lenient(Kind::WorkloadEndpoint, None)
            .unwrap();
        let (weps, _) = sync::admit(weps, eff.source_spoofing_allowed());
        let (snap, _, _) = sync::read(&self.client, ME, eff.dataplane(), &weps).unwrap();
        let want = model::desired(&snap);
        let calc = self.engine.calc();
        let got = calc.desired();
        prop_assert_eq!(&items(got), &items(&want));
        prop_assert_eq!(&got.workload_routes, &want.workload_routes);
        prop_assert_eq!(&got.vxlan, &want.vxlan);
        prop_assert_eq!(&got.problems, &want.problems);
        prop_assert_eq!(&got.nft, &want.nft);
        prop_assert_eq!(
            (got.ipip, got.ipip_mtu, got.local_v4),
            (want.ipip, want.ipip_mtu, want.local_v4)
        );
        if !calc.locked() {
            prop_assert_eq!(&self.kernel, &items(&want), "the writer's deltas, replayed");
            prop_assert_eq!(&self.kernel_wl, &want.workload_routes);
        }
        let hosts = snap
            .nodes
            .iter()
            .filter_map(|n| n.ipv4.map(|a| a.addr()))
            .collect();
        let (input, _) = policy::read(&self.client, ME, &eff, weps, hosts).unwrap();
        let oracle = calico_policy::nft::compile::compile(&calico_policy::Model::build(&input));
        prop_assert_eq!(calc.policy().ruleset(), oracle);
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn incremental_equals_from_scratch(ops in prop::collection::vec(op(), 1..60)) {
        let mut w = World::new();
        w.check()?;
        for op in &ops {
            match op {
                Op_::Delete { which } => w.delete(*which),
                Op_::Garbage { which } => w.garbage(*which),
                Op_::Relist => {}
                other => {
                    if let Some((k, v)) = write(other) {
                        w.put(k, v);
                    }
                }
            }
            w.catch_up(matches!(op, Op_::Relist));
            w.check()?;
        }
    }
}

/// A burst of changes already waiting is one flush: one policy
/// transaction, one route batch; a single change afterwards goes alone, at
/// once.
#[test]
fn a_burst_is_one_flush_and_one_change_goes_at_once() {
    let mut w = World::new();
    for (k, v) in [
        write(&Op_::Node {
            i: 0,
            subnet: true,
            host: 1,
            tunnel: true,
        }),
        write(&Op_::Node {
            i: 1,
            subnet: false,
            host: 1,
            tunnel: true,
        }),
        write(&Op_::Pool {
            i: 0,
            cidr: 0,
            vxlan: 1,
            ipip: 0,
            nat: true,
            disabled: false,
        }),
        write(&Op_::Gnp {
            i: 0,
            sel: 0,
            peer: 1,
            order: 1,
            tier: false,
        }),
        // A local endpoint the policy applies to: its chain refers to the set of web pods.
        write(&Op_::Wep {
            ns: 1,
            i: 0,
            node: 0,
            label: 1,
            ip: 1,
            bad: false,
            spoof: false,
            nat: false,
        }),
    ]
    .into_iter()
    .flatten()
    {
        w.put(k, v);
    }
    w.catch_up(false);
    for i in 0..200u8 {
        let (k, v) = write(&Op_::Wep {
            ns: 0,
            i: 0,
            node: 1,
            label: 0,
            ip: 1,
            bad: false,
            spoof: false,
            nat: false,
        })
        .unwrap();
        let k = k.replace("p0", &format!("q{i}"));
        let v = String::from_utf8(v)
            .unwrap()
            .replace("n1-k8s-p0-eth0", &format!("n1-k8s-q{i}-eth0"))
            .replace("10.81.0.1/32", &format!("10.81.1.{i}/32"));
        w.put(k, v.into_bytes());
    }
    let block = write(&Op_::Block {
        i: 1,
        owner: Some(1),
        borrower: None,
    })
    .unwrap();
    w.put(block.0, block.1);
    w.rec.calls.lock().unwrap().clear();
    // Everything is waiting in the watch: one catch-up is one flush.
    let mut seen = 0;
    while seen < w.rev {
        let e = w.watch.next(Duration::from_secs(5)).unwrap().unwrap();
        seen = e.mod_revision;
        if let Some(c) = w.cache.event(e.kind, e.key, e.value, e.mod_revision) {
            w.engine.apply(c);
        }
    }
    let calls = w.flush();
    let nft = calls.iter().filter(|c| matches!(c, Call::Nft(_))).count();
    let routes = calls
        .iter()
        .filter(|c| matches!(c, Call::Apply { .. }))
        .count();
    assert_eq!((nft, routes), (1, 1), "{calls:#?}");
    let Some(Call::Nft(script)) = calls.iter().find(|c| matches!(c, Call::Nft(_))) else {
        unreachable!()
    };
    assert!(
        script.contains("10.81.1.199"),
        "the burst's last address is in the one transaction"
    );
    w.check().unwrap();
    // One more endpoint: alone, at once.
    let (k, v) = write(&Op_::Wep {
        ns: 0,
        i: 3,
        node: 2,
        label: 0,
        ip: 9,
        bad: false,
        spoof: false,
        nat: false,
    })
    .unwrap();
    w.put(k, v);
    let calls = w.catch_up(false);
    assert!(
        matches!(&calls[..], [Call::Nft(s)] if s.contains("10.81.0.9") && s.lines().count() < 10),
        "{calls:#?}"
    );
    w.check().unwrap();
}

/// The first resync loads each table and the routes once, not twice; a
/// later one compares the routes and leaves the policy table alone while
/// nothing but the engine committed to nftables (the generation says so),
/// and reloads it from the held state when someone else did; never a
/// datastore read.
#[test]
fn a_resync_loads_each_part_once() {
    let mut w = World::new();
    let mut e = engine_over(&w.rec);
    let mut cache = Cache::new();
    relist(&w.client, &mut cache, &mut e).unwrap();
    w.rec.calls.lock().unwrap().clear();
    let count = |calls: &[Call]| {
        (
            calls.iter().filter(|c| matches!(c, Call::Resync)).count(),
            calls.iter().filter(|c| matches!(c, Call::Nft(_))).count(),
            calls.iter().filter(|c| matches!(c, Call::Table(_))).count(),
        )
    };
    e.resync();
    assert_eq!(count(&w.rec.calls()), (1, 1, 1), "{:#?}", w.rec.calls());
    w.rec.calls.lock().unwrap().clear();
    e.resync();
    assert_eq!(count(&w.rec.calls()), (1, 0, 1), "{:#?}", w.rec.calls());
    // Our own incremental writes keep the table known.
    let (k, v) = write(&Op_::Wep {
        ns: 0,
        i: 7,
        node: 2,
        label: 0,
        ip: 7,
        bad: false,
        spoof: false,
        nat: false,
    })
    .unwrap();
    w.put(k, v);
    relist(&w.client, &mut cache, &mut e).unwrap();
    w.rec.calls.lock().unwrap().clear();
    e.resync();
    assert_eq!(count(&w.rec.calls()), (1, 0, 1), "{:#?}", w.rec.calls());
    // Someone else commits to nftables: the next check reloads the table,
    // and the one after trusts it again.
    w.rec
        .generation
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    w.rec.calls.lock().unwrap().clear();
    let rep = e.resync();
    assert_eq!(count(&w.rec.calls()), (1, 1, 1), "{:#?}", w.rec.calls());
    assert!(rep.policy_full);
    w.rec.calls.lock().unwrap().clear();
    e.resync();
    assert_eq!(count(&w.rec.calls()), (1, 0, 1), "{:#?}", w.rec.calls());
    // A failed write (routes, then policy) leaves the table unknown:
    // reloaded at the next check.
    w.rec.fail.store(2, std::sync::atomic::Ordering::SeqCst);
    let (k, v) = write(&Op_::Wep {
        ns: 0,
        i: 8,
        node: 2,
        label: 0,
        ip: 8,
        bad: false,
        spoof: false,
        nat: false,
    })
    .unwrap();
    w.put(k, v);
    relist(&w.client, &mut cache, &mut e).unwrap();
    w.rec.calls.lock().unwrap().clear();
    let rep = e.resync();
    assert!(rep.policy_full, "{rep:?} {:#?}", w.rec.calls());
}

/// On a fresh start (no policy table in the kernel) the table as it stands
/// when the list reaches the endpoints is loaded dormant, and the first
/// flush's transaction brings it to the whole state and wakes it; if that
/// fails, the table is loaded whole. With a table there already, nothing
/// dormant happens.
#[test]
fn a_fresh_start_builds_the_policy_table_dormant_then_wakes_it() {
    let mut w = World::new();
    let mut ops = vec![
        Op_::Pool {
            i: 0,
            cidr: 0,
            vxlan: 1,
            ipip: 0,
            nat: true,
            disabled: false,
        },
        Op_::Gnp {
            i: 0,
            sel: 0,
            peer: 1,
            order: 1,
            tier: false,
        },
    ];
    // Endpoints here and elsewhere, some the policy's peers.
    for (i, node) in [(0usize, 0usize), (1, 1), (2, 2), (3, 1)] {
        ops.push(Op_::Wep {
            ns: i % 2,
            i,
            node,
            label: i % 2,
            ip: i as u8 + 1,
            bad: false,
            spoof: false,
            nat: false,
        });
    }
    for (k, v) in ops.iter().filter_map(write) {
        w.put(k, v);
    }
    for fail in [false, true] {
        let rec = Recording::default();
        rec.fresh.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut e = engine_over(&rec);
        let mut cache = Cache::new();
        relist(&w.client, &mut cache, &mut e).unwrap();
        assert!(rec.calls().is_empty());
        rec.fail_wake
            .store(fail, std::sync::atomic::Ordering::SeqCst);
        let rep = e.flush();
        assert!(rep.policy_full, "{rep:?}");
        let calls = rec.calls();
        let Some(Call::Dormant(early)) = calls.iter().find(|c| matches!(c, Call::Dormant(_)))
        else {
            panic!("{calls:#?}")
        };
        let mut kernel = (**early).clone();
        let wakes: Vec<&calico_policy::Transaction> = calls
            .iter()
            .filter_map(|c| match c {
                Call::Wake(tx) => Some(tx),
                _ => None,
            })
            .collect();
        let [tx] = wakes[..] else {
            panic!("{calls:#?}")
        };
        let whole = calls.iter().filter(|c| matches!(c, Call::Nft(_))).count();
        if fail {
            assert_eq!(whole, 1, "a failed wake loads the table whole: {calls:#?}");
        } else {
            assert_eq!(whole, 0, "{calls:#?}");
            kernel.apply(tx).unwrap();
            assert_eq!(
                kernel,
                e.calc().policy().ruleset(),
                "dormant + transaction = whole"
            );
            assert!(
                tx.to_string().contains("10.81."),
                "the endpoints' addresses come with the wake: {tx}"
            );
        }
        // The check after trusts the policy table (and mends the rest).
        rec.calls.lock().unwrap().clear();
        e.resync();
        let calls = rec.calls();
        assert!(
            !calls
                .iter()
                .any(|c| matches!(c, Call::Nft(_) | Call::Dormant(_) | Call::Wake(_))),
            "{calls:#?}"
        );
        assert!(e.in_step());
    }
    // A table in the kernel already: the usual whole load, nothing dormant.
    let rec = Recording::default();
    let mut e = engine_over(&rec);
    relist(&w.client, &mut Cache::new(), &mut e).unwrap();
    e.flush();
    let calls = rec.calls();
    assert!(
        !calls
            .iter()
            .any(|c| matches!(c, Call::Dormant(_) | Call::Wake(_))),
        "{calls:#?}"
    );
    assert_eq!(
        calls.iter().filter(|c| matches!(c, Call::Nft(_))).count(),
        1
    );
}
