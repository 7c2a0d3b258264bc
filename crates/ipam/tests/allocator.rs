//! The allocator against real stores: a SQLite file and a real etcd.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use calico_api::{Resource, decode_documents};
use calico_datastore::etcd::{EtcdStore, EtcdTls};
use calico_datastore::local::LocalStore;
use calico_datastore::{Client, Store};
use calico_ipam::{AssignArgs, AssignedIp, Ipam, IpamError, Use};
use calico_testutil::EtcdServer;
use ipnet::IpNet;

struct Fx {
    ipam: Ipam,
    client: Client,
    _keep: Box<dyn std::any::Any + Send + Sync>,
}

fn local() -> Fx {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store: Arc<dyn Store> =
        Arc::new(LocalStore::open(dir.path().join("ds.db")).unwrap_or_else(|e| panic!("{e}")));
    Fx {
        ipam: Ipam::new(store.clone()),
        client: Client::new(store),
        _keep: Box::new(dir),
    }
}

fn etcd() -> Fx {
    let server = EtcdServer::start();
    let store: Arc<dyn Store> = Arc::new(
        EtcdStore::connect(&[server.endpoint()], &EtcdTls::default(), None)
            .unwrap_or_else(|e| panic!("{e}")),
    );
    Fx {
        ipam: Ipam::new(store.clone()),
        client: Client::new(store),
        _keep: Box::new(Arc::new(std::sync::Mutex::new(server))),
    }
}

impl Fx {
    fn apply(&self, yaml: &str) {
        for r in decode_documents(yaml).unwrap_or_else(|e| panic!("{e}")) {
            let r: Resource = r.unwrap_or_else(|e| panic!("{e}"));
            self.client.apply(r).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    fn pool(&self, name: &str, cidr: &str, extra: &str) {
        self.apply(&format!(
            "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {{name: {name}}}\nspec: {{cidr: '{cidr}'{extra}}}\n"
        ));
    }

    fn node(&self, name: &str, labels: &str) {
        self.apply(&format!("apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {{name: {name}, labels: {{{labels}}}}}\n"));
    }
}

fn args(handle: &str, node: &str, v4: usize, v6: usize) -> AssignArgs {
    AssignArgs {
        handle: handle.into(),
        node: node.into(),
        num_v4: v4,
        num_v6: v6,
        v4_pools: vec![],
        v6_pools: vec![],
        attrs: BTreeMap::from([("node".to_string(), node.to_string())]),
        use_: Use::Workload,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{e}"))
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap_or_else(|e| panic!("{e}"))
}

fn affine_blocks(f: &Fx, node: &str) -> Vec<IpNet> {
    f.ipam
        .affinities()
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .filter(|(n, _)| n == node)
        .map(|(_, b)| b)
        .collect()
}

// ---- scenarios -------------------------------------------------------------

fn affine_blocks_first_then_claim(f: Fx) {
    f.pool("p", "10.0.0.0/24", ", blockSize: 29");
    let a = f
        .ipam
        .auto_assign(&args("net.c1", "n1", 1, 0))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a.v4, vec![ip("10.0.0.0")]);
    assert_eq!(affine_blocks(&f, "n1"), vec![net("10.0.0.0/29")]);
    // Filling the block and one more claims a second block for the same node.
    let b = f
        .ipam
        .auto_assign(&args("net.c2", "n1", 8, 0))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(b.v4.len(), 8);
    assert_eq!(
        affine_blocks(&f, "n1"),
        vec![net("10.0.0.0/29"), net("10.0.0.8/29")]
    );
    // Another node gets its own block.
    let c = f
        .ipam
        .auto_assign(&args("net.c3", "n2", 1, 0))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.v4, vec![ip("10.0.0.16")]);
    assert_eq!(f.ipam.ips_by_handle("net.c2").unwrap_or_default().len(), 8);
    let holder = f
        .ipam
        .assignment(ip("10.0.0.0"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(holder.and_then(|a| a.handle_id), Some("net.c1".into()));
}

fn max_blocks_borrow_and_strict_affinity(f: Fx) {
    f.pool("p", "10.1.0.0/28", ", blockSize: 30");
    f.apply("apiVersion: projectcalico.org/v3\nkind: IPAMConfiguration\nmetadata: {name: default}\nspec: {maxBlocksPerHost: 1}\n");
    f.ipam
        .auto_assign(&args("net.b", "n2", 1, 0))
        .unwrap_or_else(|e| panic!("{e}")); // n2: 10.1.0.0/30
    let a = f
        .ipam
        .auto_assign(&args("net.a", "n1", 5, 0))
        .unwrap_or_else(|e| panic!("{e}"));
    // n1 holds one block (4 addresses) and borrowed one address from n2's block.
    assert_eq!(affine_blocks(&f, "n1").len(), 1);
    assert!(
        a.v4.iter().any(|x| net("10.1.0.0/30").contains(x)),
        "{:?}",
        a.v4
    );
    // With strictAffinity, no borrowing: the request fails and leaves nothing.
    f.apply("apiVersion: projectcalico.org/v3\nkind: IPAMConfiguration\nmetadata: {name: default}\nspec: {maxBlocksPerHost: 1, strictAffinity: true}\n");
    let e = f
        .ipam
        .auto_assign(&args("net.c", "n1", 1, 0))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("no IPv4 addresses available in pool(s)")
            && e.contains("p (10.1.0.0/28)")
            && e.contains("strictAffinity"),
        "{e}"
    );
    assert!(f.ipam.ips_by_handle("net.c").unwrap_or_default().is_empty());
}

fn pool_selection(f: Fx) {
    f.pool("rack1", "10.2.0.0/24", ", nodeSelector: rack == 'r1'");
    f.pool("tunnels", "10.3.0.0/24", ", allowedUses: [Tunnel]");
    f.pool("offpool", "10.4.0.0/24", ", disabled: true");
    f.pool("v6", "fd00:2::/120", "");
    f.node("n1", "rack: r1");
    f.node("n2", "rack: r2");
    let a = f
        .ipam
        .auto_assign(&args("net.1", "n1", 1, 1))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        net("10.2.0.0/24").contains(&a.v4[0]) && net("fd00:2::/120").contains(&a.v6[0]),
        "{a:?}"
    );
    // n2 matches no workload pool.
    let e = f.ipam.auto_assign(&args("net.2", "n2", 1, 0)).err();
    assert!(
        matches!(e, Some(IpamError::NoPools { family: 4, .. })),
        "{e:?}"
    );
    // Tunnel addresses come from the tunnel pool.
    let t = f.ipam.auto_assign(&AssignArgs {
        use_: Use::Tunnel,
        ..args("vxlan-tunnel-addr-n2", "n2", 1, 0)
    });
    assert!(t.is_ok_and(|t| net("10.3.0.0/24").contains(&t.v4[0])));
    // Requested pools bypass nodeSelector; by name or CIDR; must exist and be enabled.
    let by_name = AssignArgs {
        v4_pools: vec!["rack1".into()],
        ..args("net.3", "n2", 1, 0)
    };
    assert!(
        f.ipam
            .auto_assign(&by_name)
            .is_ok_and(|a| net("10.2.0.0/24").contains(&a.v4[0]))
    );
    let by_cidr = AssignArgs {
        v4_pools: vec!["10.2.0.0/24".into()],
        ..args("net.4", "n2", 1, 0)
    };
    assert!(f.ipam.auto_assign(&by_cidr).is_ok());
    let missing = AssignArgs {
        v4_pools: vec!["nope".into()],
        ..args("net.5", "n2", 1, 0)
    };
    assert_eq!(
        f.ipam.auto_assign(&missing).err(),
        Some(IpamError::PoolNotFound("nope".into()))
    );
    let disabled = AssignArgs {
        v4_pools: vec!["offpool".into()],
        ..args("net.6", "n2", 1, 0)
    };
    assert_eq!(
        f.ipam.auto_assign(&disabled).err(),
        Some(IpamError::PoolDisabled("offpool".into()))
    );
    let wrong = AssignArgs {
        v6_pools: vec!["rack1".into()],
        ..args("net.7", "n1", 0, 1)
    };
    assert!(matches!(
        f.ipam.auto_assign(&wrong).err(),
        Some(IpamError::PoolFamily(..))
    ));
    // Dual stack where IPv6 cannot be met: the IPv4 address is released too.
    let dual = AssignArgs {
        v6_pools: vec!["nope6".into()],
        ..args("net.8", "n1", 1, 1)
    };
    assert!(f.ipam.auto_assign(&dual).is_err());
    assert!(f.ipam.ips_by_handle("net.8").unwrap_or_default().is_empty());
}

fn reservations_and_specific_addresses(f: Fx) {
    f.pool("p", "10.5.0.0/29", ", blockSize: 29");
    f.apply("apiVersion: projectcalico.org/v3\nkind: IPReservation\nmetadata: {name: r}\nspec: {reservedCIDRs: [10.5.0.0/30]}\n");
    let a = f
        .ipam
        .auto_assign(&args("net.a", "n1", 4, 0))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        a.v4.iter().all(|x| !net("10.5.0.0/30").contains(x)),
        "{:?}",
        a.v4
    );
    let e = f
        .ipam
        .auto_assign(&args("net.b", "n1", 1, 0))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("no IPv4 addresses available"), "{e}");
    let attrs = BTreeMap::new();
    assert_eq!(
        f.ipam
            .assign_ip(ip("10.5.0.1"), "net.c", &attrs, "n1", Use::Workload),
        Err(IpamError::Reserved(ip("10.5.0.1")))
    );
    assert_eq!(
        f.ipam
            .assign_ip(ip("10.9.0.1"), "net.c", &attrs, "n1", Use::Workload),
        Err(IpamError::NotInPool(ip("10.9.0.1")))
    );
    let taken = a.v4[0];
    assert_eq!(
        f.ipam
            .assign_ip(taken, "net.c", &attrs, "n1", Use::Workload),
        Err(IpamError::InUse {
            ip: taken,
            handle: "net.a".into()
        })
    );
    // Release by address, then the specific assignment works.
    assert_eq!(
        f.ipam.release_ips(&[taken]).unwrap_or_default(),
        vec![taken]
    );
    f.ipam
        .assign_ip(taken, "net.c", &attrs, "n1", Use::Workload)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(f.ipam.ips_by_handle("net.a").unwrap_or_default().len(), 3);
    // A specific address in an unclaimed block claims it for the node.
    f.pool("q", "10.6.0.0/24", ", blockSize: 28");
    f.ipam
        .assign_ip(ip("10.6.0.77"), "net.d", &attrs, "n9", Use::Workload)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(affine_blocks(&f, "n9"), vec![net("10.6.0.64/28")]);
}

fn release_is_idempotent_and_orphans_reclaimed(f: Fx) {
    f.pool("p", "10.7.0.0/24", ", blockSize: 28");
    f.node("alive", "");
    f.ipam
        .auto_assign(&args("net.x", "gone", 2, 0))
        .unwrap_or_else(|e| panic!("{e}"));
    f.ipam
        .auto_assign(&args("net.y", "alive", 1, 0))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        f.ipam.release_by_handle("net.x").unwrap_or_default().len(),
        2
    );
    assert!(
        f.ipam
            .release_by_handle("net.x")
            .unwrap_or_else(|e| panic!("{e}"))
            .is_empty()
    );
    assert!(
        f.ipam
            .release_by_handle("never-existed")
            .unwrap_or_else(|e| panic!("{e}"))
            .is_empty()
    );
    assert!(
        f.ipam
            .handles()
            .unwrap_or_default()
            .iter()
            .all(|(h, _)| h != "net.x")
    );
    // The node "gone" has no Node resource: its empty block is reclaimed; "alive" keeps its block.
    let freed = f
        .ipam
        .release_orphan_blocks()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(freed, vec![net("10.7.0.0/28")]);
    assert!(affine_blocks(&f, "gone").is_empty());
    assert_eq!(affine_blocks(&f, "alive").len(), 1);
    // GC keeps listed containers and releases the rest of the network's handles.
    f.ipam
        .auto_assign(&args("net.keep", "alive", 1, 0))
        .unwrap_or_else(|e| panic!("{e}"));
    f.ipam
        .auto_assign(&args("other.z", "alive", 1, 0))
        .unwrap_or_else(|e| panic!("{e}"));
    let keep: HashSet<String> = ["keep".to_string()].into();
    let mut gone = f
        .ipam
        .gc("net", "alive", Some(&keep))
        .unwrap_or_else(|e| panic!("{e}"));
    gone.sort();
    assert_eq!(gone, vec!["net.y".to_string()]);
    let left: Vec<String> = f
        .ipam
        .handles()
        .unwrap_or_default()
        .into_iter()
        .map(|(h, _)| h)
        .collect();
    assert_eq!(left, vec!["net.keep".to_string(), "other.z".to_string()]);
}

/// 3 nodes × 60 assignments, 24 at a time: all succeed, all unique, each
/// inside a block affine to its node; after releasing all, nothing is left.
fn concurrent_nodes(f: Fx) {
    f.pool("p", "10.8.0.0/16", ", blockSize: 26");
    let ipam = Arc::new(f.ipam.clone());
    let jobs: Vec<(String, String)> = (0..180)
        .map(|i| (format!("n{}", i % 3), format!("k8s-pod-network.c{i}")))
        .collect();
    let jobs = Arc::new(std::sync::Mutex::new(jobs));
    let results = Arc::new(std::sync::Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..24)
        .map(|_| {
            let (ipam, jobs, results) = (ipam.clone(), jobs.clone(), results.clone());
            std::thread::spawn(move || {
                loop {
                    let Some((node, handle)) = jobs.lock().ok().and_then(|mut j| j.pop()) else {
                        return;
                    };
                    let got = ipam
                        .auto_assign(&args(&handle, &node, 1, 0))
                        .unwrap_or_else(|e| panic!("{handle}: {e}"));
                    if let Ok(mut r) = results.lock() {
                        r.push((node, handle, got.v4[0]));
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap_or_else(|_| panic!("worker panicked"));
    }
    let results = results.lock().map(|r| r.clone()).unwrap_or_default();
    assert_eq!(results.len(), 180);
    let unique: BTreeSet<IpAddr> = results.iter().map(|r| r.2).collect();
    assert_eq!(unique.len(), 180, "an address was handed out twice");
    for (node, handle, addr) in &results {
        let blocks = affine_blocks(&f, node);
        assert!(
            blocks.iter().any(|b| b.contains(addr)),
            "{handle} on {node} got {addr} outside its blocks {blocks:?}"
        );
    }
    for b in f.ipam.blocks().unwrap_or_default() {
        b.check().unwrap_or_else(|e| panic!("{e}"));
    }
    for (_, handle, _) in &results {
        f.ipam
            .release_by_handle(handle)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(
        f.ipam
            .blocks()
            .unwrap_or_default()
            .iter()
            .all(|b| b.is_empty())
    );
    assert!(f.ipam.handles().unwrap_or_default().is_empty());
}

/// A corrupt block in the store is a clear error, never a panic.
fn corrupt_block_is_an_error(f: Fx) {
    use calico_datastore::Op;
    f.pool("p", "10.9.0.0/24", ", blockSize: 30");
    f.ipam
        .auto_assign(&args("net.a", "n1", 1, 0))
        .unwrap_or_else(|e| panic!("{e}"));
    let key = calico_ipam::keys::block(&net("10.9.0.0/30"));
    let bad = r#"{"cidr":"10.9.0.0/30","affinity":"host:n1","allocations":[0,null],"unallocated":[7],"attributes":[]}"#;
    f.ipam
        .store()
        .txn(
            &[],
            &[Op::Put {
                key,
                value: bad.as_bytes().to_vec(),
            }],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let e = f.ipam.auto_assign(&args("net.b", "n1", 1, 0)).err();
    assert!(matches!(e, Some(IpamError::Corrupt { .. })), "{e:?}");
    assert!(matches!(
        f.ipam.release_by_handle("net.a"),
        Err(IpamError::Corrupt { .. })
    ));
}

/// Args for a pod of CNI network `network` (recorded in the attributes).
fn pod(network: &str, container: &str, node: &str) -> AssignArgs {
    let mut a = args(&format!("{network}.{container}"), node, 1, 0);
    a.attrs.insert("network".into(), network.into());
    a
}

fn held(f: &Fx, handle: &str) -> bool {
    !f.ipam
        .ips_by_handle(handle)
        .unwrap_or_else(|e| panic!("{e}"))
        .is_empty()
}

/// Issue 19, point 1: GC releases only this node's handles of exactly this
/// network, and nothing without an attachment list.
fn gc_only_this_node_and_network(f: Fx) {
    f.pool("p", "10.10.0.0/24", ", blockSize: 28");
    for (net, c, node) in [
        ("net", "x1", "n1"),
        ("net", "y1", "n2"),
        ("net", "y2", "n2"),
        ("a", "dot.ted", "n2"),
        ("a", "gone", "n2"),
        ("a.b", "c", "n2"),
    ] {
        f.ipam
            .auto_assign(&pod(net, c, node))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    // An older allocation without the network attribute: `a.b.old` could be
    // network `a` + `b.old`: GC of `a` keeps it.
    f.ipam
        .auto_assign(&args("a.b.old", "n2", 1, 0))
        .unwrap_or_else(|e| panic!("{e}"));
    let keep: HashSet<String> = ["y1".to_string()].into();
    let gone = f
        .ipam
        .gc("net", "n2", Some(&keep))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(gone, vec!["net.y2".to_string()]);
    assert!(held(&f, "net.x1") && held(&f, "net.y1"));
    assert_eq!(f.ipam.gc("net", "n2", None), Ok(vec![]));
    assert!(held(&f, "net.y1"));
    let keep: HashSet<String> = ["dot.ted".to_string()].into();
    let gone = f
        .ipam
        .gc("a", "n2", Some(&keep))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(gone, vec!["a.gone".to_string()]);
    assert!(held(&f, "a.dot.ted") && held(&f, "a.b.c") && held(&f, "a.b.old"));
    // n1's own GC does release its dead x1.
    let gone = f
        .ipam
        .gc("net", "n1", Some(&HashSet::new()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(gone, vec!["net.x1".to_string()]);
    assert!(held(&f, "net.y1"));
}

/// Issue 19, point 10: allowedUses bind requested pools and specific
/// addresses; requested pools bypass nodeSelector and assignmentMode;
/// automatic selection skips `Manual` pools; as Calico.
fn pool_uses_as_calico(f: Fx) {
    f.pool("manual", "10.11.3.0/24", ", assignmentMode: Manual");
    f.pool("tun", "10.11.1.0/24", ", allowedUses: [Tunnel]");
    f.pool("work", "10.11.2.0/24", ", nodeSelector: rack == 'r1'");
    f.node("n1", "rack: r1");
    f.node("n2", "rack: r2");
    let v4 = |a: &AssignArgs| {
        f.ipam
            .auto_assign(a)
            .map(|got| got.v4[0])
            .unwrap_or_else(|e| panic!("{e}"))
    };
    // Automatic: neither the Manual nor the Tunnel-only pool.
    assert!(net("10.11.2.0/24").contains(&v4(&args("net.1", "n1", 1, 0))));
    let e = f.ipam.auto_assign(&args("net.2", "n2", 1, 0)).err();
    assert!(matches!(e, Some(IpamError::NoPools { .. })), "{e:?}");
    let requested = |pools: &[&str], handle: &str, use_: Use| AssignArgs {
        v4_pools: pools.iter().map(|p| p.to_string()).collect(),
        use_,
        ..args(handle, "n2", 1, 0)
    };
    // Requested: allowedUses still applies (a pool not allowing the use is
    // dropped; none left is an error) ...
    let e = f
        .ipam
        .auto_assign(&requested(&["tun"], "net.3", Use::Workload))
        .err();
    assert!(matches!(e, Some(IpamError::PoolUse { .. })), "{e:?}");
    assert!(!held(&f, "net.3"));
    let got = v4(&requested(&["tun", "work"], "net.4", Use::Workload));
    assert!(net("10.11.2.0/24").contains(&got), "{got}");
    let got = v4(&requested(&["tun"], "tunnel-n2", Use::Tunnel));
    assert!(net("10.11.1.0/24").contains(&got), "{got}");
    // ... nodeSelector (work does not select n2) and assignmentMode do not.
    let got = v4(&requested(&["manual"], "net.5", Use::Workload));
    assert!(net("10.11.3.0/24").contains(&got), "{got}");
    // Specific addresses: allowedUses applies, nodeSelector does not.
    let attrs = BTreeMap::new();
    assert_eq!(
        f.ipam
            .assign_ip(ip("10.11.1.9"), "net.6", &attrs, "n2", Use::Workload),
        Err(IpamError::NotAllowed {
            ip: ip("10.11.1.9"),
            pool: "tun".into(),
            use_: "Workload"
        })
    );
    assert_eq!(f.ipam.assignment(ip("10.11.1.9")), Ok(None));
    assert_eq!(
        f.ipam
            .assign_ip(ip("10.11.1.9"), "tunnel-x", &attrs, "n2", Use::Tunnel),
        Ok(AssignedIp::New)
    );
    assert_eq!(
        f.ipam
            .assign_ip(ip("10.11.2.9"), "net.7", &attrs, "n2", Use::Workload),
        Ok(AssignedIp::New)
    );
}

/// Issue 19, point 5: a specific address the handle already holds is done,
/// not "in use" (which made the loser of a race release the winner's).
fn specific_address_is_idempotent_per_handle(f: Fx) {
    f.pool("p", "10.12.0.0/24", ", blockSize: 28");
    let attrs = BTreeMap::new();
    let a = ip("10.12.0.7");
    let assign = |h: &str| f.ipam.assign_ip(a, h, &attrs, "n1", Use::Workload);
    assert_eq!(assign("net.c"), Ok(AssignedIp::New));
    assert_eq!(assign("net.c"), Ok(AssignedIp::AlreadyHeld));
    assert_eq!(f.ipam.ips_by_handle("net.c"), Ok(vec![a]));
    let handles = f.ipam.handles().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(handles.len(), 1);
    assert_eq!(handles[0].1.block.values().sum::<usize>(), 1);
    assert_eq!(
        assign("net.other"),
        Err(IpamError::InUse {
            ip: a,
            handle: "net.c".into()
        })
    );
}

macro_rules! suite {
    ($backend:ident) => {
        mod $backend {
            #[test]
            fn affine_blocks_first_then_claim() {
                super::affine_blocks_first_then_claim(super::$backend());
            }
            #[test]
            fn max_blocks_borrow_and_strict_affinity() {
                super::max_blocks_borrow_and_strict_affinity(super::$backend());
            }
            #[test]
            fn pool_selection() {
                super::pool_selection(super::$backend());
            }
            #[test]
            fn reservations_and_specific_addresses() {
                super::reservations_and_specific_addresses(super::$backend());
            }
            #[test]
            fn release_is_idempotent_and_orphans_reclaimed() {
                super::release_is_idempotent_and_orphans_reclaimed(super::$backend());
            }
            #[test]
            fn corrupt_block_is_an_error() {
                super::corrupt_block_is_an_error(super::$backend());
            }
            #[test]
            fn concurrent_nodes() {
                super::concurrent_nodes(super::$backend());
            }
            #[test]
            fn gc_only_this_node_and_network() {
                super::gc_only_this_node_and_network(super::$backend());
            }
            #[test]
            fn pool_uses_as_calico() {
                super::pool_uses_as_calico(super::$backend());
            }
            #[test]
            fn specific_address_is_idempotent_per_handle() {
                super::specific_address_is_idempotent_per_handle(super::$backend());
            }
        }
    };
}

suite!(local);
suite!(etcd);
