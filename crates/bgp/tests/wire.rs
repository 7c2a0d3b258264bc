//! The wire codec: byte-exact vectors written by hand from the RFC layouts,
//! every error case, round trips, `pack`, and decoding that never panics.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use calico_bgp::msg::{
    AS_TRANS, Afi, Attributes, Capability, GracefulRestart, MAX_MESSAGE_LEN, Message, Notification,
    Open, Origin, RouteRefresh, Segment, Update, err,
};
use calico_bgp::wire::{Context, DecodeError, EncodeError, decode, encode, pack};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;

const ASN4: Context = Context { asn4: true };
const ASN2: Context = Context { asn4: false };
const M: &str = "ffffffffffffffffffffffffffffffff";

/// Bytes from hex with any spaces.
fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd hex: {s}");
    digits
        .chunks(2)
        .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap())
        .collect()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// Decodes a whole message, checking it used every byte.
fn dec(bytes: &[u8], ctx: &Context) -> Result<Message, DecodeError> {
    decode(bytes, ctx).map(|r| {
        let (m, n) = r.expect("a whole message");
        assert_eq!(n, bytes.len());
        m
    })
}

fn dec_update(bytes: &[u8], ctx: &Context) -> Update {
    match dec(bytes, ctx) {
        Ok(Message::Update(u)) => u,
        other => panic!("not an update: {other:?}"),
    }
}

/// The NOTIFICATION (code, subcode, data) of a failed decode.
fn dec_err(bytes: &[u8], ctx: &Context) -> (u8, u8, Vec<u8>) {
    match decode(bytes, ctx) {
        Err(e) => (
            e.notification.code,
            e.notification.subcode,
            e.notification.data,
        ),
        Ok(r) => panic!("decoded: {r:?}"),
    }
}

/// An UPDATE with these fields (hex), lengths filled in.
fn update_bytes(withdrawn: &str, attrs: &str, nlri: &str) -> Vec<u8> {
    let (w, a, n) = (hex(withdrawn), hex(attrs), hex(nlri));
    let len = 19 + 4 + w.len() + a.len() + n.len();
    let mut out = vec![0xff; 16];
    out.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
    out.push(2);
    out.extend_from_slice(&u16::try_from(w.len()).unwrap().to_be_bytes());
    out.extend_from_slice(&w);
    out.extend_from_slice(&u16::try_from(a.len()).unwrap().to_be_bytes());
    out.extend_from_slice(&a);
    out.extend_from_slice(&n);
    out
}

/// An OPEN with this body after the header (hex), length filled in.
fn open_bytes(body: &str) -> Vec<u8> {
    let b = hex(body);
    let mut out = vec![0xff; 16];
    out.extend_from_slice(&u16::try_from(19 + b.len()).unwrap().to_be_bytes());
    out.push(1);
    out.extend_from_slice(&b);
    out
}

fn assert_bytes(msg: &Message, ctx: &Context, expected: &[u8]) {
    assert_eq!(encode(msg, ctx).unwrap(), expected, "encoding of {msg:?}");
    assert_eq!(dec(expected, ctx).unwrap(), *msg);
}

// Attributes (hex) used below.
const ORIGIN_IGP: &str = "40 01 01 00";
const AS_PATH4: &str = "40 02 06 02 01 0000fde9";
const AS_PATH2: &str = "40 02 04 02 01 fde9";
const NEXT_HOP: &str = "40 03 04 0a000001";
const NLRI_2X26: &str = "1a c0a80100 1a c0a80140";
const V6_NH: &str = "20010db8000000000000000000000001";

fn two_26() -> Vec<IpNet> {
    vec![net("192.168.1.0/26"), net("192.168.1.64/26")]
}

fn basic_attributes() -> Attributes {
    Attributes {
        origin: Origin::Igp,
        as_path: vec![Segment::Sequence(vec![65001])],
        next_hop: Some(v4("10.0.0.1")),
        ..Attributes::default()
    }
}

// ---------------------------------------------------------------------------
// Byte-exact vectors
// ---------------------------------------------------------------------------

#[test]
fn keepalive_vector() {
    assert_bytes(&Message::Keepalive, &ASN4, &hex(&format!("{M} 0013 04")));
}

#[test]
fn open_vector_as_bird_sends_it() {
    // Version 4, AS 65001, hold time 240, id 10.0.0.1; one optional
    // parameter (type 2, 22 octets) holding: multiprotocol IPv4 unicast,
    // route refresh, graceful restart (120 s, IPv4 unicast with forwarding
    // preserved), 4-octet AS 65001.
    let bytes = hex(&format!(
        "{M} 0035 01 04 fde9 00f0 0a000001 18 02 16
         01 04 0001 00 01
         02 00
         40 06 0078 0001 01 80
         41 04 0000fde9"
    ));
    let open = Open {
        asn: 65001,
        hold_time: 240,
        router_id: v4("10.0.0.1"),
        capabilities: vec![
            Capability::Multiprotocol {
                afi: Afi::Ipv4,
                safi: 1,
            },
            Capability::RouteRefresh,
            Capability::GracefulRestart(GracefulRestart {
                restarting: false,
                restart_time: 120,
                families: vec![(Afi::Ipv4, 1, true)],
            }),
            Capability::FourOctetAs(65001),
        ],
    };
    assert_bytes(&Message::Open(open), &ASN2, &bytes);
}

#[test]
fn open_vector_four_octet_asn() {
    // AS 4200000001 = 0xfa56ea01: AS_TRANS (0x5ba0) in the 2-octet field.
    let bytes = hex(&format!(
        "{M} 0025 01 04 5ba0 005a 0a000002 08 02 06 41 04 fa56ea01"
    ));
    let open = Open {
        asn: 4_200_000_001,
        hold_time: 90,
        router_id: v4("10.0.0.2"),
        capabilities: vec![Capability::FourOctetAs(4_200_000_001)],
    };
    assert_bytes(&Message::Open(open), &ASN4, &bytes);
}

#[test]
fn open_vector_without_parameters() {
    let bytes = hex(&format!("{M} 001d 01 04 fde9 0000 0a000003 00"));
    let open = Open {
        asn: 65001,
        hold_time: 0,
        router_id: v4("10.0.0.3"),
        capabilities: vec![],
    };
    assert_bytes(&Message::Open(open), &ASN4, &bytes);
}

#[test]
fn update_vector_ipv4() {
    let attributes = Attributes {
        local_pref: Some(100),
        communities: vec![(65001 << 16) | 100],
        ..basic_attributes()
    };
    let update = Message::Update(Update {
        announced: two_26(),
        attributes,
        ..Update::default()
    });
    // 4-octet session: ORIGIN IGP, AS_PATH (sequence 65001), NEXT_HOP
    // 10.0.0.1, LOCAL_PREF 100, COMMUNITIES 65001:100; two /26.
    let bytes4 = hex(&format!(
        "{M} 0043 02 0000 0022
         40 01 01 00
         40 02 06 02 01 0000fde9
         40 03 04 0a000001
         40 05 04 00000064
         c0 08 04 fde9 0064
         1a c0a80100 1a c0a80140"
    ));
    assert_bytes(&update, &ASN4, &bytes4);
    // 2-octet session: the AS_PATH has 2-octet AS numbers.
    let bytes2 = hex(&format!(
        "{M} 0041 02 0000 0020
         40 01 01 00
         40 02 04 02 01 fde9
         40 03 04 0a000001
         40 05 04 00000064
         c0 08 04 fde9 0064
         1a c0a80100 1a c0a80140"
    ));
    assert_bytes(&update, &ASN2, &bytes2);
}

#[test]
fn update_vector_as4_path_on_a_two_octet_session() {
    let update = Message::Update(Update {
        announced: vec![net("10.0.1.0/24")],
        attributes: Attributes {
            as_path: vec![Segment::Sequence(vec![4_200_000_001, 65001])],
            ..basic_attributes()
        },
        ..Update::default()
    });
    let bytes = hex(&format!(
        "{M} 003c 02 0000 0021
         40 01 01 00
         40 02 06 02 02 5ba0 fde9
         40 03 04 0a000001
         c0 11 0a 02 02 fa56ea01 0000fde9
         18 0a0001"
    ));
    assert_bytes(&update, &ASN2, &bytes);
}

#[test]
fn update_vector_ipv6_mp_reach() {
    let update = Message::Update(Update {
        announced: vec![net("2001:db8:1::/48")],
        attributes: Attributes {
            next_hop: None,
            ..basic_attributes()
        },
        ipv6_next_hop: Some("2001:db8::1".parse().unwrap()),
        ..Update::default()
    });
    let bytes = hex(&format!(
        "{M} 0043 02 0000 002c
         40 01 01 00
         40 02 06 02 01 0000fde9
         80 0e 1c 0002 01 10 {V6_NH} 00 30 20010db80001"
    ));
    assert_bytes(&update, &ASN4, &bytes);
}

#[test]
fn update_vector_withdrawal() {
    let update = Message::Update(Update {
        withdrawn: vec![net("192.168.1.0/26"), net("2001:db8:1::/48")],
        ..Update::default()
    });
    let bytes = hex(&format!(
        "{M} 0029 02 0005 1a c0a80100 000d 80 0f 0a 0002 01 30 20010db80001"
    ));
    assert_bytes(&update, &ASN4, &bytes);
}

#[test]
fn update_vector_pure_withdrawal_ignores_attributes() {
    // Attributes are not written when nothing is announced.
    let update = Update {
        withdrawn: vec![net("192.168.1.0/26")],
        attributes: basic_attributes(),
        ..Update::default()
    };
    let bytes = hex(&format!("{M} 001c 02 0005 1a c0a80100 0000"));
    assert_eq!(encode(&Message::Update(update), &ASN4).unwrap(), bytes);
}

#[test]
fn end_of_rib_vectors() {
    assert_bytes(
        &Message::Update(Update::end_of_rib(Afi::Ipv4)),
        &ASN4,
        &hex(&format!("{M} 0017 02 0000 0000")),
    );
    assert_bytes(
        &Message::Update(Update::end_of_rib(Afi::Ipv6)),
        &ASN4,
        &hex(&format!("{M} 001d 02 0000 0006 80 0f 03 0002 01")),
    );
    // The IPv4 family in MP_UNREACH_NLRI form.
    assert_eq!(
        dec_update(&update_bytes("", "80 0f 03 0001 01", ""), &ASN4),
        Update::end_of_rib(Afi::Ipv4)
    );
    // Nor is an update whose attributes are only a truncated header, or
    // an empty MP_UNREACH_NLRI followed by one.
    for attrs in ["40", "80 0f 03 0002 01 40"] {
        let u = dec_update(&update_bytes("", attrs, ""), &ASN4);
        assert_eq!(u.end_of_rib, None, "{attrs}");
        assert!(u.treated_as_withdraw.is_some());
    }
    // An empty MP_UNREACH_NLRI among other attributes is no marker.
    let u = dec_update(&update_bytes("", "80 0f 03 0002 01 40 01 01 00", ""), &ASN4);
    assert_eq!(u, Update::default());
}

#[test]
fn notification_vectors() {
    assert_bytes(
        &Message::Notification(Notification::new(
            err::CEASE,
            err::ADMINISTRATIVE_SHUTDOWN,
            vec![],
        )),
        &ASN4,
        &hex(&format!("{M} 0015 03 06 02")),
    );
    assert_bytes(
        &Message::Notification(Notification::new(
            err::MESSAGE_HEADER,
            err::BAD_MESSAGE_LENGTH,
            vec![0x0f, 0xff],
        )),
        &ASN4,
        &hex(&format!("{M} 0017 03 01 02 0fff")),
    );
}

#[test]
fn route_refresh_vectors() {
    assert_bytes(
        &Message::RouteRefresh(RouteRefresh {
            afi: Afi::Ipv4,
            safi: 1,
        }),
        &ASN4,
        &hex(&format!("{M} 0017 05 0001 00 01")),
    );
    assert_bytes(
        &Message::RouteRefresh(RouteRefresh {
            afi: Afi::Ipv6,
            safi: 1,
        }),
        &ASN4,
        &hex(&format!("{M} 0017 05 0002 00 01")),
    );
}

#[test]
fn route_refresh_of_unknown_family_decodes_as_keepalive() {
    assert_eq!(
        dec(&hex(&format!("{M} 0017 05 0019 00 46")), &ASN4).unwrap(),
        Message::Keepalive
    );
}

#[test]
fn partial_and_concatenated_messages() {
    let mut stream = hex(&format!("{M} 0013 04"));
    stream.extend(hex(&format!("{M} 0017 05 0001 00 01")));
    for k in 0..19 {
        assert_eq!(decode(&stream[..k], &ASN4).unwrap(), None, "prefix {k}");
    }
    let (m, n) = decode(&stream, &ASN4).unwrap().unwrap();
    assert_eq!((m, n), (Message::Keepalive, 19));
    for k in 19..stream.len() - 1 {
        assert_eq!(decode(&stream[19..=k], &ASN4).unwrap(), None);
    }
    let (m, n) = decode(&stream[19..], &ASN4).unwrap().unwrap();
    assert_eq!(n, 23);
    assert!(matches!(m, Message::RouteRefresh(_)));
}

// ---------------------------------------------------------------------------
// Header errors
// ---------------------------------------------------------------------------

#[test]
fn header_errors() {
    // Marker: detected as soon as a wrong octet arrives.
    assert_eq!(dec_err(&hex("ffff fe"), &ASN4), (1, 1, vec![]));
    let mut bad = hex(&format!("{M} 0013 04"));
    bad[15] = 0;
    assert_eq!(dec_err(&bad, &ASN4), (1, 1, vec![]));
    // Length out of 19..=4096, with the length as data.
    assert_eq!(
        dec_err(&hex(&format!("{M} 0012 04")), &ASN4),
        (1, 2, vec![0x00, 0x12])
    );
    assert_eq!(
        dec_err(&hex(&format!("{M} 1001 02")), &ASN4),
        (1, 2, vec![0x10, 0x01])
    );
    // Wrong for the type (detected before the body arrives).
    assert_eq!(
        dec_err(&hex(&format!("{M} 0014 04")), &ASN4),
        (1, 2, vec![0x00, 0x14])
    );
    assert_eq!(
        dec_err(&hex(&format!("{M} 001c 01")), &ASN4),
        (1, 2, vec![0x00, 0x1c])
    );
    assert_eq!(
        dec_err(&hex(&format!("{M} 0016 02")), &ASN4),
        (1, 2, vec![0x00, 0x16])
    );
    assert_eq!(
        dec_err(&hex(&format!("{M} 0014 03")), &ASN4),
        (1, 2, vec![0x00, 0x14])
    );
    // Type.
    assert_eq!(
        dec_err(&hex(&format!("{M} 0013 06")), &ASN4),
        (1, 3, vec![6])
    );
    assert_eq!(
        dec_err(&hex(&format!("{M} 0013 00")), &ASN4),
        (1, 3, vec![0])
    );
    // ROUTE-REFRESH of the wrong length: RFC 7313 §5, the message as data.
    let rr = hex(&format!("{M} 0018 05 0001 00 01 00"));
    assert_eq!(dec_err(&rr, &ASN4), (7, 1, rr.clone()));
    assert_eq!(decode(&rr[..20], &ASN4).unwrap(), None);
}

// ---------------------------------------------------------------------------
// OPEN errors and capabilities
// ---------------------------------------------------------------------------

#[test]
fn open_errors() {
    // Version 3.
    assert_eq!(
        dec_err(&open_bytes("03 fde9 00f0 0a000001 00"), &ASN4),
        (2, 1, vec![0, 4])
    );
    // Hold times 1 and 2; 0 and 3 are fine.
    for hold in ["0001", "0002"] {
        let b = open_bytes(&format!("04 fde9 {hold} 0a000001 00"));
        assert_eq!(dec_err(&b, &ASN4), (2, 6, vec![]));
    }
    for hold in ["0000", "0003"] {
        assert!(dec(&open_bytes(&format!("04 fde9 {hold} 0a000001 00")), &ASN4).is_ok());
    }
    // BGP identifier 0.
    assert_eq!(
        dec_err(&open_bytes("04 fde9 00f0 00000000 00"), &ASN4),
        (2, 3, vec![])
    );
    // Optional parameter type 1 (authentication, deprecated).
    assert_eq!(
        dec_err(&open_bytes("04 fde9 00f0 0a000001 04 01 02 abcd"), &ASN4),
        (2, 4, vec![])
    );
    // Parameters length not matching the message: unspecific.
    assert_eq!(
        dec_err(&open_bytes("04 fde9 00f0 0a000001 08 02 02 02 00"), &ASN4),
        (2, 0, vec![])
    );
    assert_eq!(
        dec_err(&open_bytes("04 fde9 00f0 0a000001 02 02 02 02 00"), &ASN4),
        (2, 0, vec![])
    );
    // A parameter overrunning the parameters.
    assert_eq!(
        dec_err(&open_bytes("04 fde9 00f0 0a000001 04 02 05 02 00"), &ASN4),
        (2, 0, vec![])
    );
    // A capability overrunning its parameter.
    assert_eq!(
        dec_err(&open_bytes("04 fde9 00f0 0a000001 04 02 02 41 04"), &ASN4),
        (2, 0, vec![])
    );
}

#[test]
fn open_capabilities_lenient_decoding() {
    // Capabilities spread over several parameters (also allowed), an
    // unknown AFI in multiprotocol, a graceful restart tuple of an unknown
    // family (skipped) with the R bit, a 4-octet AS capability of the wrong
    // length, an unknown capability.
    let b = open_bytes(
        "04 fde9 00f0 0a000001 2c
         02 06 01 04 0019 00 46
         02 10 40 0e 8fff 0019 46 80 0002 01 00 0001 01 80
         02 04 41 02 fde9
         02 02 02 00
         02 06 46 00 49 02 ab cd",
    );
    let Message::Open(open) = dec(&b, &ASN4).unwrap() else {
        panic!()
    };
    assert_eq!(
        open.capabilities,
        vec![
            Capability::Unknown {
                code: 1,
                value: vec![0, 0x19, 0, 0x46]
            },
            Capability::GracefulRestart(GracefulRestart {
                restarting: true,
                restart_time: 4095,
                families: vec![(Afi::Ipv6, 1, false), (Afi::Ipv4, 1, true)],
            }),
            Capability::Unknown {
                code: 65,
                value: vec![0xfd, 0xe9]
            },
            Capability::RouteRefresh,
            Capability::Unknown {
                code: 70,
                value: vec![]
            },
            Capability::Unknown {
                code: 73,
                value: vec![0xab, 0xcd]
            },
        ]
    );
    // No 4-octet capability: the AS is the 2-octet field.
    assert_eq!(open.asn, 65001);
}

// ---------------------------------------------------------------------------
// UPDATE: session resets
// ---------------------------------------------------------------------------

fn good_attrs() -> String {
    format!("{ORIGIN_IGP} {AS_PATH4} {NEXT_HOP}")
}

#[test]
fn update_field_lengths_overrunning_are_session_resets() {
    // Withdrawn routes length past the end.
    assert_eq!(
        dec_err(&hex(&format!("{M} 0017 02 0001 0000")), &ASN4),
        (3, 1, vec![])
    );
    assert_eq!(
        dec_err(&hex(&format!("{M} 0017 02 0004 0000")), &ASN4),
        (3, 1, vec![])
    );
    // Total path attribute length past the end.
    assert_eq!(
        dec_err(&hex(&format!("{M} 0017 02 0000 0001")), &ASN4),
        (3, 1, vec![])
    );
    assert_eq!(
        dec_err(&hex(&format!("{M} 001b 02 0000 0005 40010100")), &ASN4),
        (3, 1, vec![])
    );
    // A prefix overrunning the NLRI field, the withdrawn field.
    assert_eq!(
        dec_err(&update_bytes("", &good_attrs(), "18 0a00"), &ASN4),
        (3, 1, vec![])
    );
    assert_eq!(
        dec_err(&update_bytes("18 0a00", "", ""), &ASN4),
        (3, 1, vec![])
    );
}

#[test]
fn update_prefix_length_too_long_is_invalid_network_field() {
    assert_eq!(
        dec_err(&update_bytes("", &good_attrs(), "21 0a000001 00"), &ASN4),
        (3, 10, vec![])
    );
    assert_eq!(
        dec_err(&update_bytes("21 0a000001 00", "", ""), &ASN4),
        (3, 10, vec![])
    );
    // In MP_REACH_NLRI / MP_UNREACH_NLRI: more than 128.
    let mp = format!("80 0e 16 0002 01 10 {V6_NH} 00 81");
    assert_eq!(
        dec_err(
            &update_bytes("", &format!("{ORIGIN_IGP} {AS_PATH4} {mp}"), ""),
            &ASN4
        ),
        (3, 10, vec![])
    );
    assert_eq!(
        dec_err(&update_bytes("", "80 0f 04 0002 01 81", ""), &ASN4),
        (3, 10, vec![])
    );
    // 32 and 128 are fine.
    let u = dec_update(
        &update_bytes(
            "20 0a000001",
            "80 0f 14 0002 01 80 20010db8000000000000000000000001",
            "",
        ),
        &ASN4,
    );
    assert_eq!(
        u.withdrawn,
        vec![net("10.0.0.1/32"), net("2001:db8::1/128")]
    );
}

#[test]
fn unrecognized_well_known_attribute_is_a_session_reset() {
    let attrs = format!("{} 40 63 02 abcd", good_attrs());
    assert_eq!(
        dec_err(&update_bytes("", &attrs, NLRI_2X26), &ASN4),
        (3, 2, hex("40 63 02 abcd"))
    );
}

#[test]
fn malformed_mp_attributes_are_session_resets() {
    let base = format!("{ORIGIN_IGP} {AS_PATH4}");
    let cases = [
        // IPv6 with a 4-octet next hop.
        "80 0e 10 0002 01 04 0a000001 00 30 20010db80001".to_string(),
        // IPv4 with a 16-octet next hop.
        format!("80 0e 19 0001 01 10 {V6_NH} 00 18 0a0001"),
        // IPv6 with a 20-octet next hop.
        format!("80 0e 20 0002 01 14 {V6_NH} 00000000 00 30 20010db80001"),
        // Shorter than AFI + SAFI.
        "80 0e 02 0002".to_string(),
        // No next hop length.
        "80 0e 03 0002 01".to_string(),
        // Next hop overrunning.
        "80 0e 08 0002 01 10 20010db8".to_string(),
        // No reserved octet.
        format!("80 0e 14 0002 01 10 {V6_NH}"),
        // A prefix overrunning.
        format!("80 0e 1a 0002 01 10 {V6_NH} 00 30 20010db8"),
        // MP_UNREACH_NLRI shorter than AFI + SAFI, with a prefix overrunning.
        "80 0f 02 0002".to_string(),
        "80 0f 06 0002 01 30 2001".to_string(),
        // Overrunning the path attributes.
        "80 0e ff 0002 01".to_string(),
        "90 0f 0100 0002 01".to_string(),
        // Wrong flags (transitive).
        format!("c0 0e 1c 0002 01 10 {V6_NH} 00 30 20010db80001"),
        // Twice.
        "80 0f 03 0002 01 80 0f 03 0001 01".to_string(),
        format!(
            "80 0e 1c 0002 01 10 {V6_NH} 00 30 20010db80001 80 0e 1c 0002 01 10 {V6_NH} 00 30 20010db80002"
        ),
    ];
    for mp in &cases {
        let b = update_bytes("", &format!("{base} {mp}"), "");
        assert_eq!(dec_err(&b, &ASN4), (3, 1, vec![]), "{mp}");
    }
}

// ---------------------------------------------------------------------------
// UPDATE: RFC 7606 treat-as-withdraw and attribute discard
// ---------------------------------------------------------------------------

/// Decodes an update announcing the two /26 with `attrs`, checking it was
/// treated as withdrawn.
fn assert_treated_as_withdraw(attrs: &str, ctx: &Context) {
    let u = dec_update(&update_bytes("", attrs, NLRI_2X26), ctx);
    assert!(
        u.treated_as_withdraw.is_some(),
        "not withdrawn: {attrs}: {u:?}"
    );
    assert_eq!(u.withdrawn, two_26(), "{attrs}");
    assert!(u.announced.is_empty());
    assert_eq!(u.attributes, Attributes::default());
    assert_eq!(u.ipv6_next_hop, None);
    assert_eq!(u.end_of_rib, None);
}

#[test]
fn malformed_attributes_treat_as_withdraw() {
    let cases = [
        // ORIGIN: bad value, bad length, wrong flags.
        format!("40 01 01 03 {AS_PATH4} {NEXT_HOP}"),
        format!("40 01 02 0000 {AS_PATH4} {NEXT_HOP}"),
        format!("c0 01 01 00 {AS_PATH4} {NEXT_HOP}"),
        format!("80 01 01 00 {AS_PATH4} {NEXT_HOP}"),
        // AS_PATH: zero-length segment, unknown segment type (confederation
        // sequence), segment overrunning, 2-octet encoding on a 4-octet
        // session, wrong flags.
        format!("{ORIGIN_IGP} 40 02 02 02 00 {NEXT_HOP}"),
        format!("{ORIGIN_IGP} 40 02 06 03 01 0000fde9 {NEXT_HOP}"),
        format!("{ORIGIN_IGP} 40 02 06 02 02 0000fde9 {NEXT_HOP}"),
        format!("{ORIGIN_IGP} {AS_PATH2} {NEXT_HOP}"),
        format!("{ORIGIN_IGP} d0 02 0006 02 01 0000fde9 {NEXT_HOP}"),
        // NEXT_HOP: bad length, wrong flags.
        format!("{ORIGIN_IGP} {AS_PATH4} 40 03 05 0a00000100"),
        format!("{ORIGIN_IGP} {AS_PATH4} c0 03 04 0a000001"),
        // MED: bad length, wrong flags.
        format!("{} 80 04 03 000001", good_attrs()),
        format!("{} 40 04 04 00000001", good_attrs()),
        // LOCAL_PREF: bad length, wrong flags.
        format!("{} 40 05 02 0064", good_attrs()),
        format!("{} 80 05 04 00000064", good_attrs()),
        // ATOMIC_AGGREGATE: wrong flags.
        format!("{} c0 06 00", good_attrs()),
        // COMMUNITIES: not a multiple of 4, empty, wrong flags.
        format!("{} c0 08 05 fde9006400", good_attrs()),
        format!("{} c0 08 00", good_attrs()),
        format!("{} 80 08 04 fde90064", good_attrs()),
        // ORIGINATOR_ID: bad length, wrong flags.
        format!("{} 80 09 03 0a0000", good_attrs()),
        format!("{} c0 09 04 0a000001", good_attrs()),
        // CLUSTER_LIST: empty, not a multiple of 4.
        format!("{} 80 0a 00", good_attrs()),
        format!("{} 80 0a 06 0a0000010a00", good_attrs()),
        // Missing ORIGIN, AS_PATH, NEXT_HOP; no attributes at all.
        format!("{AS_PATH4} {NEXT_HOP}"),
        format!("{ORIGIN_IGP} {NEXT_HOP}"),
        format!("{ORIGIN_IGP} {AS_PATH4}"),
        String::new(),
        // RFC 7606 §4: an attribute overrunning the path attributes, and
        // too few octets left for an attribute header.
        format!("{} c0 08 10 fde90064", good_attrs()),
        format!("{} 40", good_attrs()),
        format!("{} 50 08 00", good_attrs()),
    ];
    for attrs in &cases {
        assert_treated_as_withdraw(attrs, &ASN4);
    }
    // The 2-octet encoding is right on a 2-octet session.
    let u = dec_update(
        &update_bytes(
            "",
            &format!("{ORIGIN_IGP} {AS_PATH2} {NEXT_HOP}"),
            NLRI_2X26,
        ),
        &ASN2,
    );
    assert_eq!(u.treated_as_withdraw, None);
    assert_eq!(u.attributes, basic_attributes());
    // A 4-octet AS_PATH read with 2-octet AS numbers is 4 of them here.
    let u = dec_update(&update_bytes("", &good_attrs(), NLRI_2X26), &ASN2);
    assert_eq!(u.treated_as_withdraw.as_deref(), Some("malformed AS_PATH"));
}

#[test]
fn treat_as_withdraw_withdraws_every_prefix_of_the_update() {
    // Withdrawn field, MP_UNREACH_NLRI, NLRI field and MP_REACH_NLRI.
    let attrs = format!(
        "40 01 01 07 {AS_PATH4} {NEXT_HOP}
         80 0e 1c 0002 01 10 {V6_NH} 00 30 20010db80001
         80 0f 0a 0002 01 30 20010db80002"
    );
    let u = dec_update(&update_bytes("18 0a0001", &attrs, NLRI_2X26), &ASN4);
    assert_eq!(u.treated_as_withdraw.as_deref(), Some("ORIGIN [7]"));
    assert_eq!(
        u.withdrawn,
        vec![
            net("10.0.1.0/24"),
            net("2001:db8:2::/48"),
            net("192.168.1.0/26"),
            net("192.168.1.64/26"),
            net("2001:db8:1::/48"),
        ]
    );
    assert!(u.announced.is_empty());
    // IPv6 only: NEXT_HOP is not required, ORIGIN is.
    let mp = format!("80 0e 1c 0002 01 10 {V6_NH} 00 30 20010db80001");
    let u = dec_update(&update_bytes("", &format!("{AS_PATH4} {mp}"), ""), &ASN4);
    assert_eq!(u.treated_as_withdraw.as_deref(), Some("missing ORIGIN"));
    assert_eq!(u.withdrawn, vec![net("2001:db8:1::/48")]);
    let u = dec_update(
        &update_bytes("", &format!("{ORIGIN_IGP} {AS_PATH4} {mp}"), ""),
        &ASN4,
    );
    assert_eq!(u.treated_as_withdraw, None);
    assert_eq!(u.announced, vec![net("2001:db8:1::/48")]);
}

#[test]
fn withdrawal_with_malformed_attributes_still_withdraws() {
    let u = dec_update(&update_bytes("18 0a0001", "40 01 01 07", ""), &ASN4);
    assert_eq!(u.withdrawn, vec![net("10.0.1.0/24")]);
    assert!(u.announced.is_empty());
    assert!(u.treated_as_withdraw.is_some());
    // Missing attributes do not matter when nothing is announced.
    let u = dec_update(&update_bytes("18 0a0001", "40 05 04 00000064", ""), &ASN4);
    assert_eq!(
        u,
        Update {
            withdrawn: vec![net("10.0.1.0/24")],
            ..Update::default()
        }
    );
}

#[test]
fn malformed_optional_attributes_are_discarded() {
    let cases = [
        // ATOMIC_AGGREGATE of length 1.
        "40 06 01 00",
        // AGGREGATOR of 7 octets, of 6 on a 4-octet session, wrong flags.
        "c0 07 07 0000fde9 0a0000",
        "c0 07 06 fde9 0a000001",
        "40 07 08 0000fde9 0a000001",
        // AS4_PATH and AS4_AGGREGATOR between 4-octet speakers: ignored.
        "c0 11 06 02 01 fa56ea01",
        "c0 12 08 fa56ea01 0a000001",
        // Unknown optional non-transitive.
        "80 63 02 abcd",
    ];
    for extra in cases {
        let u = dec_update(
            &update_bytes("", &format!("{} {extra}", good_attrs()), NLRI_2X26),
            &ASN4,
        );
        assert_eq!(u.treated_as_withdraw, None, "{extra}");
        assert_eq!(u.announced, two_26());
        assert_eq!(u.attributes, basic_attributes(), "{extra}");
    }
    // On a 2-octet session: a malformed AS4_PATH or AS4_AGGREGATOR (or one
    // with wrong flags) is discarded.
    let agg = "c0 07 06 5ba0 0a000009";
    for extra in [
        "c0 11 06 02 00 fa56ea01",
        "c0 11 05 02 01 fa56ea",
        "40 11 06 02 01 fa56ea01",
        "c0 12 07 fa56ea01 0a0000",
        "80 12 08 fa56ea01 0a000001",
    ] {
        let attrs = format!("{ORIGIN_IGP} {AS_PATH2} {NEXT_HOP} {agg} {extra}");
        let u = dec_update(&update_bytes("", &attrs, NLRI_2X26), &ASN2);
        assert_eq!(u.treated_as_withdraw, None, "{extra}");
        assert_eq!(
            u.attributes,
            Attributes {
                aggregator: Some((u32::from(AS_TRANS), v4("10.0.0.9"))),
                ..basic_attributes()
            },
            "{extra}"
        );
    }
}

#[test]
fn duplicate_attributes_keep_the_first() {
    let attrs = format!(
        "{ORIGIN_IGP} {AS_PATH4} {NEXT_HOP} 40 01 01 02 40 03 04 0a000002 40 01 02 0000 c0 63 01 01 c0 63 01 02"
    );
    let u = dec_update(&update_bytes("", &attrs, NLRI_2X26), &ASN4);
    assert_eq!(u.treated_as_withdraw, None);
    assert_eq!(
        u.attributes,
        Attributes {
            other: vec![(0xc0, 0x63, vec![1])],
            ..basic_attributes()
        }
    );
    // The first is the one that counts, even if malformed.
    let attrs = format!("40 01 01 09 {ORIGIN_IGP} {AS_PATH4} {NEXT_HOP}");
    assert_treated_as_withdraw(&attrs, &ASN4);
}

#[test]
fn unknown_attributes() {
    // Optional transitive kept (without the extended length bit), optional
    // non-transitive dropped.
    let attrs = format!(
        "{} e0 20 0c 0000fde9 00000001 00000002 d0 63 0002 abcd 80 64 01 00",
        good_attrs()
    );
    let u = dec_update(&update_bytes("", &attrs, NLRI_2X26), &ASN4);
    assert_eq!(
        u.attributes.other,
        vec![
            (0xe0, 32, hex("0000fde9 00000001 00000002")),
            (0xc0, 0x63, vec![0xab, 0xcd]),
        ]
    );
    // Passed on with the partial bit, in type code order.
    let bytes = encode(&Message::Update(u.clone()), &ASN4).unwrap();
    let expected = update_bytes(
        "",
        &format!(
            "{} e0 20 0c 0000fde9 00000001 00000002 e0 63 02 abcd",
            good_attrs()
        ),
        NLRI_2X26,
    );
    assert_eq!(bytes, expected);
}

#[test]
fn unknown_mp_families_are_skipped() {
    // MP_REACH_NLRI for VPNv4 (SAFI 128) and L2VPN (AFI 25), MP_UNREACH for
    // IPv6 multicast: skipped, the IPv4 NLRI is decoded.
    for mp in [
        "80 0e 10 0001 80 0c 000000000000000000000000",
        "80 0e 05 0019 46 ff ff",
        "80 0f 07 0002 02 30 200100",
    ] {
        let u = dec_update(
            &update_bytes("", &format!("{} {mp}", good_attrs()), NLRI_2X26),
            &ASN4,
        );
        assert_eq!(u.treated_as_withdraw, None, "{mp}");
        assert_eq!(u.announced, two_26());
        assert!(u.withdrawn.is_empty());
    }
}

#[test]
fn as4_path_merge_on_a_two_octet_session() {
    let update = |attrs: &str| dec_update(&update_bytes("", attrs, "18 0a0001"), &ASN2);
    let head = format!("{ORIGIN_IGP} {NEXT_HOP}");
    // AS_PATH 65001 AS_TRANS AS_TRANS, AS4_PATH 4200000001 4200000002.
    let u = update(&format!(
        "{head} 40 02 08 02 03 fde9 5ba0 5ba0 c0 11 0a 02 02 fa56ea01 fa56ea02"
    ));
    assert_eq!(
        u.attributes.as_path,
        vec![Segment::Sequence(vec![65001, 4_200_000_001, 4_200_000_002])]
    );
    // AS4_PATH longer than AS_PATH: ignored.
    let u = update(&format!(
        "{head} 40 02 04 02 01 5ba0 c0 11 0a 02 02 fa56ea01 fa56ea02"
    ));
    assert_eq!(
        u.attributes.as_path,
        vec![Segment::Sequence(vec![u32::from(AS_TRANS)])]
    );
    // With a set (counting one): AS_PATH 65001 AS_TRANS {1 2}, AS4_PATH
    // 4200000001 {1 2}.
    let u = update(&format!(
        "{head} 40 02 0c 02 02 fde9 5ba0 01 02 0001 0002 c0 11 10 02 01 fa56ea01 01 02 00000001 00000002"
    ));
    assert_eq!(
        u.attributes.as_path,
        vec![
            Segment::Sequence(vec![65001, 4_200_000_001]),
            Segment::Set(vec![1, 2]),
        ]
    );
    // AGGREGATOR AS_TRANS + AS4_AGGREGATOR: the latter.
    let u = update(&format!(
        "{head} {AS_PATH2} c0 07 06 5ba0 0a000009 c0 12 08 fa56ea01 0a000009"
    ));
    assert_eq!(
        u.attributes.aggregator,
        Some((4_200_000_001, v4("10.0.0.9")))
    );
    // AGGREGATOR of a 2-octet AS + AS4_AGGREGATOR: both AS4 attributes
    // are stale and ignored.
    let u = update(&format!(
        "{head} 40 02 04 02 01 5ba0 c0 07 06 fde9 0a000009 c0 11 06 02 01 fa56ea01 c0 12 08 fa56ea01 0a000009"
    ));
    assert_eq!(u.attributes.aggregator, Some((65001, v4("10.0.0.9"))));
    assert_eq!(
        u.attributes.as_path,
        vec![Segment::Sequence(vec![u32::from(AS_TRANS)])]
    );
    // Joined where the two meet only if the sequence fits a segment: 200
    // ASNs then AS_TRANS x 100 in AS_PATH (two segments), 100 in AS4_PATH.
    let as_path = format!(
        "50 02 025c 02 c8 {} 02 64 {}",
        "fde9".repeat(200),
        "5ba0".repeat(100)
    );
    let as4_path = format!("d0 11 0192 02 64 {}", "fa56ea01".repeat(100));
    let u = update(&format!("{head} {as_path} {as4_path}"));
    assert_eq!(
        u.attributes.as_path,
        vec![
            Segment::Sequence(vec![65001; 200]),
            Segment::Sequence(vec![4_200_000_001; 100]),
        ]
    );
    // Between 4-octet speakers AS4_PATH is ignored.
    let u = dec_update(
        &update_bytes(
            "",
            &format!("{} c0 11 06 02 01 fa56ea01", good_attrs()),
            "18 0a0001",
        ),
        &ASN4,
    );
    assert_eq!(u.attributes.as_path, vec![Segment::Sequence(vec![65001])]);
}

#[test]
fn prefixes_are_masked_and_announcements_win_over_withdrawals() {
    let u = dec_update(
        &update_bytes(
            "1a c0a801ff 18 0a0002",
            &good_attrs(),
            "1a c0a801ff 17 0a0001",
        ),
        &ASN4,
    );
    assert_eq!(
        u.announced,
        vec![net("192.168.1.192/26"), net("10.0.0.0/23")]
    );
    // 192.168.1.192/26 is both withdrawn and announced: announced.
    assert_eq!(u.withdrawn, vec![net("10.0.2.0/24")]);
    // A default route.
    let u = dec_update(&update_bytes("", &good_attrs(), "00"), &ASN4);
    assert_eq!(u.announced, vec![net("0.0.0.0/0")]);
}

#[test]
fn mp_reach_next_hops() {
    // Global + link-local next hop: the link-local one is dropped.
    let mp =
        format!("80 0e 2c 0002 01 20 {V6_NH} fe800000000000000000000000000001 00 30 20010db80001");
    let u = dec_update(
        &update_bytes("", &format!("{ORIGIN_IGP} {AS_PATH4} {mp}"), ""),
        &ASN4,
    );
    assert_eq!(u.ipv6_next_hop, Some("2001:db8::1".parse().unwrap()));
    assert_eq!(u.announced, vec![net("2001:db8:1::/48")]);
    // IPv4 unicast in MP_REACH_NLRI: its next hop is the IPv4 one.
    let mp = "80 0e 0d 0001 01 04 0a000007 00 18 0a0001";
    let u = dec_update(
        &update_bytes("", &format!("{ORIGIN_IGP} {AS_PATH4} {mp}"), ""),
        &ASN4,
    );
    assert_eq!(u.treated_as_withdraw, None);
    assert_eq!(u.announced, vec![net("10.0.1.0/24")]);
    assert_eq!(u.attributes.next_hop, Some(v4("10.0.0.7")));
    assert_eq!(u.ipv6_next_hop, None);
}

// ---------------------------------------------------------------------------
// Encoding errors and details
// ---------------------------------------------------------------------------

#[test]
fn encode_errors() {
    let too_many: Vec<IpNet> = (0..1100u32)
        .map(|i| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (i << 8)), 24).unwrap()))
        .collect();
    let big = Message::Update(Update {
        announced: too_many,
        attributes: basic_attributes(),
        ..Update::default()
    });
    assert!(matches!(encode(&big, &ASN4), Err(EncodeError::TooLong(n)) if n > MAX_MESSAGE_LEN));

    let no_next_hop = Message::Update(Update {
        announced: vec![net("10.0.1.0/24")],
        attributes: Attributes {
            next_hop: None,
            ..basic_attributes()
        },
        ..Update::default()
    });
    assert!(matches!(
        encode(&no_next_hop, &ASN4),
        Err(EncodeError::Invalid(_))
    ));
    let no_v6_next_hop = Message::Update(Update {
        announced: vec![net("2001:db8::/32")],
        attributes: basic_attributes(),
        ipv6_next_hop: Some(IpAddr::V4(v4("10.0.0.1"))),
        ..Update::default()
    });
    assert!(matches!(
        encode(&no_v6_next_hop, &ASN4),
        Err(EncodeError::Invalid(_))
    ));
    let eor_with_prefixes = Message::Update(Update {
        withdrawn: vec![net("10.0.1.0/24")],
        end_of_rib: Some(Afi::Ipv4),
        ..Update::default()
    });
    assert!(matches!(
        encode(&eor_with_prefixes, &ASN4),
        Err(EncodeError::Invalid(_))
    ));
    let empty = Message::Update(Update::default());
    assert!(matches!(
        encode(&empty, &ASN4),
        Err(EncodeError::Invalid(_))
    ));
    let known_in_other = Message::Update(Update {
        announced: vec![net("10.0.1.0/24")],
        attributes: Attributes {
            other: vec![(0xc0, 8, vec![0; 4])],
            ..basic_attributes()
        },
        ..Update::default()
    });
    assert!(matches!(
        encode(&known_in_other, &ASN4),
        Err(EncodeError::Invalid(_))
    ));

    let gr = Message::Open(Open {
        asn: 1,
        hold_time: 90,
        router_id: v4("1.1.1.1"),
        capabilities: vec![Capability::GracefulRestart(GracefulRestart {
            restarting: false,
            restart_time: 4096,
            families: vec![],
        })],
    });
    assert!(matches!(encode(&gr, &ASN4), Err(EncodeError::Invalid(_))));
    let caps = Message::Open(Open {
        asn: 1,
        hold_time: 90,
        router_id: v4("1.1.1.1"),
        capabilities: vec![Capability::RouteRefresh; 127],
    });
    assert!(matches!(encode(&caps, &ASN4), Err(EncodeError::Invalid(_))));
    let notification = Message::Notification(Notification::new(6, 2, vec![0; 4076]));
    assert_eq!(
        encode(&notification, &ASN4),
        Err(EncodeError::TooLong(4097))
    );
    let notification = Message::Notification(Notification::new(6, 2, vec![0; 4075]));
    assert_eq!(encode(&notification, &ASN4).unwrap().len(), 4096);
}

#[test]
fn long_as_path_segments_are_split_and_empty_ones_dropped() {
    let asns: Vec<u32> = (1..=300).collect();
    let update = Message::Update(Update {
        announced: vec![net("10.0.1.0/24")],
        attributes: Attributes {
            as_path: vec![Segment::Sequence(vec![]), Segment::Sequence(asns.clone())],
            ..basic_attributes()
        },
        ..Update::default()
    });
    for ctx in [ASN4, ASN2] {
        let Message::Update(u) = dec(&encode(&update, &ctx).unwrap(), &ctx).unwrap() else {
            panic!()
        };
        assert_eq!(
            u.attributes.as_path,
            vec![
                Segment::Sequence(asns[..255].to_vec()),
                Segment::Sequence(asns[255..].to_vec()),
            ]
        );
    }
}

#[test]
fn extended_length_attributes() {
    // A 300-octet unknown attribute and a 70-community attribute.
    let update = Message::Update(Update {
        announced: vec![net("10.0.1.0/24")],
        attributes: Attributes {
            communities: (0..70).collect(),
            other: vec![(0xe0, 200, vec![7; 300])],
            ..basic_attributes()
        },
        ..Update::default()
    });
    let bytes = encode(&update, &ASN4).unwrap();
    let communities = bytes.windows(4).position(|w| w == [0xd0, 8, 1, 0x18]);
    assert!(communities.is_some(), "COMMUNITIES with extended length");
    assert!(bytes.windows(4).any(|w| w == [0xf0, 200, 1, 0x2c]));
    assert_eq!(dec(&bytes, &ASN4).unwrap(), update);
}

// ---------------------------------------------------------------------------
// pack
// ---------------------------------------------------------------------------

/// Deterministic pseudo-random numbers (xorshift).
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn check_pack(
    withdrawn: &[IpNet],
    prefixes: &[IpNet],
    attributes: &Attributes,
    nh6: Option<IpAddr>,
    ctx: &Context,
) -> Vec<Update> {
    let updates = pack(withdrawn, prefixes, attributes, nh6, ctx);
    let (mut w, mut a) = (Vec::new(), Vec::new());
    for u in &updates {
        let bytes = encode(&Message::Update(u.clone()), ctx).unwrap();
        assert!(bytes.len() <= MAX_MESSAGE_LEN);
        let back = dec_update(&bytes, ctx);
        // The decoder gives IPv4 prefixes (their own fields) before IPv6
        // ones (MP attributes).
        let v4_first = |v: &[IpNet]| -> Vec<IpNet> {
            let (mut v4, v6): (Vec<IpNet>, Vec<IpNet>) =
                v.iter().partition(|n| matches!(n, IpNet::V4(_)));
            v4.extend(v6);
            v4
        };
        let expected = Update {
            withdrawn: v4_first(&u.withdrawn),
            announced: v4_first(&u.announced),
            ..u.clone()
        };
        assert_eq!(back, expected);
        w.extend(back.withdrawn);
        a.extend(back.announced);
    }
    let sorted = |v: &[IpNet]| -> Vec<IpNet> {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    assert_eq!(sorted(&w), sorted(withdrawn));
    assert_eq!(sorted(&a), sorted(prefixes));
    updates
}

#[test]
fn pack_3000_host_routes() {
    let mut state = 0x2545_f491_4f6c_dd1d;
    let mut seen = BTreeSet::new();
    let mut prefixes = Vec::new();
    while prefixes.len() < 3000 {
        let addr = Ipv4Addr::from(u32::try_from(xorshift(&mut state) >> 32).unwrap());
        if seen.insert(addr) {
            prefixes.push(IpNet::V4(Ipv4Net::new(addr, 32).unwrap()));
        }
    }
    let attributes = Attributes {
        local_pref: Some(100),
        communities: vec![1, 2, 3],
        ..basic_attributes()
    };
    for ctx in [ASN4, ASN2] {
        let updates = check_pack(&[], &prefixes, &attributes, None, &ctx);
        // 5 octets a /32, about 4040 octets an UPDATE: 4 UPDATEs.
        assert_eq!(updates.len(), 4);
        let withdrawn = check_pack(&prefixes, &[], &attributes, None, &ctx);
        assert_eq!(withdrawn.len(), 4);
        assert!(
            withdrawn
                .iter()
                .all(|u| u.attributes == Attributes::default())
        );
    }
}

#[test]
fn pack_nothing_is_no_update() {
    assert!(pack(&[], &[], &basic_attributes(), None, &ASN4).is_empty());
}

// ---------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------

fn arb_asn() -> impl Strategy<Value = u32> {
    prop_oneof![
        1u32..=65535,
        65536u32..=u32::MAX,
        Just(u32::from(AS_TRANS)),
        Just(0u32),
    ]
}

fn arb_segment() -> impl Strategy<Value = Segment> {
    prop_oneof![
        prop::collection::vec(arb_asn(), 1..6).prop_map(Segment::Sequence),
        prop::collection::vec(arb_asn(), 1..4).prop_map(Segment::Set),
    ]
}

fn arb_ipv4() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}

fn arb_origin() -> impl Strategy<Value = Origin> {
    prop_oneof![
        Just(Origin::Igp),
        Just(Origin::Egp),
        Just(Origin::Incomplete)
    ]
}

/// Codes this codec does not interpret.
fn arb_unknown_code() -> impl Strategy<Value = u8> {
    any::<u8>().prop_filter("unknown", |c| !matches!(c, 1..=10 | 14 | 15 | 17 | 18))
}

fn arb_attributes() -> impl Strategy<Value = Attributes> {
    (
        arb_origin(),
        prop::collection::vec(arb_segment(), 0..4),
        prop::option::of(arb_ipv4()),
        prop::option::of(any::<u32>()),
        prop::option::of(any::<u32>()),
        any::<bool>(),
        prop::option::of((arb_asn(), arb_ipv4())),
        prop::collection::vec(any::<u32>(), 0..5),
        prop::option::of(arb_ipv4()),
        prop::collection::vec(arb_ipv4(), 0..3),
        prop::collection::btree_map(
            arb_unknown_code(),
            prop::collection::vec(any::<u8>(), 0..300),
            0..3,
        ),
    )
        .prop_map(
            |(
                origin,
                as_path,
                next_hop,
                med,
                local_pref,
                atomic_aggregate,
                aggregator,
                communities,
                originator_id,
                cluster_list,
                other,
            )| Attributes {
                origin,
                as_path,
                next_hop,
                med,
                local_pref,
                atomic_aggregate,
                aggregator,
                communities,
                originator_id,
                cluster_list,
                other: other.into_iter().map(|(c, v)| (0xe0, c, v)).collect(),
            },
        )
}

fn arb_v4_net() -> impl Strategy<Value = IpNet> {
    (any::<u32>(), 0u8..=32)
        .prop_map(|(a, l)| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc()))
}

fn arb_v6_net() -> impl Strategy<Value = IpNet> {
    (any::<u128>(), 0u8..=128)
        .prop_map(|(a, l)| IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a), l).unwrap().trunc()))
}

fn arb_net() -> impl Strategy<Value = IpNet> {
    prop_oneof![arb_v4_net(), arb_v6_net()]
}

/// A valid update as the decoder gives it back: IPv4 prefixes before IPv6
/// ones, no prefix both withdrawn and announced, attributes only when
/// announcing.
fn arb_update() -> impl Strategy<Value = Update> {
    (
        prop::collection::btree_set(arb_v4_net(), 0..10),
        prop::collection::btree_set(arb_v6_net(), 0..10),
        prop::collection::btree_set(arb_v4_net(), 0..10),
        prop::collection::btree_set(arb_v6_net(), 0..10),
        arb_attributes(),
        any::<u128>(),
        arb_ipv4(),
    )
        .prop_map(|(w4, w6, a4, a6, mut attributes, nh6, nh4)| {
            let announced: Vec<IpNet> = a4.iter().chain(&a6).copied().collect();
            let withdrawn: Vec<IpNet> = w4
                .iter()
                .chain(&w6)
                .filter(|n| !a4.contains(n) && !a6.contains(n))
                .copied()
                .collect();
            if announced.is_empty() && withdrawn.is_empty() {
                return Update::end_of_rib(Afi::Ipv4);
            }
            if !a4.is_empty() && attributes.next_hop.is_none() {
                attributes.next_hop = Some(nh4);
            }
            Update {
                withdrawn,
                attributes: if announced.is_empty() {
                    Attributes::default()
                } else {
                    attributes
                },
                ipv6_next_hop: (!a6.is_empty()).then_some(IpAddr::V6(Ipv6Addr::from(nh6))),
                announced,
                end_of_rib: None,
                treated_as_withdraw: None,
            }
        })
}

fn arb_capability() -> impl Strategy<Value = Capability> {
    let afi = prop_oneof![Just(Afi::Ipv4), Just(Afi::Ipv6)];
    prop_oneof![
        (afi.clone(), any::<u8>()).prop_map(|(afi, safi)| Capability::Multiprotocol { afi, safi }),
        Just(Capability::RouteRefresh),
        (
            any::<bool>(),
            0u16..=4095,
            prop::collection::vec((afi, any::<u8>(), any::<bool>()), 0..3)
        )
            .prop_map(|(restarting, restart_time, families)| {
                Capability::GracefulRestart(GracefulRestart {
                    restarting,
                    restart_time,
                    families,
                })
            }),
        (
            any::<u8>().prop_filter("unknown", |c| !matches!(c, 1 | 2 | 64 | 65)),
            prop::collection::vec(any::<u8>(), 0..20)
        )
            .prop_map(|(code, value)| Capability::Unknown { code, value }),
    ]
}

fn arb_open() -> impl Strategy<Value = Open> {
    (
        arb_asn(),
        any::<bool>(),
        prop_oneof![Just(0u16), 3u16..],
        1u32..,
        prop::collection::vec(arb_capability(), 0..6),
    )
        .prop_map(|(asn, four, hold_time, id, mut capabilities)| {
            if four || asn > 65535 {
                capabilities.push(Capability::FourOctetAs(asn));
            }
            Open {
                asn,
                hold_time,
                router_id: Ipv4Addr::from(id),
                capabilities,
            }
        })
}

fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        arb_open().prop_map(Message::Open),
        arb_update().prop_map(Message::Update),
        (
            any::<u8>(),
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 0..40)
        )
            .prop_map(|(c, s, d)| Message::Notification(Notification::new(c, s, d))),
        Just(Message::Keepalive),
        (prop_oneof![Just(Afi::Ipv4), Just(Afi::Ipv6)], any::<u8>())
            .prop_map(|(afi, safi)| Message::RouteRefresh(RouteRefresh { afi, safi })),
    ]
}

fn arb_ctx() -> impl Strategy<Value = Context> {
    any::<bool>().prop_map(|asn4| Context { asn4 })
}

/// Decodes and checks what a successful decode claims.
fn decode_checked(bytes: &[u8]) {
    for ctx in [ASN2, ASN4] {
        if let Ok(Some((_, n))) = decode(bytes, &ctx) {
            assert!((19..=bytes.len()).contains(&n));
        }
    }
}

/// Whatever decodes (unless treated as withdrawn, or empty) encodes back to
/// the same message, unknown attributes with the partial bit set.
fn reencode_checked(bytes: &[u8]) {
    for ctx in [ASN2, ASN4] {
        let Ok(Some((msg, _))) = decode(bytes, &ctx) else {
            continue;
        };
        let mut expected = msg.clone();
        if let Message::Update(u) = &mut expected {
            let empty = u.withdrawn.is_empty() && u.announced.is_empty() && u.end_of_rib.is_none();
            if u.treated_as_withdraw.is_some() || empty {
                continue;
            }
            u.attributes.other.iter_mut().for_each(|o| o.0 |= 0x20);
        }
        match encode(&msg, &ctx) {
            Ok(again) => assert_eq!(dec(&again, &ctx).unwrap(), expected, "{bytes:02x?}"),
            Err(EncodeError::TooLong(_)) => {}
            // More than 253 octets of capabilities, sent in several
            // optional parameters.
            Err(EncodeError::Invalid(_)) if matches!(msg, Message::Open(_)) => {}
            Err(e) => panic!("{e}: {msg:?}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn update_round_trip(update in arb_update(), ctx in arb_ctx()) {
        let msg = Message::Update(update);
        let bytes = encode(&msg, &ctx).unwrap();
        prop_assert!(bytes.len() <= MAX_MESSAGE_LEN);
        let (back, n) = decode(&bytes, &ctx).unwrap().unwrap();
        prop_assert_eq!(n, bytes.len());
        prop_assert_eq!(back, msg);
    }

    #[test]
    fn message_round_trip(msg in arb_message(), ctx in arb_ctx()) {
        let bytes = encode(&msg, &ctx).unwrap();
        let (back, n) = decode(&bytes, &ctx).unwrap().unwrap();
        prop_assert_eq!(n, bytes.len());
        prop_assert_eq!(back, msg);
        // Every strict prefix is an incomplete message.
        for k in 0..bytes.len() {
            prop_assert_eq!(decode(&bytes[..k], &ctx).unwrap(), None);
        }
    }

    #[test]
    fn decode_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        decode_checked(&bytes);
    }

    #[test]
    fn decode_arbitrary_bodies_never_panics(
        ty in 0u8..=6,
        body in prop::collection::vec(any::<u8>(), 0..600),
        len_delta in -3i32..=3,
    ) {
        let len = i32::try_from(19 + body.len()).unwrap() + len_delta;
        let mut bytes = vec![0xff; 16];
        bytes.extend_from_slice(&u16::try_from(len.max(0)).unwrap().to_be_bytes());
        bytes.push(ty);
        bytes.extend_from_slice(&body);
        decode_checked(&bytes);
    }

    #[test]
    fn decode_arbitrary_attributes_never_panics(
        attrs in prop::collection::vec(
            (any::<u8>(), prop_oneof![1u8..=18, any::<u8>()], prop::collection::vec(any::<u8>(), 0..40)),
            0..8,
        ),
        nlri in prop::collection::vec(any::<u8>(), 0..20),
        mandatory in any::<bool>(),
    ) {
        // Well-formed attribute framing with arbitrary flags, types and
        // values: reaches every attribute decoder. With the mandatory
        // attributes first, many such updates are accepted.
        let mut field = if mandatory { hex(&format!("{ORIGIN_IGP} {AS_PATH2} {NEXT_HOP}")) } else { Vec::new() };
        for (flags, code, value) in &attrs {
            field.extend_from_slice(&[flags & !0x10, *code, u8::try_from(value.len()).unwrap()]);
            field.extend_from_slice(value);
        }
        let mut bytes = vec![0xff; 16];
        let len = 23 + field.len() + nlri.len();
        bytes.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
        bytes.push(2);
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(&u16::try_from(field.len()).unwrap().to_be_bytes());
        bytes.extend_from_slice(&field);
        bytes.extend_from_slice(&nlri);
        decode_checked(&bytes);
        reencode_checked(&bytes);
    }

    #[test]
    fn decode_mutated_messages_never_panics(
        msg in arb_message(),
        ctx in arb_ctx(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = encode(&msg, &ctx).unwrap();
        for (i, b) in &flips {
            let i = i.index(bytes.len());
            bytes[i] = *b;
        }
        decode_checked(&bytes);
        reencode_checked(&bytes);
        // Keep the header valid so that the body is decoded.
        let mut body_only = encode(&msg, &ctx).unwrap();
        for (i, b) in &flips {
            if body_only.len() > 19 {
                let i = 19 + i.index(body_only.len() - 19);
                body_only[i] = *b;
            }
        }
        decode_checked(&body_only);
        reencode_checked(&body_only);
        let k = cut.index(bytes.len() + 1);
        decode_checked(&bytes[..k]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn pack_fits_and_carries_every_prefix(
        withdrawn in prop::collection::vec(arb_net(), 0..1500),
        prefixes in prop::collection::vec(arb_net(), 0..1500),
        attributes in arb_attributes(),
        nh4 in arb_ipv4(),
        nh6 in any::<u128>(),
        ctx in arb_ctx(),
    ) {
        // Decoding drops a withdrawal of a prefix announced in the same
        // UPDATE; keep the two disjoint.
        let announced: BTreeSet<IpNet> = prefixes.iter().copied().collect();
        let withdrawn: Vec<IpNet> =
            withdrawn.into_iter().filter(|n| !announced.contains(n)).collect();
        let attributes = Attributes { next_hop: Some(nh4), ..attributes };
        let nh6 = Some(IpAddr::V6(Ipv6Addr::from(nh6)));
        let updates = check_pack(&withdrawn, &prefixes, &attributes, nh6, &ctx);
        // As few as fit: every UPDATE but the last is full (the next
        // prefix did not fit), far more than half of the limit.
        for u in updates.iter().rev().skip(1) {
            let len = encode(&Message::Update(u.clone()), &ctx).unwrap().len();
            prop_assert!(len > MAX_MESSAGE_LEN / 2, "{} octets", len);
        }
    }
}
