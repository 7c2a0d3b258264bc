use std::net::IpAddr;

use super::sim::{SimPacket, run};
use super::*;

fn net(s: &str) -> IpNet {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn disjoint_nets_drops_nested_and_duplicates() {
    let got = disjoint_nets(
        [
            "10.0.0.5/32",
            "10.0.0.0/24",
            "10.1.0.0/16",
            "10.0.0.0/24",
            "10.1.2.0/24",
            "fd00::1/128",
            "10.0.1.0/24",
        ]
        .map(net),
    );
    let got: Vec<String> = got.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        vec!["10.0.0.0/24", "10.0.1.0/24", "10.1.0.0/16", "fd00::1/128"]
    );
    assert!(disjoint_nets([]).is_empty());
    assert_eq!(
        disjoint_nets([net("0.0.0.0/0"), net("1.2.3.4/32")]),
        vec![net("0.0.0.0/0")]
    );
}

#[test]
fn short_hash_is_stable_fnv1a() {
    // FNV-1a 64 test vectors: the names must not change between releases.
    assert_eq!(short_hash(""), "cbf29ce484222325");
    assert_eq!(short_hash("a"), "af63dc4c8601ec8c");
    assert_eq!(short_hash("foobar"), "85944171f73967e8");
}

#[test]
fn rendering_of_matches_statements_and_elements() {
    let m = |m: Match| m.to_string();
    assert_eq!(
        m(Match::Mark {
            bits: 0x10000,
            set: true
        }),
        "meta mark & 0x00010000 == 0x00010000"
    );
    assert_eq!(
        m(Match::Mark {
            bits: 0x20000,
            set: false
        }),
        "meta mark & 0x00020000 == 0x00000000"
    );
    assert_eq!(
        m(Match::Ports {
            side: Side::Src,
            neg: true,
            ranges: vec![(1, 1), (5, 9)]
        }),
        "th sport != { 1, 5-9 }"
    );
    assert_eq!(
        m(Match::Addr {
            family: Family::V6,
            side: Side::Dst,
            neg: true,
            set: "s6-x".into()
        }),
        "ip6 daddr != @s6-x"
    );
    assert_eq!(
        m(Match::NamedPort {
            family: Family::V4,
            side: Side::Dst,
            neg: false,
            set: "np4-x".into()
        }),
        "ip daddr . meta l4proto . th dport @np4-x"
    );
    assert_eq!(
        m(Match::IcmpCode {
            family: Family::V6,
            value: 3,
            neg: true
        }),
        "icmpv6 code != 3"
    );
    assert_eq!(
        Statement::ClearMark(0x30000).to_string(),
        "meta mark set meta mark & 0xfffcffff"
    );
    assert_eq!(
        Statement::Log("x\"y: ".into()).to_string(),
        "log prefix \"x'y: \""
    );
    assert_eq!(Element::Net(net("10.0.0.1/32")).to_string(), "10.0.0.1");
    assert_eq!(
        Element::NamedPort(net("fd00::/64"), 6, 80).to_string(),
        "fd00::/64 . 6 . 80"
    );
    let long = "é".repeat(100);
    let q = render::quote(&long);
    assert!(q.len() <= 122 && q.ends_with("...\""), "{q}");
}

fn packet(ct: Option<CtState>) -> SimPacket {
    SimPacket {
        src: IpAddr::from([10, 0, 0, 1]),
        dst: IpAddr::from([10, 0, 0, 2]),
        protocol: 6,
        src_port: 1,
        dst_port: 80,
        icmp_type: 0,
        icmp_code: 0,
        iif: "cali1".into(),
        oif: "cali2".into(),
        ct,
    }
}

/// forward: established accept, then jump to a chain that drops.
fn tiny() -> Ruleset {
    let mut r = Ruleset::default();
    r.chains.insert(
        "forward".into(),
        Chain {
            hook: Some(Hook::Forward),
            comment: None,
            rules: vec![
                Rule::new(
                    vec![Match::Ct(CtState::EstablishedRelated)],
                    Verdict::Accept,
                ),
                Rule::new(
                    vec![Match::Iface {
                        dir: Iface::In,
                        name: "cali*".into(),
                    }],
                    Verdict::Vmap {
                        dir: Iface::In,
                        map: "m".into(),
                    },
                ),
                Rule {
                    statements: vec![Statement::Log("seen: ".into())],
                    ..Rule::default()
                },
            ],
        },
    );
    r.chains.insert(
        "deny".into(),
        Chain {
            rules: vec![Rule::new(vec![], Verdict::Drop)],
            ..Chain::default()
        },
    );
    r.maps.insert(
        "m".into(),
        Map {
            elements: [("cali1".to_string(), Verdict::Jump("deny".into()))].into(),
        },
    );
    r
}

#[test]
fn interpreter_follows_nft_semantics() {
    let r = tiny();
    assert!(r.check_references().is_ok());
    let new = run(&r, Hook::Forward, &packet(None)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((new.accepted, new.logs), (false, 0), "vmap hit, jump, drop");
    let est = run(
        &r,
        Hook::Forward,
        &packet(Some(CtState::EstablishedRelated)),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((est.accepted, est.logs), (true, 0));
    let mut other = packet(None);
    other.iif = "cali9".into();
    let miss = run(&r, Hook::Forward, &other).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (miss.accepted, miss.logs),
        (true, 1),
        "vmap miss: next rule, then policy accept"
    );
    assert_eq!(
        run(&r, Hook::Input, &other).map(|o| o.accepted),
        Ok(true),
        "no base chain: untouched"
    );
}

#[test]
fn dangling_references_are_found() {
    let mut r = tiny();
    r.chains.remove("deny");
    assert_eq!(
        r.check_references(),
        Err("map m refers to deny, which does not exist".into())
    );
    assert!(run(&r, Hook::Forward, &packet(None)).is_err());
}

#[test]
fn the_table_lists_objects_after_what_they_refer_to() {
    let text = tiny().full();
    let pos = |s: &str| {
        text.find(s)
            .unwrap_or_else(|| panic!("{s} missing in {text}"))
    };
    assert!(pos("chain deny") < pos("map m"));
    assert!(pos("map m") < pos("chain forward"));
    assert!(text.starts_with(
        "table inet calico-policy {}\ndelete table inet calico-policy\ntable inet calico-policy {\n"
    ));
}
