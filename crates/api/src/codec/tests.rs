use super::*;

const ALL_KINDS: &str = include_str!("../../../../tests/fixtures/all-kinds.yaml");

fn decode_ok(text: &str) -> Vec<Resource> {
    decode_documents(text)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

fn first_error(text: &str) -> String {
    match decode_documents(text) {
        Err(e) => e.to_string(),
        Ok(docs) => docs
            .into_iter()
            .find_map(|r| r.err())
            .map(|e| e.to_string())
            .unwrap_or_else(|| "no error".into()),
    }
}

#[test]
fn fixture_has_every_kind_and_validates() {
    let rs = decode_ok(ALL_KINDS);
    for k in Kind::ALL {
        assert!(rs.iter().any(|r| r.kind() == k), "fixture lacks {k}");
    }
    for r in &rs {
        r.validate().unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn yaml_and_json_round_trip_every_kind() {
    for r in decode_ok(ALL_KINDS) {
        let v = r.to_json();
        let yaml = encode_yaml(&v);
        let back = decode_ok(&yaml);
        assert_eq!(
            back,
            vec![r.clone()],
            "yaml round trip of {}:\n{yaml}",
            r.key()
        );
        let json = encode_json(&v);
        let back = decode_ok(&json);
        assert_eq!(back, vec![r.clone()], "json round trip of {}", r.key());
    }
}

#[test]
fn lists_round_trip() {
    let rs = decode_ok(ALL_KINDS);
    let yaml = encode_yaml(&to_output_value(&rs, true));
    assert!(yaml.contains("kind: List"));
    assert_eq!(decode_ok(&yaml), rs);
    let pools: Vec<Resource> = rs
        .iter()
        .filter(|r| r.kind() == Kind::IPPool)
        .cloned()
        .collect();
    let json = encode_json(&to_output_value(&pools, true));
    assert!(json.contains("\"IPPoolList\""));
    assert_eq!(decode_ok(&json), pools);
}

#[test]
fn ippool_defaults_as_calico() {
    let mut r = decode_ok("apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.1.2.3/16}\n")
        .remove(0);
    r.set_defaults();
    let Resource::IPPool(p) = &r else {
        panic!("not a pool")
    };
    assert_eq!(p.spec.cidr, "10.1.0.0/16");
    assert_eq!(p.spec.block_size, Some(26));
    assert_eq!(p.spec.ipip_mode.as_deref(), Some("Never"));
    assert_eq!(p.spec.vxlan_mode.as_deref(), Some("Never"));
    assert!(!p.spec.nat_outgoing);
    assert_eq!(p.spec.node_selector.as_deref(), Some("all()"));
    assert_eq!(
        p.spec.allowed_uses,
        Some(vec!["Workload".to_string(), "Tunnel".to_string()])
    );
    let mut r6 =
        decode_ok("apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p6}\nspec: {cidr: 'fd00::/64'}\n").remove(0);
    r6.set_defaults();
    let Resource::IPPool(p6) = &r6 else {
        panic!("not a pool")
    };
    assert_eq!(p6.spec.block_size, Some(122));
}

#[test]
fn bgp_configuration_defaults_as_calico() {
    let r = decode_ok(
        "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\n",
    )
    .remove(0);
    let Resource::BGPConfiguration(b) = &r else {
        panic!("not a bgp config")
    };
    assert_eq!(b.spec.as_number().0, 64512);
    assert!(b.spec.node_to_node_mesh_enabled());
    assert_eq!(b.spec.listen_port(), 179);
}

fn invalid(yaml: &str) -> String {
    let mut r = decode_ok(yaml).remove(0);
    r.set_defaults();
    match r.validate() {
        Ok(()) => "valid".into(),
        Err(e) => e.to_string(),
    }
}

fn pool(spec: &str) -> String {
    invalid(&format!(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {{name: p}}\nspec: {spec}\n"
    ))
}

#[test]
fn ippool_validation() {
    assert_eq!(pool("{cidr: 10.0.0.0/16}"), "valid");
    assert!(pool("{cidr: 10.0.0.0/33}").contains("spec.cidr"));
    assert!(pool("{cidr: nonsense}").contains("not a valid CIDR"));
    assert!(pool("{cidr: 10.0.0.0/16, blockSize: 19}").contains("spec.blockSize"));
    assert!(pool("{cidr: 10.0.0.0/16, blockSize: 33}").contains("between 20 and 32"));
    assert!(pool("{cidr: 10.0.0.0/28, blockSize: 26}").contains("larger than the pool"));
    assert!(pool("{cidr: 'fd00::/64', blockSize: 115}").contains("between 116 and 128"));
    assert_eq!(pool("{cidr: 'fd00::/64', blockSize: 128}"), "valid");
    assert!(
        pool("{cidr: 10.0.0.0/16, ipipMode: Always, vxlanMode: Always}").contains("cannot both")
    );
    assert!(pool("{cidr: 10.0.0.0/16, ipipMode: Sometimes}").contains("spec.ipipMode"));
    assert!(pool("{cidr: 'fd00::/64', ipipMode: Always}").contains("IPv6"));
    assert!(pool("{cidr: 10.0.0.0/16, nodeSelector: 'a ==='}").contains("spec.nodeSelector"));
    assert!(
        pool("{cidr: 10.0.0.0/16, allowedUses: [Workload, Pets]}").contains("spec.allowedUses[1]")
    );
    assert!(pool("{cidr: 169.254.0.0/24}").contains("link-local"));
}

#[test]
fn names_and_scope() {
    let e = invalid(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: Bad_Name}\nspec: {cidr: 10.0.0.0/8}\n",
    );
    assert!(e.contains("metadata.name"), "{e}");
    let e = invalid(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p, namespace: x}\nspec: {cidr: 10.0.0.0/8}\n",
    );
    assert!(e.contains("not namespaced"), "{e}");
    let e = invalid(
        "apiVersion: projectcalico.org/v3\nkind: IPAMConfiguration\nmetadata: {name: other}\n",
    );
    assert!(e.contains("default"), "{e}");
    let e = invalid(
        "apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {name: host1}\n",
    );
    assert!(e.contains("node.<nodename>"), "{e}");
    let e = invalid(
        "apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata: {name: p, labels: {'bad key': v}}\n",
    );
    assert!(e.contains("metadata.labels"), "{e}");
}

#[test]
fn as_numbers_and_peers() {
    let peer = |s: &str| {
        invalid(&format!(
            "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {{name: p}}\nspec: {s}\n"
        ))
    };
    assert_eq!(peer("{peerIP: 10.0.0.1, asNumber: 4294967295}"), "valid");
    assert_eq!(peer("{peerIP: '[fd00::1]:1179', asNumber: 65000}"), "valid");
    assert!(peer("{peerIP: 10.0.0.1}").contains("asNumber is required"));
    assert!(
        peer("{peerIP: 10.0.0.1, asNumber: 1, peerSelector: all()}")
            .contains("peerSelector cannot")
    );
    assert!(
        peer("{node: a, nodeSelector: all(), peerSelector: all()}")
            .contains("node and nodeSelector")
    );
    assert!(peer("{peerIP: 10.0.0.300, asNumber: 1}").contains("spec.peerIP"));
    let e = first_error(
        "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p}\nspec: {peerIP: 10.0.0.1, asNumber: 4294967296}\n",
    );
    assert!(
        e.contains("spec.asNumber") && e.contains("out of range"),
        "{e}"
    );
}

fn policy_err(rule: &str) -> String {
    invalid(&format!(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: p}}\nspec:\n  ingress:\n  - {rule}\n"
    ))
}

#[test]
fn policy_validation() {
    assert_eq!(
        policy_err("{action: Allow, protocol: TCP, destination: {ports: [80, '8000:8080', http]}}"),
        "valid"
    );
    assert!(policy_err("{action: Permit}").contains("spec.ingress[0].action"));
    assert!(policy_err("{action: Allow, destination: {ports: [80]}}").contains("protocol to TCP"));
    assert!(
        policy_err("{action: Allow, protocol: ICMP, destination: {ports: [80]}}")
            .contains("protocol to TCP")
    );
    assert!(policy_err("{action: Allow, protocol: TCP, icmp: {type: 8}}").contains("ICMP fields"));
    assert!(policy_err("{action: Allow, ipVersion: 5}").contains("ipVersion"));
    assert!(
        policy_err("{action: Allow, source: {nets: [10.0.0.0/40]}}").contains("source.nets[0]")
    );
    assert!(policy_err("{action: Allow, source: {selector: 'a == '}}").contains("source.selector"));
    let e = first_error(
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: p}\nspec:\n  ingress:\n  - {action: Allow, protocol: TCP, destination: {ports: ['9000:8000']}}\n",
    );
    assert!(
        e.contains("spec.ingress[0].destination.ports[0]") && e.contains("greater than"),
        "{e}"
    );
    let e = first_error(
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: p}\nspec:\n  ingress:\n  - {action: Allow, protocol: GRE}\n",
    );
    assert!(e.contains("protocol"), "{e}");
    let e = invalid(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec: {preDNAT: true, doNotTrack: true, applyOnForward: true}\n",
    );
    assert!(e.contains("cannot both"), "{e}");
    let e = invalid(
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: p}\nspec: {types: [Ingress], egress: [{action: Allow}]}\n",
    );
    assert!(e.contains("Egress"), "{e}");
}

#[test]
fn decode_errors_name_document_and_field() {
    let e = first_error(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: a}\nspec: {cidr: 10.0.0.0/8}\n---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: b}\nspec: {cidr: 10.0.0.0/8, blockSize: big}\n",
    );
    assert!(e.starts_with("document 2: spec.blockSize"), "{e}");
    let e = first_error(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: a}\nspec: {cidr: 10.0.0.0/8, colour: red}\n",
    );
    assert!(e.contains("unknown field `colour`"), "{e}");
    assert!(
        first_error("apiVersion: v1\nkind: IPPool\n")
            .contains("apiVersion \"v1\" is not supported")
    );
    assert!(
        first_error("apiVersion: projectcalico.org/v3\nkind: Pod\n")
            .contains("not a known resource kind")
    );
    assert!(first_error("apiVersion: projectcalico.org/v3\n").contains("kind is missing"));
    assert!(first_error("- a\n- b\n").contains("must be a mapping"));
    assert!(first_error("key: [unclosed\n").contains("invalid YAML"));
    assert!(first_error("{\"apiVersion\": ").contains("invalid JSON"));
}

#[test]
fn empty_documents_are_skipped() {
    let rs = decode_ok(
        "---\n---\napiVersion: projectcalico.org/v3\nkind: Profile\nmetadata: {name: a}\n---\n",
    );
    assert_eq!(rs.len(), 1);
    assert!(decode_ok("").is_empty());
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Arbitrary text never panics the decoder.
        #[test]
        fn decode_never_panics(s in "\\PC{0,200}") {
            let _ = decode_documents(&s);
        }

        /// Mutating a valid document never panics decoding or validation.
        #[test]
        fn mutated_fixture_never_panics(pos in 0usize..4000, byte in any::<u8>()) {
            let mut bytes = ALL_KINDS.as_bytes().to_vec();
            let p = pos % bytes.len();
            bytes[p] = byte;
            if let Ok(text) = String::from_utf8(bytes)
                && let Ok(docs) = decode_documents(&text) {
                    for mut r in docs.into_iter().flatten() {
                        r.set_defaults();
                        let _ = r.validate();
                    }
                }
        }

        /// Pools with any block size in range for their prefix validate; others do not.
        #[test]
        fn block_size_rule(prefix in 8u8..=32, bs in 0u8..=40) {
            let text = format!("apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {{name: p}}\nspec: {{cidr: 10.0.0.0/{prefix}, blockSize: {bs}}}\n");
            let r = decode_ok(&text).remove(0);
            let ok = (20..=32).contains(&bs) && bs >= prefix;
            prop_assert_eq!(r.validate().is_ok(), ok);
        }
    }
}

fn profile(i: usize) -> String {
    format!("apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata: {{name: p{i}}}\n")
}

#[test]
fn any_number_of_documents() {
    // serde-saphyr's default budget refused the 1,025th document.
    let text: Vec<String> = (0..5000).map(profile).collect();
    let rs = decode_numbered(&text.join("---\n")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rs.len(), 5000);
    assert_eq!(rs[4999].0, 5000);
    assert!(rs.iter().all(|(_, r)| r.is_ok()));
    let json: Vec<String> = (0..5000)
        .map(|i| format!(r#"{{"apiVersion":"projectcalico.org/v3","kind":"Profile","metadata":{{"name":"p{i}"}}}}"#))
        .collect();
    let rs = decode_numbered(&format!("[{}]", json.join(","))).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rs.len(), 5000);
    assert!(rs.iter().all(|(_, r)| r.is_ok()));
}

#[test]
fn big_lists_and_a_bad_item_in_the_middle() {
    let items: Vec<String> = (0..20_000)
        .map(|i| {
            let name = if i == 7000 { "Bad_Name".to_string() } else { format!("p{i}") };
            format!("- apiVersion: projectcalico.org/v3\n  kind: Profile\n  metadata:\n    name: {name}\n")
        })
        .collect();
    // calicoctl get -o yaml sorts keys: items come before kind.
    let text = format!(
        "{}---\napiVersion: projectcalico.org/v3\nitems:\n{}kind: ProfileList\nmetadata: {{}}\n",
        profile(0),
        items.concat()
    );
    let rs = decode_numbered(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rs.len(), 20_001);
    assert!(rs[1..].iter().all(|(n, _)| *n == 2));
    let bad: Vec<&DecodeError> = rs.iter().filter_map(|(_, r)| r.as_ref().err()).collect();
    assert_eq!(
        bad.len(),
        0,
        "names are checked by validation, not decoding"
    );
    let e = first_error(
        "apiVersion: projectcalico.org/v3\nkind: Profile\nitems: []\nmetadata: {name: a}\n",
    );
    assert!(e.contains("only a List or <Kind>List has items"), "{e}");
    let e = first_error("apiVersion: projectcalico.org/v3\nkind: List\nitems: {a: 1}\n");
    assert!(e.contains("items: a list is required"), "{e}");
    // One broken document among good ones: numbered, the others decoded.
    let mut docs: Vec<String> = (0..3000).map(profile).collect();
    docs[1500] =
        "apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata: {name: x, colour: red}\n"
            .into();
    let rs = decode_numbered(&docs.join("---\n")).unwrap_or_else(|e| panic!("{e}"));
    let bad: Vec<String> = rs
        .iter()
        .filter_map(|(_, r)| r.as_ref().err().map(|e| e.to_string()))
        .collect();
    assert_eq!(bad.len(), 1);
    assert!(bad[0].starts_with("document 1501: "), "{}", bad[0]);
}

/// Every error of decoding `text`, the one that stopped the reading first.
fn all_errors(text: &str) -> String {
    match decode_numbered(text) {
        Err(e) => e.to_string(),
        Ok(rs) => rs
            .iter()
            .filter_map(|(_, r)| r.as_ref().err().map(|e| e.to_string()))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

#[test]
fn limits_are_named_in_plain_words() {
    // An alias bomb: each level doubles the one before.
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..30 {
        let p = i - 1;
        bomb += &format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        );
    }
    let text = format!("{}---\n{bomb}", profile(1));
    let e = all_errors(&text);
    assert!(
        e.starts_with("document 2: YAML aliases (*name) expand beyond the safe limits"),
        "{e}"
    );
    assert!(!e.contains('{'), "no Debug dump: {e}");
    // Nesting deeper than MAX_DEPTH.
    let deep = format!(
        "{}---\nkind: {}1{}\n",
        profile(1),
        "[".repeat(300),
        "]".repeat(300)
    );
    let e = all_errors(&deep);
    assert!(
        e.starts_with("document 2: ") && e.contains("nested deeper than 64 levels"),
        "{e}"
    );
    let block: String = (0..100)
        .map(|i| format!("{}k{i}:\n", "  ".repeat(i)))
        .collect();
    let e = all_errors(&format!("{}---\n{block}", profile(1)));
    assert!(
        e.starts_with("document 2: ") && e.contains("nested deeper than 64 levels"),
        "{e}"
    );
    let deep = format!("{{\"kind\": {}1{}}}", "[".repeat(300), "]".repeat(300));
    let e = all_errors(&deep);
    assert!(e.contains("deeper than 128 levels"), "{e}");
    // Broken syntax in the middle names its document.
    let text = format!("{}---\n{}---\nkey: [unclosed\n", profile(1), profile(2));
    let e = all_errors(&text);
    assert!(e.starts_with("document 3: invalid YAML"), "{e}");
}
