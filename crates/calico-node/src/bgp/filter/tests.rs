use super::*;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// A node in 172.31.0.0/24 (address .1), with block 10.84.0.0/26,
/// loopback and an IPv6 interface and block; a pod at 10.84.0.5 and one
/// with an address borrowed from another node's block (10.84.1.70).
fn node() -> Local {
    Local::new(
        [
            "172.31.0.0/24",
            "172.31.0.1/32",
            "127.0.0.0/8",
            "127.0.0.1/32",
            "10.84.0.0/26",
            "fd00:31::/64",
            "fd00:31::1/128",
            "fd00:84::/122",
        ]
        .map(net),
        ["10.84.0.5/32", "10.84.1.70/32"].map(net),
    )
}

fn filter(json: &str) -> BGPFilterSpec {
    serde_json::from_str(json).unwrap()
}

#[test]
fn learned_prefixes_against_the_node_and_its_filters() {
    use Import::*;
    let local = node();
    let none = Rules::default();
    let accept_default = filter(
        r#"{"importV4":[{"cidr":"0.0.0.0/0","matchOperator":"Equal","action":"Accept"},
                        {"cidr":"198.51.100.0/24","matchOperator":"In","action":"Reject"}]}"#,
    );
    let (with_filter, problems) =
        Rules::compile(&[("tor", &accept_default)], Direction::Import, false);
    assert_eq!(problems, Vec::<String>::new());
    // (prefix, without a filter, with the filter)
    let table = [
        // The node's own: its connected subnet, its address, a pod, its
        // block, an address it borrowed, and what covers them.
        ("172.31.0.0/24", Kept, Kept),
        ("172.31.0.1/32", Kept, Kept),
        ("172.31.0.0/16", Kept, Kept),
        ("10.84.0.0/26", Kept, Kept),
        ("10.84.0.5/32", Kept, Kept),
        ("10.84.1.70/32", Kept, Kept),
        ("10.84.0.0/16", Kept, Kept),
        ("10.0.0.0/8", Kept, Kept),
        ("127.0.0.0/8", Kept, Kept),
        ("0.0.0.0/0", Kept, Kernel),
        ("fd00:31::/64", Kept, Kept),
        ("fd00:84::/112", Kept, Kept),
        ("::/0", Kept, Kept),
        // Inside the node's networks but not covering anything of its
        // own: another node's block (even the one a pod here borrowed
        // from), a pod another node borrowed from this node's block, a
        // neighbour's service address.
        ("10.84.1.64/26", Kernel, Kernel),
        ("10.84.0.40/32", Kernel, Kernel),
        ("172.31.0.200/32", Kernel, Kernel),
        ("10.84.0.32/27", Kernel, Kernel),
        // Elsewhere.
        ("203.0.113.0/24", Kernel, Kernel),
        ("198.51.100.0/24", Kernel, Dropped),
        ("198.51.100.128/25", Kernel, Dropped),
        ("2001:db8::/32", Kernel, Kernel),
    ];
    for (p, plain, filtered) in table {
        let prefix = net(p);
        assert_eq!(
            decide(&prefix, &local, none.verdict(&prefix, true)),
            plain,
            "{p}"
        );
        assert_eq!(
            decide(&prefix, &local, with_filter.verdict(&prefix, true)),
            filtered,
            "{p} with the filter"
        );
    }
    // A node that knows nothing of its own takes everything.
    assert_eq!(decide(&net("0.0.0.0/0"), &Local::default(), None), Kernel);
}

#[test]
fn rules_match_as_calico_renders_them() {
    let f = filter(
        r#"{"importV4":[
            {"cidr":"10.0.0.0/8","matchOperator":"In","prefixLength":{"min":16,"max":24},"action":"Reject"},
            {"cidr":"10.1.0.0/16","matchOperator":"Equal","action":"Accept"},
            {"cidr":"192.168.0.0/16","matchOperator":"NotIn","action":"Reject"},
            {"cidr":"192.168.1.0/24","matchOperator":"NotEqual","action":"Accept"},
            {"source":"RemotePeers","action":"Reject"}],
           "importV6":[{"cidr":"fd00::/8","matchOperator":"In","action":"Accept"},
                       {"interface":"eth0","action":"Reject"}]}"#,
    );
    let (v4, problems) = Rules::compile(&[("f", &f)], Direction::Import, false);
    assert!(problems.is_empty(), "{problems:?}");
    // (prefix, verdict): the first rule decides 10.1.0.0/16 and
    // 10.1.2.0/24; outside its lengths (/25, /8) NotIn 192.168/16 does;
    // 192.168.1.0/24 falls to the last rule.
    let cases = [
        ("10.1.0.0/16", Verdict::Reject),
        ("10.1.2.0/24", Verdict::Reject),
        ("10.1.2.0/25", Verdict::Reject),
        ("10.0.0.0/8", Verdict::Reject),
        ("172.16.0.0/12", Verdict::Reject),
        ("192.168.1.0/24", Verdict::Reject),
        ("192.168.2.0/24", Verdict::Accept),
    ];
    for (p, want) in cases {
        assert_eq!(v4.verdict(&net(p), true), Some(want), "{p}");
    }
    // Without the first rule, Equal decides 10.1.0.0/16.
    assert_eq!(
        Rules(v4.0[1..].to_vec()).verdict(&net("10.1.0.0/16"), true),
        Some(Verdict::Accept)
    );
    let (v6, problems) = Rules::compile(&[("f", &f)], Direction::Import, true);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("importV6[1]"), "{problems:?}");
    assert_eq!(v6.verdict(&net("fd00:1::/64"), true), Some(Verdict::Accept));
    // The interface rule never matches.
    assert_eq!(v6.verdict(&net("2001:db8::/32"), true), None);
}

#[test]
fn filters_apply_in_the_order_the_peer_names_them() {
    let reject =
        filter(r#"{"importV4":[{"cidr":"0.0.0.0/0","matchOperator":"Equal","action":"Reject"}]}"#);
    let accept =
        filter(r#"{"importV4":[{"cidr":"0.0.0.0/0","matchOperator":"Equal","action":"Accept"}]}"#);
    let default = net("0.0.0.0/0");
    let (a, _) = Rules::compile(&[("r", &reject), ("a", &accept)], Direction::Import, false);
    assert_eq!(a.verdict(&default, true), Some(Verdict::Reject));
    let (b, _) = Rules::compile(&[("a", &accept), ("r", &reject)], Direction::Import, false);
    assert_eq!(b.verdict(&default, true), Some(Verdict::Accept));
}

#[test]
fn local_lookup_agrees_with_a_scan() {
    let local = node();
    let scan = |p: &IpNet| {
        local.own().iter().any(|n| p.contains(n))
            || ["10.84.0.5/32", "10.84.1.70/32"].map(net).contains(p)
    };
    let mut seen = 0;
    for a in 0..=255u8 {
        for len in [0u8, 8, 16, 24, 26, 27, 32] {
            for base in ["10.84.0.0", "172.31.0.0", "127.0.0.0", "10.84.1.64"] {
                let mut o: [u8; 4] = base.parse::<std::net::Ipv4Addr>().unwrap().octets();
                o[3] = a;
                let p = IpNet::new(IpAddr::from(o), len).unwrap().trunc();
                assert_eq!(local.protects(&p), scan(&p), "{p}");
                seen += usize::from(scan(&p));
            }
        }
    }
    assert!(seen > 100, "{seen}");
    for p in [
        "fd00::/16",
        "fd00:31::1/128",
        "fd00:31::2/128",
        "fd00:84::40/122",
    ] {
        let p = net(p);
        assert_eq!(local.protects(&p), scan(&p), "{p}");
    }
}

#[test]
fn export_rules_and_the_source_of_a_route() {
    let f = filter(
        r#"{"exportV4":[{"cidr":"10.84.0.0/16","matchOperator":"In","source":"RemotePeers","action":"Reject"},
                        {"cidr":"10.96.0.0/12","matchOperator":"Equal","action":"Reject"}],
            "importV4":[{"action":"Reject"}]}"#,
    );
    let (out, problems) = Rules::compile(&[("f", &f)], Direction::Export, false);
    assert!(problems.is_empty(), "{problems:?}");
    // Another node's block passed on: rejected; this node's own: not
    // matched (not from a peer).
    assert_eq!(
        out.verdict(&net("10.84.1.0/26"), true),
        Some(Verdict::Reject)
    );
    assert_eq!(out.verdict(&net("10.84.0.0/26"), false), None);
    assert_eq!(
        out.verdict(&net("10.96.0.0/12"), false),
        Some(Verdict::Reject)
    );
    // The other direction's rules are apart.
    let (v6, _) = Rules::compile(&[("f", &f)], Direction::Export, true);
    assert_eq!(v6, Rules::default());
    let (inn, _) = Rules::compile(&[("f", &f)], Direction::Import, false);
    assert_eq!(
        inn.verdict(&net("10.84.1.0/26"), true),
        Some(Verdict::Reject)
    );
}
