use super::*;

fn net(s: &str) -> IpNet {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

const AS: u32 = 64512;

/// A speaker of AS 64512, router id 10.0.0.1, optionally a reflector.
fn rib(cluster_id: Option<&str>) -> Rib {
    let mut r = Rib::default();
    r.apply(RibEvent::Local {
        local_as: AS,
        router_id: v4("10.0.0.1"),
        cluster_id: cluster_id.map(v4),
        exports: [net("10.65.0.0/26")].into(),
        communities: BTreeMap::new(),
        ebgp_passed_on: vec![net("10.65.0.0/16")],
    });
    r
}

fn announce(prefixes: &[&str], next_hop: &str, attributes: Attributes) -> Update {
    Update {
        announced: prefixes.iter().map(|p| net(p)).collect(),
        attributes: Attributes {
            next_hop: Some(v4(next_hop)),
            ..attributes
        },
        ..Update::default()
    }
}

fn receive(r: &mut Rib, peer: &str, peer_as: u32, u: &Update) -> RibOutput {
    r.apply(RibEvent::Update {
        peer: ip(peer),
        peer_as,
        update: u,
        import: &(),
        max_prefixes: 1000,
    })
}

fn up(r: &mut Rib, peer: &str, rr_client: bool) {
    let router_id = v4(peer);
    r.apply(RibEvent::PeerUp {
        peer: ip(peer),
        router_id,
        rr_client,
    });
}

fn best_hop(r: &Rib, prefix: &str) -> Option<IpAddr> {
    r.best(&net(prefix), |_| true).map(|(_, p)| p.next_hop)
}

fn neighbor<'a>(address: &str, asn: u32, rr_client: bool, own: &str) -> Neighbor<'a> {
    Neighbor {
        address: ip(address),
        asn,
        rr_client,
        keep_original_next_hop: false,
        export: &(),
        own: ip(own),
    }
}

fn pref(local_pref: u32, as_path: &[u32]) -> Attributes {
    Attributes {
        local_pref: Some(local_pref),
        as_path: if as_path.is_empty() {
            Vec::new()
        } else {
            vec![Segment::Sequence(as_path.to_vec())]
        },
        ..Attributes::default()
    }
}

#[test]
fn best_path_prefers_local_pref_then_as_path_then_lowest_peer() {
    let mut r = rib(None);
    let p = "10.66.0.0/26";
    receive(
        &mut r,
        "10.0.0.9",
        AS,
        &announce(&[p], "10.0.0.9", pref(100, &[])),
    );
    receive(
        &mut r,
        "10.0.0.5",
        AS,
        &announce(&[p], "10.0.0.5", pref(100, &[])),
    );
    assert_eq!(best_hop(&r, p), Some(ip("10.0.0.5")), "lowest peer address");
    receive(
        &mut r,
        "10.0.0.3",
        65001,
        &announce(&[p], "10.0.0.3", pref(100, &[65001])),
    );
    assert_eq!(best_hop(&r, p), Some(ip("10.0.0.5")), "shorter AS path");
    receive(
        &mut r,
        "10.0.0.9",
        AS,
        &announce(&[p], "10.0.0.9", pref(200, &[1, 2])),
    );
    assert_eq!(best_hop(&r, p), Some(ip("10.0.0.9")), "higher LOCAL_PREF");
    // `is_best` agrees with `best` from each path.
    for (peer, l) in &r.peers {
        let path = &l.routes[&net(p)];
        assert_eq!(
            r.is_best(*peer, &net(p), path, |_| true),
            *peer == ip("10.0.0.9")
        );
    }
    // A peer that does not count (stale, filtered by the caller) is skipped.
    let skip = ip("10.0.0.9");
    assert_eq!(
        r.best(&net(p), |l| !std::ptr::eq(l, &r.peers[&skip]))
            .map(|(peer, _)| peer),
        Some(ip("10.0.0.5"))
    );
}

#[test]
fn withdraw_brings_back_the_next_best_and_session_loss_drops_its_routes() {
    let mut r = rib(None);
    let p = "10.66.0.0/26";
    receive(
        &mut r,
        "10.0.0.5",
        AS,
        &announce(&[p], "10.0.0.5", pref(100, &[])),
    );
    receive(
        &mut r,
        "10.0.0.6",
        AS,
        &announce(&[p], "10.0.0.6", pref(100, &[7])),
    );
    assert_eq!(best_hop(&r, p), Some(ip("10.0.0.5")));
    let withdraw = Update {
        withdrawn: vec![net(p)],
        ..Update::default()
    };
    receive(&mut r, "10.0.0.5", AS, &withdraw);
    assert_eq!(best_hop(&r, p), Some(ip("10.0.0.6")), "the next best");
    r.apply(RibEvent::PeerDown {
        peer: ip("10.0.0.6"),
        stale_until: None,
    });
    assert_eq!(best_hop(&r, p), None);
}

#[test]
fn graceful_restart_keeps_routes_stale_until_end_of_rib() {
    let mut r = rib(None);
    let now = Instant::now();
    let peer = "10.0.0.5";
    receive(
        &mut r,
        peer,
        AS,
        &announce(&["10.66.0.0/26", "10.66.0.64/26"], peer, pref(100, &[])),
    );
    r.apply(RibEvent::PeerDown {
        peer: ip(peer),
        stale_until: Some(now + std::time::Duration::from_secs(120)),
    });
    let l = &r.peers[&ip(peer)];
    assert_eq!(l.routes.len(), 2, "kept across the restart");
    assert!(!l.expired(&net("10.66.0.0/26"), now));
    assert!(l.expired(
        &net("10.66.0.0/26"),
        now + std::time::Duration::from_secs(121)
    ));
    receive(
        &mut r,
        peer,
        AS,
        &announce(&["10.66.0.0/26"], peer, pref(100, &[])),
    );
    receive(&mut r, peer, AS, &Update::end_of_rib(Afi::Ipv4));
    let l = &r.peers[&ip(peer)];
    assert_eq!(
        l.routes.keys().copied().collect::<Vec<_>>(),
        [net("10.66.0.0/26")]
    );
    assert!(l.stale.is_empty() && l.stale_until.is_none());
    assert!(r.end_of_rib.contains(&ip(peer)));
}

#[test]
fn loops_are_dropped_our_as_our_originator_id_our_cluster_id() {
    let mut r = rib(Some("10.0.0.254"));
    let own_as = announce(&["10.66.0.0/26"], "10.0.0.3", pref(100, &[65001, AS]));
    receive(&mut r, "10.0.0.3", 65001, &own_as);
    let ours = Attributes {
        originator_id: Some(v4("10.0.0.1")),
        ..Attributes::default()
    };
    receive(
        &mut r,
        "10.0.0.5",
        AS,
        &announce(&["10.66.0.64/26"], "10.0.0.9", ours),
    );
    let cluster = Attributes {
        originator_id: Some(v4("10.0.0.9")),
        cluster_list: vec![v4("10.0.0.254")],
        ..Attributes::default()
    };
    receive(
        &mut r,
        "10.0.0.6",
        AS,
        &announce(&["10.66.0.128/26"], "10.0.0.9", cluster),
    );
    assert!(r.peers.values().all(|l| l.routes.is_empty()), "{r:?}");
    // Our AS in an iBGP peer's path is no loop.
    receive(
        &mut r,
        "10.0.0.5",
        AS,
        &announce(&["10.66.1.0/26"], "10.0.0.5", pref(100, &[AS])),
    );
    assert_eq!(best_hop(&r, "10.66.1.0/26"), Some(ip("10.0.0.5")));
}

#[test]
fn reflection_from_clients_to_all_from_non_clients_to_clients_only() {
    let mut r = rib(Some("10.0.0.254"));
    up(&mut r, "10.0.0.2", true);
    up(&mut r, "10.0.0.3", true);
    up(&mut r, "10.0.0.4", false);
    up(&mut r, "10.0.0.5", false);
    receive(
        &mut r,
        "10.0.0.2",
        AS,
        &announce(&["10.66.2.0/26"], "10.0.0.2", pref(100, &[])),
    );
    let out = receive(
        &mut r,
        "10.0.0.4",
        AS,
        &announce(&["10.66.4.0/26"], "10.0.0.4", pref(100, &[])),
    );
    assert!(out.readvertise, "a reflector's peers look again");
    let now = Instant::now();
    let to = |peer: &str, client: bool| {
        r.export(&neighbor(peer, AS, client, "10.0.0.1"), now)
            .unwrap_or_default()
    };
    let client = to("10.0.0.3", true);
    let keys: Vec<IpNet> = client.keys().copied().collect();
    assert_eq!(
        keys,
        ["10.65.0.0/26", "10.66.2.0/26", "10.66.4.0/26"].map(net)
    );
    let (a, hop) = &client[&net("10.66.2.0/26")];
    assert_eq!(a.originator_id, Some(v4("10.0.0.2")), "ORIGINATOR_ID set");
    assert_eq!(a.cluster_list, [v4("10.0.0.254")], "cluster id prepended");
    assert_eq!(a.next_hop, Some(v4("10.0.0.2")), "next hop kept");
    assert_eq!(*hop, None);
    // Own route: next hop self, LOCAL_PREF 100, no AS path.
    let (a, _) = &client[&net("10.65.0.0/26")];
    assert_eq!(
        (a.next_hop, a.local_pref),
        (Some(v4("10.0.0.1")), Some(100))
    );
    assert!(a.as_path.is_empty() && a.cluster_list.is_empty());
    // A non-client has the client's route, not the other non-client's.
    let non_client = to("10.0.0.5", false);
    assert!(non_client.contains_key(&net("10.66.2.0/26")));
    assert!(!non_client.contains_key(&net("10.66.4.0/26")));
    // Never back to where it came from.
    assert!(!to("10.0.0.2", true).contains_key(&net("10.66.2.0/26")));
}

#[test]
fn ibgp_split_horizon_without_reflection() {
    let mut r = rib(None);
    let out = receive(
        &mut r,
        "10.0.0.2",
        AS,
        &announce(&["10.66.2.0/26"], "10.0.0.2", pref(100, &[])),
    );
    assert!(!out.readvertise);
    let want = r
        .export(&neighbor("10.0.0.3", AS, true, "10.0.0.1"), Instant::now())
        .unwrap_or_default();
    assert_eq!(
        want.keys().copied().collect::<Vec<_>>(),
        [net("10.65.0.0/26")]
    );
}

#[test]
fn ebgp_gets_routes_in_exported_pools_with_our_as_and_next_hop() {
    let mut r = rib(None);
    let learned = Attributes {
        med: Some(5),
        ..pref(300, &[])
    };
    receive(
        &mut r,
        "10.0.0.2",
        AS,
        &announce(&["10.65.1.0/26", "192.168.0.0/24"], "10.0.0.2", learned),
    );
    let mut to = neighbor("172.16.0.1", 65001, false, "10.0.0.1");
    let want = r.export(&to, Instant::now()).unwrap_or_default();
    let keys: Vec<IpNet> = want.keys().copied().collect();
    assert_eq!(
        keys,
        ["10.65.0.0/26", "10.65.1.0/26"].map(net),
        "inside the pool only"
    );
    let (a, _) = &want[&net("10.65.1.0/26")];
    assert_eq!(a.as_path, [Segment::Sequence(vec![AS])]);
    assert_eq!(
        (a.local_pref, a.med),
        (None, None),
        "no iBGP-only attributes"
    );
    assert_eq!(a.next_hop, Some(v4("10.0.0.1")), "next hop self");
    to.keep_original_next_hop = true;
    let want = r.export(&to, Instant::now()).unwrap_or_default();
    assert_eq!(want[&net("10.65.1.0/26")].0.next_hop, Some(v4("10.0.0.2")));
    // Our own route to eBGP: our AS, no LOCAL_PREF.
    let (a, _) = &want[&net("10.65.0.0/26")];
    assert_eq!(
        (a.as_path.clone(), a.local_pref),
        (vec![Segment::Sequence(vec![AS])], None)
    );
}

struct Rules(Vec<(IpNet, Verdict)>);

impl Policy for Rules {
    fn verdict(&self, prefix: &IpNet, _: bool) -> Option<Verdict> {
        self.0.iter().find(|(n, _)| n == prefix).map(|(_, v)| *v)
    }
}

#[test]
fn import_policy_and_prefix_limit() {
    let mut r = rib(None);
    let import = Rules(vec![
        (net("10.66.0.0/26"), Verdict::Reject),
        (net("0.0.0.0/0"), Verdict::Accept),
    ]);
    let u = announce(
        &["10.66.0.0/26", "0.0.0.0/0", "10.66.1.0/26"],
        "10.0.0.2",
        pref(100, &[]),
    );
    let out = r.apply(RibEvent::Update {
        peer: ip("10.0.0.2"),
        peer_as: AS,
        update: &u,
        import: &import,
        max_prefixes: 2,
    });
    assert!(!out.prefix_limit_exceeded);
    let l = &r.peers[&ip("10.0.0.2")];
    assert_eq!(l.routes.len(), 2, "the rejected one is not kept");
    assert!(l.accepted(&net("0.0.0.0/0")) && !l.accepted(&net("10.66.1.0/26")));
    let more = announce(&["10.66.2.0/26"], "10.0.0.2", pref(100, &[]));
    let out = r.apply(RibEvent::Update {
        peer: ip("10.0.0.2"),
        peer_as: AS,
        update: &more,
        import: &import,
        max_prefixes: 2,
    });
    assert!(out.prefix_limit_exceeded);
    assert!(
        !r.peers.contains_key(&ip("10.0.0.2")),
        "its routes are gone"
    );
}

#[test]
fn updates_withdraw_first_then_announce_what_changed() {
    let r = rib(None);
    let now = Instant::now();
    let want = r
        .export(&neighbor("10.0.0.3", AS, false, "10.0.0.1"), now)
        .unwrap_or_default();
    let mut sent = AdjRibOut::new();
    sent.insert(net("10.99.0.0/26"), (Attributes::default(), None));
    let u = updates(&sent, &want, &Context { asn4: true });
    assert_eq!(u.len(), 2, "{u:?}");
    assert_eq!(u[0].withdrawn, [net("10.99.0.0/26")]);
    assert_eq!(u[1].announced, [net("10.65.0.0/26")]);
    assert_eq!(u[1].attributes, want[&net("10.65.0.0/26")].0);
    assert!(updates(&want, &want, &Context { asn4: true }).is_empty());
}

proptest::proptest! {
    /// `best` is the path of least rank among the usable ones, and
    /// `is_best` holds for it and for no path that ranks worse.
    #[test]
    fn best_is_the_least_rank_and_is_best_agrees(
        paths in proptest::collection::vec((1u8..8, 0u32..3, 0usize..4, proptest::bool::ANY), 1..12)
    ) {
        let mut r = Rib::default();
        let prefix = net("10.66.0.0/26");
        let mut unusable = BTreeSet::new();
        for (host, lp, len, usable) in &paths {
            let peer = IpAddr::V4(Ipv4Addr::new(10, 0, 0, *host));
            let path = Path {
                next_hop: peer,
                as_path_len: *len,
                local_pref: 100 + lp,
                attributes: Attributes::default(),
            };
            r.peers.entry(peer).or_default().routes.insert(prefix, Arc::new(path));
            if !usable {
                unusable.insert(peer);
            } else {
                unusable.remove(&peer);
            }
        }
        let usable = |l: &AdjRibIn| {
            !r.peers.iter().any(|(p, o)| std::ptr::eq(o, l) && unusable.contains(p))
        };
        let expect = r
            .peers
            .iter()
            .filter(|(p, _)| !unusable.contains(*p))
            .map(|(p, l)| l.routes[&prefix].rank(*p))
            .min();
        let best = r.best(&prefix, usable);
        proptest::prop_assert_eq!(best.map(|(p, path)| path.rank(p)), expect);
        for (peer, l) in &r.peers {
            let path = &l.routes[&prefix];
            let is_best = r.is_best(*peer, &prefix, path, usable);
            if !unusable.contains(peer) {
                proptest::prop_assert_eq!(is_best, best.map(|(p, _)| p) == Some(*peer));
            }
        }
    }
}
