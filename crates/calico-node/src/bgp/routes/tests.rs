use super::*;
use crate::bgp::plan::BgpPool;
use calico_api::resources::EncapMode;
use calico_bgp::rib::Path;

fn net(s: &str) -> IpNet {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn path(next_hop: &str, local_pref: u32, as_path_len: usize) -> Arc<Path> {
    Arc::new(Path {
        next_hop: ip(next_hop),
        as_path_len,
        local_pref,
        attributes: calico_bgp::msg::Attributes::default(),
    })
}

fn learn(s: &mut SharedState, peer: &str, prefix: &str, p: Arc<Path>) {
    s.rib
        .peers
        .entry(ip(peer))
        .or_default()
        .routes
        .insert(net(prefix), p);
}

#[test]
fn ip_in_ip_pools_go_through_tunl0_cross_subnet_only_across_subnets() {
    let mut s = SharedState {
        subnet: Some("172.31.0.0/24".parse().unwrap()),
        ..SharedState::default()
    };
    for (cidr, ipip) in [
        ("10.1.0.0/16", EncapMode::Always),
        ("10.2.0.0/16", EncapMode::CrossSubnet),
        ("10.3.0.0/16", EncapMode::Never),
    ] {
        s.pools.push(BgpPool {
            cidr: net(cidr),
            disable_export: false,
            vxlan: false,
            ipip,
        });
    }
    let (near, far) = (ip("172.31.0.2"), ip("172.31.9.2"));
    assert!(via_tunnel(&s, &net("10.1.0.0/26"), near));
    assert!(!via_tunnel(&s, &net("10.2.0.0/26"), near));
    assert!(via_tunnel(&s, &net("10.2.0.0/26"), far));
    assert!(!via_tunnel(&s, &net("10.3.0.0/26"), far));
    assert!(
        !via_tunnel(&s, &net("192.168.0.0/24"), far),
        "outside pools"
    );
    assert!(!via_tunnel(&s, &net("fd00::/122"), ip("fd00::2")));
    s.subnet = None;
    assert!(
        !via_tunnel(&s, &net("10.2.0.0/26"), far),
        "no subnet: no tunnel"
    );
    // A change of mode makes the next sweep replace every route.
    let before = tunnel_mode(&s);
    s.pools[2].ipip = EncapMode::Always;
    assert_ne!(before, tunnel_mode(&s));
}

#[test]
fn installed_packs_ipv4_and_keeps_the_rest() {
    let mut i = Installed::default();
    assert!(i.is_empty());
    i.insert(net("10.0.0.0/24"), Some(ip("172.31.0.1")));
    i.insert(net("10.0.1.1/32"), None);
    i.insert(net("10.0.2.0/24"), Some(ip("fd00::1")));
    i.insert(net("fd00:1::/64"), Some(ip("fd00::2")));
    assert_eq!(i.len(), 4);
    assert_eq!(i.v4.len(), 1);
    assert_eq!(i.get(&net("10.0.0.0/24")), Some(Some(ip("172.31.0.1"))));
    assert_eq!(i.get(&net("10.0.0.0/25")), None);
    assert_eq!(i.get(&net("10.0.1.1/32")), Some(None));
    assert_eq!(i.get(&net("10.0.2.0/24")), Some(Some(ip("fd00::1"))));
    assert_eq!(i.get(&net("fd00:1::/64")), Some(Some(ip("fd00::2"))));
    // A gateway of the other kind moves the entry between the maps.
    i.insert(net("10.0.1.1/32"), Some(ip("172.31.0.2")));
    i.insert(net("10.0.0.0/24"), None);
    assert_eq!(i.get(&net("10.0.1.1/32")), Some(Some(ip("172.31.0.2"))));
    assert_eq!(i.get(&net("10.0.0.0/24")), Some(None));
    assert_eq!(i.len(), 4);
    i.remove(&net("10.0.1.1/32"));
    i.remove(&net("fd00:1::/64"));
    i.remove(&net("10.9.9.9/32"));
    assert_eq!(i.len(), 2);
    for p in ["0.0.0.0/0", "255.255.255.255/32", "10.1.2.3/32"] {
        assert_eq!(unpack(pack(&p.parse().unwrap_or_default())), net(p));
    }
}

#[test]
fn installed_iterates_from_any_position() {
    let mut i = Installed::default();
    let all = [
        "10.0.0.0/24",
        "10.0.0.0/25",
        "10.0.1.0/24",
        "192.168.0.0/16",
        "fd00::/64",
        "fd00:1::/64",
    ];
    for (n, p) in all.iter().enumerate() {
        let gw = if n == 2 { None } else { Some(ip("172.31.0.1")) };
        i.insert(net(p), gw);
    }
    let from_start: Vec<(At, IpNet)> = i.after(At::Start).collect();
    assert_eq!(from_start.len(), all.len());
    let mut seen: Vec<String> = from_start.iter().map(|(_, p)| p.to_string()).collect();
    seen.sort();
    let mut want: Vec<String> = all.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(seen, want);
    // Going on after each position gives exactly the rest.
    for (k, (pos, _)) in from_start.iter().enumerate() {
        let rest: Vec<IpNet> = i.after(*pos).map(|(_, p)| p).collect();
        let expect: Vec<IpNet> = from_start[k + 1..].iter().map(|(_, p)| *p).collect();
        assert_eq!(rest, expect, "after {pos:?}");
    }
}

#[test]
fn best_path_leaves_out_exports_vxlan_pools_and_expired_stale_routes() {
    let now = Instant::now();
    let mut s = SharedState::default();
    for p in ["10.1.0.0/26", "10.2.0.0/26", "10.3.0.0/26", "10.4.0.0/26"] {
        learn(&mut s, "172.31.0.2", p, path("172.31.0.2", 100, 0));
    }
    s.rib.exports.insert(net("10.1.0.0/26"));
    s.pools.push(BgpPool {
        cidr: net("10.2.0.0/16"),
        disable_export: false,
        vxlan: true,
        ipip: EncapMode::Never,
    });
    s.pools.push(BgpPool {
        cidr: net("10.3.0.0/16"),
        disable_export: false,
        vxlan: false,
        ipip: EncapMode::Never,
    });
    let l = s.rib.peers.entry(ip("172.31.0.2")).or_default();
    l.stale.insert(net("10.4.0.0/26"));
    l.stale_until = Some(now + Duration::from_secs(5));
    let desired: Vec<IpNet> = desired_routes(&s, now).into_keys().collect();
    assert_eq!(desired, [net("10.3.0.0/26"), net("10.4.0.0/26")]);
    // Past the restart time the stale route goes.
    let later = now + Duration::from_secs(6);
    let desired: Vec<IpNet> = desired_routes(&s, later).into_keys().collect();
    assert_eq!(desired, [net("10.3.0.0/26")]);
}

/// Runs a whole sweep with `limits`, applying each chunk to `installed`
/// as the kernel would take it; returns the number of chunks.
fn sweep_all(
    s: &SharedState,
    installed: &mut Installed,
    failed: &BTreeMap<IpNet, IpAddr>,
    now: Instant,
    delete: bool,
    limits: Limits,
) -> usize {
    let mut sweep = Sweep::new(now, delete);
    let mut chunks = 0;
    while let Some(changes) = sweep.next_chunk(s, installed, failed, limits) {
        chunks += 1;
        assert!(changes.len() <= limits.changes);
        sweep.installed_new(apply(installed, &changes));
        assert!(chunks < 100_000, "the sweep never ends");
    }
    chunks
}

/// `changes` made in `installed`; the number of new prefixes.
fn apply(installed: &mut Installed, changes: &[Change]) -> usize {
    let mut new = 0;
    for c in changes {
        match *c {
            Change::Replace(p, gw) => {
                new += usize::from(!installed.contains(&p));
                installed.insert(p, Some(gw));
            }
            Change::Delete(p) => installed.remove(&p),
        }
    }
    new
}

fn as_installed(m: &BTreeMap<IpNet, IpAddr>) -> Installed {
    let mut i = Installed::default();
    for (p, gw) in m {
        i.insert(*p, Some(*gw));
    }
    i
}

/// A small deterministic generator (the crate has no proptest).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

fn random_state(rng: &mut Lcg, now: Instant) -> SharedState {
    let mut s = SharedState::default();
    let peers = 1 + rng.next(4);
    for peer in 0..peers {
        let addr = format!("172.31.0.{}", peer + 1);
        let count = rng.next(60);
        for _ in 0..count {
            let prefix = if rng.next(5) == 0 {
                format!("fd00:{:x}::/64", rng.next(40))
            } else {
                format!("10.{}.{}.0/24", rng.next(3), rng.next(30))
            };
            let nh = format!("172.31.0.{}", 1 + rng.next(6));
            learn(
                &mut s,
                &addr,
                &prefix,
                path(&nh, 100 + 50 * u32::from(rng.next(3) == 0), 1),
            );
        }
        if rng.next(3) == 0 {
            let l = s.rib.peers.entry(ip(&addr)).or_default();
            l.stale = l
                .routes
                .keys()
                .filter(|_| rng.next(2) == 0)
                .copied()
                .collect();
            let secs = rng.next(3);
            l.stale_until = Some(now - Duration::from_secs(1) + Duration::from_secs(secs));
        }
    }
    if rng.next(2) == 0 {
        s.rib.exports.insert(net("10.0.1.0/24"));
    }
    if rng.next(2) == 0 {
        s.pools.push(BgpPool {
            cidr: net("10.2.0.0/16"),
            disable_export: false,
            vxlan: true,
            ipip: EncapMode::Never,
        });
    }
    s
}

#[test]
fn sweeps_in_small_chunks_reach_the_best_paths() {
    let now = Instant::now();
    let mut rng = Lcg(7);
    let (mut wanted, mut chunked) = (0, 0);
    for round in 0..300 {
        let s = random_state(&mut rng, now);
        let want = desired_routes(&s, now);
        wanted += want.len();
        // What the kernel had: some of it right, some wrong, some
        // extra, or nothing.
        let mut installed = if rng.next(4) == 0 {
            Installed::default()
        } else {
            let other = random_state(&mut rng, now);
            as_installed(&desired_routes(&other, now))
        };
        if let Some((p, _)) = want.iter().next() {
            installed.insert(*p, None);
        }
        let limits = Limits {
            scan: 1 + rng.next(7) as usize,
            changes: 1 + rng.next(5) as usize,
        };
        if sweep_all(&s, &mut installed, &BTreeMap::new(), now, true, limits) > 10 {
            chunked += 1;
        }
        assert_eq!(installed, as_installed(&want), "round {round}");
        // Nothing more to do.
        let mut again = Sweep::new(now, true);
        while let Some(changes) = again.next_chunk(&s, &installed, &BTreeMap::new(), limits) {
            assert_eq!(changes, [], "round {round}");
        }
    }
    assert!(
        wanted > 3_000 && chunked > 100,
        "{wanted} routes, {chunked}"
    );
}

#[test]
fn the_walk_for_withdrawals_is_skipped_when_every_installed_route_is_wanted() {
    let now = Instant::now();
    let mut s = SharedState::default();
    for i in 0..10 {
        learn(
            &mut s,
            "172.31.0.2",
            &format!("10.1.{i}.0/24"),
            path("172.31.0.2", 100, 0),
        );
    }
    let one = Limits {
        scan: 1,
        changes: 1,
    };
    // Half of them installed already: 10 chunks of one route each, and
    // one that finds the end of the learned routes.
    let mut installed = Installed::default();
    for i in 0..5 {
        installed.insert(net(&format!("10.1.{i}.0/24")), Some(ip("172.31.0.2")));
    }
    let chunks = sweep_all(&s, &mut installed, &BTreeMap::new(), now, true, one);
    assert_eq!(chunks, 11);
    assert_eq!(installed.len(), 10);
    // One extra route: the walk runs, and takes it away.
    installed.insert(net("10.9.0.0/24"), Some(ip("172.31.0.2")));
    let chunks = sweep_all(&s, &mut installed, &BTreeMap::new(), now, true, one);
    assert!(chunks > 11, "{chunks}");
    assert_eq!(installed, as_installed(&desired_routes(&s, now)));
}

#[test]
fn a_sweep_without_delete_keeps_routes_of_an_earlier_run() {
    let now = Instant::now();
    let mut s = SharedState::default();
    learn(
        &mut s,
        "172.31.0.2",
        "10.1.0.0/24",
        path("172.31.0.2", 100, 0),
    );
    let mut installed = Installed::default();
    installed.insert(net("10.1.0.0/24"), Some(ip("172.31.0.9")));
    installed.insert(net("10.9.0.0/24"), Some(ip("172.31.0.9")));
    let limits = Limits {
        scan: 1,
        changes: 1,
    };
    sweep_all(&s, &mut installed, &BTreeMap::new(), now, false, limits);
    assert_eq!(
        installed.get(&net("10.1.0.0/24")),
        Some(Some(ip("172.31.0.2")))
    );
    assert_eq!(
        installed.get(&net("10.9.0.0/24")),
        Some(Some(ip("172.31.0.9")))
    );
    sweep_all(&s, &mut installed, &BTreeMap::new(), now, true, limits);
    assert_eq!(installed.get(&net("10.9.0.0/24")), None);
    assert_eq!(installed.len(), 1);
}

#[test]
fn a_route_that_failed_waits_for_its_retry_unless_its_gateway_changes() {
    let now = Instant::now();
    let mut s = SharedState::default();
    learn(
        &mut s,
        "172.31.0.2",
        "10.1.0.0/24",
        path("172.31.0.2", 100, 0),
    );
    let installed = Installed::default();
    let mut failed = BTreeMap::new();
    failed.insert(net("10.1.0.0/24"), ip("172.31.0.2"));
    let sweep = |s: &SharedState, failed: &BTreeMap<IpNet, IpAddr>| {
        Sweep::new(now, true)
            .next_chunk(s, &installed, failed, LIMITS)
            .unwrap_or_default()
    };
    assert_eq!(sweep(&s, &failed), []);
    learn(
        &mut s,
        "172.31.0.2",
        "10.1.0.0/24",
        path("172.31.0.3", 100, 0),
    );
    assert_eq!(
        sweep(&s, &failed),
        [Change::Replace(net("10.1.0.0/24"), ip("172.31.0.3"))]
    );
    failed.clear();
    learn(
        &mut s,
        "172.31.0.2",
        "10.1.0.0/24",
        path("172.31.0.2", 100, 0),
    );
    assert_eq!(
        sweep(&s, &failed),
        [Change::Replace(net("10.1.0.0/24"), ip("172.31.0.2"))]
    );
}

#[test]
fn a_sweep_goes_on_where_the_learned_routes_changed_between_chunks() {
    let now = Instant::now();
    let mut s = SharedState::default();
    for i in 0..20 {
        learn(
            &mut s,
            "172.31.0.2",
            &format!("10.1.{i}.0/24"),
            path("172.31.0.2", 100, 0),
        );
    }
    let mut installed = Installed::default();
    let mut sweep = Sweep::new(now, true);
    let five = Limits {
        scan: 5,
        changes: 5,
    };
    let changes = sweep
        .next_chunk(&s, &installed, &BTreeMap::new(), five)
        .unwrap_or_default();
    assert_eq!(changes.len(), 5);
    sweep.installed_new(apply(&mut installed, &changes));
    // A peer that sorts first appears, the cursor's peer goes away:
    // the sweep goes on with the peers after it.
    s.rib.peers.remove(&ip("172.31.0.2"));
    learn(
        &mut s,
        "172.31.0.1",
        "10.2.0.0/24",
        path("172.31.0.1", 100, 0),
    );
    learn(
        &mut s,
        "172.31.0.5",
        "10.3.0.0/24",
        path("172.31.0.5", 100, 0),
    );
    let changes = sweep
        .next_chunk(&s, &installed, &BTreeMap::new(), LIMITS)
        .unwrap_or_default();
    assert_eq!(
        changes,
        [Change::Replace(net("10.3.0.0/24"), ip("172.31.0.5"))]
    );
    sweep.installed_new(apply(&mut installed, &changes));
    // What it counted no longer holds (the routes changed under it):
    // the next sweep, which a changed generation brings, puts it right.
    while let Some(changes) = sweep.next_chunk(&s, &installed, &BTreeMap::new(), LIMITS) {
        sweep.installed_new(apply(&mut installed, &changes));
    }
    sweep_all(&s, &mut installed, &BTreeMap::new(), now, true, five);
    assert_eq!(installed, as_installed(&desired_routes(&s, now)));
}

#[test]
fn installed_walks_ipv4_scattered() {
    let mut i = Installed::default();
    for n in 0..8 {
        i.insert(net(&format!("100.64.0.{n}/32")), Some(ip("172.31.0.2")));
    }
    let order: Vec<String> = i.after(At::Start).map(|(_, p)| p.to_string()).collect();
    assert_eq!(
        order,
        [
            "100.64.0.0/32",
            "100.64.0.4/32",
            "100.64.0.2/32",
            "100.64.0.6/32",
            "100.64.0.1/32",
            "100.64.0.5/32",
            "100.64.0.3/32",
            "100.64.0.7/32"
        ]
    );
}

#[test]
fn learned_routes_over_the_nodes_own_stay_out_unless_a_filter_accepted_them() {
    use crate::bgp::filter::Local;
    let now = Instant::now();
    let mut s = SharedState {
        local: Local::new(
            ["172.31.0.0/24", "172.31.0.1/32", "10.84.0.0/26"].map(net),
            ["10.84.0.5/32"].map(net),
        ),
        ..SharedState::default()
    };
    for p in [
        "172.31.0.0/24",
        "10.84.0.0/26",
        "10.84.0.5/32",
        "0.0.0.0/0",
        "10.84.0.64/26",
    ] {
        learn(&mut s, "172.31.0.2", p, path("172.31.0.2", 100, 0));
    }
    let desired: Vec<IpNet> = desired_routes(&s, now).into_keys().collect();
    assert_eq!(desired, [net("10.84.0.64/26")]);
    // A second peer whose filter accepted the default route: its path is
    // the one installed, though the first peer's is preferred otherwise.
    learn(&mut s, "172.31.0.9", "0.0.0.0/0", path("172.31.0.9", 50, 3));
    s.rib
        .peers
        .entry(ip("172.31.0.9"))
        .or_default()
        .accepted
        .insert(net("0.0.0.0/0"));
    assert_eq!(
        best_path(&s, &net("0.0.0.0/0"), now),
        Some((ip("172.31.0.9"), ip("172.31.0.9")))
    );
    let mut installed = Installed::default();
    sweep_all(&s, &mut installed, &BTreeMap::new(), now, true, LIMITS);
    assert_eq!(installed, as_installed(&desired_routes(&s, now)));
    assert_eq!(installed.len(), 2);
    // Routes in the kernel that became the node's own go at the next sweep.
    installed.insert(net("172.31.0.0/24"), Some(ip("172.31.0.2")));
    sweep_all(&s, &mut installed, &BTreeMap::new(), now, true, LIMITS);
    assert!(!installed.contains(&net("172.31.0.0/24")));
}

#[test]
fn our_routes_are_those_of_our_protocol_at_our_metric() {
    let r = |dst: &str, protocol: u8| Route::new(net(dst)).protocol(protocol);
    assert!(ours(&r("10.1.0.0/24", PROTO_BGP), METRIC_V4));
    assert!(ours(&r("fd00::/64", PROTO_BGP), METRIC_V6));
    assert!(!ours(&r("10.1.0.0/24", PROTO_BGP), 0), "an earlier metric");
    assert!(!ours(&r("fd00::/64", PROTO_BGP), METRIC_V4));
    assert!(!ours(&r("10.1.0.0/24", 80), METRIC_V4), "Felix's");
}
