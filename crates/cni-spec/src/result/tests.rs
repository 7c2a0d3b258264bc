use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use serde_json::json;

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test IP")
}

/// A Calico-style dual-stack result: host veth, sandbox interface, two IPs.
fn sample() -> CniResult {
    CniResult {
        interfaces: vec![
            Interface {
                name: "cali1234".into(),
                mac: "ee:ee:ee:ee:ee:ee".into(),
                sandbox: None,
                mtu: None,
            },
            Interface {
                name: "eth0".into(),
                mac: "aa:bb:cc:dd:ee:ff".into(),
                sandbox: Some("/var/run/netns/blue".into()),
                mtu: Some(1440),
            },
        ],
        ips: vec![
            IpConfig {
                address: ip("10.0.0.5"),
                prefix: 32,
                gateway: Some(ip("10.0.0.1")),
                interface: Some(1),
            },
            IpConfig {
                address: ip("fd00::5"),
                prefix: 128,
                gateway: None,
                interface: Some(1),
            },
        ],
        routes: vec![
            Route {
                dst: (ip("0.0.0.0"), 0),
                gw: Some(ip("169.254.1.1")),
            },
            Route {
                dst: (ip("::"), 0),
                gw: None,
            },
        ],
        dns: Dns {
            nameservers: vec!["10.96.0.10".into()],
            domain: String::new(),
            search: vec!["default.svc.cluster.local".into()],
            options: vec![],
        },
    }
}

const TAIL_0X: &str = r#""ips":[{"version":"4","interface":1,"address":"10.0.0.5/32","gateway":"10.0.0.1"},{"version":"6","interface":1,"address":"fd00::5/128"}],"routes":[{"dst":"0.0.0.0/0","gw":"169.254.1.1"},{"dst":"::/0"}],"dns":{"nameservers":["10.96.0.10"],"search":["default.svc.cluster.local"]}}"#;
const TAIL_1X: &str = r#""ips":[{"interface":1,"address":"10.0.0.5/32","gateway":"10.0.0.1"},{"interface":1,"address":"fd00::5/128"}],"routes":[{"dst":"0.0.0.0/0","gw":"169.254.1.1"},{"dst":"::/0"}],"dns":{"nameservers":["10.96.0.10"],"search":["default.svc.cluster.local"]}}"#;
const IFACES_0X: &str = r#""interfaces":[{"name":"cali1234","mac":"ee:ee:ee:ee:ee:ee"},{"name":"eth0","mac":"aa:bb:cc:dd:ee:ff","sandbox":"/var/run/netns/blue"}],"#;
const IFACES_1X: &str = r#""interfaces":[{"name":"cali1234","mac":"ee:ee:ee:ee:ee:ee"},{"name":"eth0","mac":"aa:bb:cc:dd:ee:ff","mtu":1440,"sandbox":"/var/run/netns/blue"}],"#;

#[test]
fn exact_json_0_3_1() {
    let got = sample().to_json(CniVersion::V0_3_1).to_string();
    assert_eq!(
        got,
        format!(r#"{{"cniVersion":"0.3.1",{IFACES_0X}{TAIL_0X}"#)
    );
}

#[test]
fn exact_json_0_4_0() {
    let got = sample().to_json(CniVersion::V0_4_0).to_string();
    assert_eq!(
        got,
        format!(r#"{{"cniVersion":"0.4.0",{IFACES_0X}{TAIL_0X}"#)
    );
}

#[test]
fn exact_json_1_0_0() {
    let got = sample().to_json(CniVersion::V1_0_0).to_string();
    assert_eq!(
        got,
        format!(r#"{{"cniVersion":"1.0.0",{IFACES_1X}{TAIL_1X}"#)
    );
}

#[test]
fn exact_json_1_1_0() {
    let got = sample().to_json(CniVersion::V1_1_0).to_string();
    assert_eq!(
        got,
        format!(r#"{{"cniVersion":"1.1.0",{IFACES_1X}{TAIL_1X}"#)
    );
}

#[test]
fn ipam_result_omits_empty_parts() {
    let r = CniResult {
        ips: vec![IpConfig {
            address: ip("192.168.1.7"),
            prefix: 32,
            gateway: None,
            interface: None,
        }],
        ..CniResult::default()
    };
    assert_eq!(
        r.to_json(CniVersion::V1_0_0).to_string(),
        r#"{"cniVersion":"1.0.0","ips":[{"address":"192.168.1.7/32"}]}"#
    );
    assert_eq!(
        r.to_json(CniVersion::V0_3_0).to_string(),
        r#"{"cniVersion":"0.3.0","ips":[{"version":"4","address":"192.168.1.7/32"}]}"#
    );
    assert_eq!(
        CniResult::default().to_json(CniVersion::V1_1_0).to_string(),
        r#"{"cniVersion":"1.1.0"}"#
    );
}

#[test]
fn reads_every_version_back() {
    for v in CniVersion::ALL {
        let back = CniResult::from_json(&sample().to_json(v)).expect("own output");
        assert_eq!(back, sample().for_version(v), "{v}");
    }
    assert_eq!(sample().for_version(CniVersion::V1_0_0), sample());
    assert_eq!(
        sample().for_version(CniVersion::V0_4_0).interfaces[1].mtu,
        None
    );
}

#[test]
fn reads_spec_0_4_0_prev_result_example() {
    // The spec's own prevResult example: no cniVersion, no routes.
    let v = json!({
        "ips": [{"version": "4", "address": "10.0.0.5/32", "interface": 2}],
        "interfaces": [
            {"name": "cni0", "mac": "00:11:22:33:44:55"},
            {"name": "veth3243", "mac": "55:44:33:22:11:11"},
            {"name": "eth0", "mac": "99:88:77:66:55:44", "sandbox": "/var/run/netns/blue"}
        ],
        "dns": {"nameservers": ["10.1.0.1"]}
    });
    let r = CniResult::from_json(&v).expect("spec example");
    assert_eq!(r.interfaces.len(), 3);
    assert_eq!(
        r.interfaces[2].sandbox.as_deref(),
        Some("/var/run/netns/blue")
    );
    assert_eq!(r.interfaces[0].sandbox, None);
    assert_eq!(
        r.ips,
        [IpConfig {
            address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)),
            prefix: 32,
            gateway: None,
            interface: Some(2),
        }]
    );
    assert!(r.routes.is_empty());
    assert_eq!(r.dns.nameservers, ["10.1.0.1"]);
}

#[test]
fn reads_libcni_style_output() {
    // libcni's Go types always write "dns": {} and may carry 1.1.0 route
    // attributes and interface fields this crate does not model.
    let v = json!({
        "cniVersion": "1.1.0",
        "interfaces": [{"name": "eth0", "sandbox": "/proc/1/ns/net", "socketPath": "/x", "mtu": 9000}],
        "ips": [{"address": "fd00::1/64", "gateway": "fd00::ffff", "interface": 0}],
        "routes": [{"dst": "::/0", "gw": "fd00::ffff", "mtu": 1400, "table": 10, "scope": 0}],
        "dns": {}
    });
    let r = CniResult::from_json(&v).expect("libcni output");
    assert_eq!(r.interfaces[0].mtu, Some(9000));
    assert_eq!(
        r.ips[0].gateway,
        Some(IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0xffff)))
    );
    assert_eq!(r.routes[0].dst, (ip("::"), 0));
    assert!(r.dns.is_empty());
    // nulls read as absent
    let v = json!({"interfaces": null, "ips": [{"address": "10.1.2.3/24", "gateway": null, "interface": null}], "routes": null, "dns": null});
    let r = CniResult::from_json(&v).expect("nulls");
    assert_eq!(r.ips[0].address, ip("10.1.2.3"));
    assert_eq!(r.ips[0].prefix, 24);
}

#[test]
fn rejects_bad_results() {
    let cases = [
        (json!([]), 6),
        (
            json!({"cniVersion": "0.2.0", "ip4": {"ip": "10.0.0.1/24"}}),
            1,
        ),
        (json!({"cniVersion": 1}), 6),
        (json!({"ips": {}}), 6),
        (json!({"ips": [{"address": "10.0.0.1"}]}), 6),
        (json!({"ips": [{"address": "10.0.0.1/33"}]}), 6),
        (json!({"ips": [{"gateway": "10.0.0.1"}]}), 6),
        (
            json!({"ips": [{"address": "10.0.0.1/8", "interface": -1}]}),
            6,
        ),
        (
            json!({"ips": [{"address": "10.0.0.1/8", "interface": "0"}]}),
            6,
        ),
        (
            json!({"ips": [{"address": "10.0.0.1/8", "gateway": "nope"}]}),
            6,
        ),
        (
            json!({"ips": [{"version": "6", "address": "10.0.0.1/8"}]}),
            6,
        ),
        (
            json!({"ips": [{"version": "4", "address": "10.0.0.1/8", "gateway": "fd00::1"}]}),
            6,
        ),
        (
            json!({"ips": [{"version": "5", "address": "10.0.0.1/8"}]}),
            6,
        ),
        (json!({"routes": [{"gw": "10.0.0.1"}]}), 6),
        (json!({"routes": [{"dst": "10.0.0.0/8", "gw": 7}]}), 6),
        (json!({"interfaces": [{"name": "eth0", "mtu": -5}]}), 6),
        (json!({"interfaces": ["eth0"]}), 6),
        (json!({"dns": {"nameservers": "10.0.0.1"}}), 6),
        (json!({"dns": {"search": [1]}}), 6),
    ];
    for (v, code) in cases {
        let e = CniResult::from_json(&v).expect_err(&v.to_string());
        assert_eq!(e.code, code, "{v}: {e:?}");
    }
}

#[test]
fn cidr_helpers() {
    assert_eq!(ip_net(ip("10.0.0.5"), 32), "10.0.0.5/32");
    assert_eq!(ip_net(ip("FD00::0:1"), 64), "fd00::1/64");
    assert_eq!(parse_ip_net("10.0.0.5/32"), Ok((ip("10.0.0.5"), 32)));
    assert_eq!(parse_ip_net("10.1.2.3/8"), Ok((ip("10.1.2.3"), 8)));
    assert_eq!(parse_ip_net("::/0"), Ok((ip("::"), 0)));
    assert_eq!(parse_ip_net("fd00::1/128"), Ok((ip("fd00::1"), 128)));
    for bad in [
        "",
        "10.0.0.5",
        "10.0.0.5/",
        "/32",
        "10.0.0.5/33",
        "fd00::/129",
        "10.0.0.5/+3",
        "10.0.0.5/-1",
        "10.0.0.5/0032",
        "10.0.0.5/3 ",
        " 10.0.0.5/3",
        "10.0.0/24",
        "a/1",
        "10.0.0.5/32/1",
    ] {
        assert_eq!(parse_ip_net(bad).map_err(|e| e.code), Err(6), "{bad:?}");
    }
}

fn arb_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        any::<[u8; 16]>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
    ]
}

fn arb_net() -> impl Strategy<Value = (IpAddr, u8)> {
    arb_ip().prop_flat_map(|a| {
        let max: u8 = if a.is_ipv4() { 32 } else { 128 };
        (Just(a), 0..=max)
    })
}

/// An IP with a gateway of the same family, as the spec requires.
fn arb_ip_config() -> impl Strategy<Value = IpConfig> {
    (
        arb_net(),
        any::<bool>(),
        any::<[u8; 16]>(),
        proptest::option::of(0usize..8),
    )
        .prop_map(|((address, prefix), has_gw, gw, interface)| {
            let gateway = has_gw.then(|| match address {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::new(gw[0], gw[1], gw[2], gw[3])),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(gw)),
            });
            IpConfig {
                address,
                prefix,
                gateway,
                interface,
            }
        })
}

fn arb_text() -> impl Strategy<Value = String> {
    "[ -~\u{e9}\u{4e2d}]{0,12}"
}

fn arb_result() -> impl Strategy<Value = CniResult> {
    let iface = (
        arb_text(),
        arb_text(),
        proptest::option::of(arb_text()),
        proptest::option::of(any::<u32>()),
    )
        .prop_map(|(name, mac, sandbox, mtu)| Interface {
            name,
            mac,
            sandbox,
            mtu,
        });
    let route = (arb_net(), proptest::option::of(arb_ip())).prop_map(|(dst, gw)| Route { dst, gw });
    let texts = || proptest::collection::vec(arb_text(), 0..3);
    let dns = (texts(), arb_text(), texts(), texts()).prop_map(
        |(nameservers, domain, search, options)| Dns {
            nameservers,
            domain,
            search,
            options,
        },
    );
    (
        proptest::collection::vec(iface, 0..4),
        proptest::collection::vec(arb_ip_config(), 0..4),
        proptest::collection::vec(route, 0..4),
        dns,
    )
        .prop_map(|(interfaces, ips, routes, dns)| CniResult {
            interfaces,
            ips,
            routes,
            dns,
        })
}

proptest! {
    #[test]
    fn round_trip_every_version(r in arb_result()) {
        for v in CniVersion::ALL {
            let wire = r.to_json(v);
            prop_assert_eq!(wire.get("cniVersion").and_then(Value::as_str), Some(v.as_str()));
            // through text too, as a real prevResult travels
            let text = wire.to_string();
            let reparsed: Value = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let back = CniResult::from_json(&reparsed).map_err(|e| TestCaseError::fail(format!("{v}: {e:?}")))?;
            prop_assert_eq!(&back, &r.for_version(v));
            if !v.has_ip_version_field() {
                prop_assert_eq!(&back, &r);
            }
        }
    }

    #[test]
    fn ip_net_round_trip((addr, prefix) in arb_net()) {
        prop_assert_eq!(parse_ip_net(&ip_net(addr, prefix)), Ok((addr, prefix)));
    }

    #[test]
    fn from_json_never_panics(v in arb_json()) {
        let _ = CniResult::from_json(&v);
        let wrapped = json!({"cniVersion": "1.0.0", "ips": [v.clone()], "interfaces": [v.clone()], "routes": [v.clone()], "dns": v});
        let _ = CniResult::from_json(&wrapped);
    }
}

/// Arbitrary JSON, biased towards the keys a result has.
fn arb_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("address".to_string()),
        Just("gateway".to_string()),
        Just("interface".to_string()),
        Just("version".to_string()),
        Just("mtu".to_string()),
        Just("name".to_string()),
        Just("dst".to_string()),
        Just("ips".to_string()),
        "[a-z]{1,6}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        arb_net().prop_map(|(a, p)| Value::from(ip_net(a, p))),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}
