use proptest::prelude::*;
use serde_json::json;

use super::*;

/// A Calico conflist as the installer writes it.
const CONFLIST: &str = r#"{
  "name": "k8s-pod-network",
  "cniVersion": "0.3.1",
  "plugins": [
    {
      "type": "calico",
      "log_level": "info",
      "log_file_path": "/var/log/calico/cni/cni.log",
      "datastore_type": "kubernetes",
      "nodename": "node-1",
      "mtu": 1440,
      "ipam": {
          "type": "calico-ipam",
          "assign_ipv4": "true",
          "assign_ipv6": "false",
          "ipv4_pools": ["10.244.0.0/16", "default-ipv4-ippool"],
          "ip_pools_label_selector_keys": ["zone"]
      },
      "container_settings": {"allow_ip_forwarding": true},
      "feature_control": {"floating_ips": true},
      "policy": {"type": "k8s"},
      "kubernetes": {"kubeconfig": "/etc/cni/net.d/calico-kubeconfig"},
      "endpoint_status_dir": "/var/run/calico/endpoint-status",
      "dataplane_options": {"type": "i.e. unknown", "nested": [1, {"x": null}]}
    },
    {"type": "portmap", "snat": true, "capabilities": {"portMappings": true}},
    {"type": "bandwidth", "capabilities": {"bandwidth": true}}
  ]
}"#;

/// What the runtime hands the plugin: a conflist entry with the list's
/// `name` and `cniVersion` injected, plus `runtimeConfig` for capabilities.
fn plugin_bytes(index: usize, runtime_config: Option<Value>) -> Vec<u8> {
    let list: Value = serde_json::from_str(CONFLIST).expect("conflist");
    let mut plugin = list["plugins"][index].clone();
    plugin["name"] = list["name"].clone();
    plugin["cniVersion"] = list["cniVersion"].clone();
    if let Some(rc) = runtime_config {
        plugin["runtimeConfig"] = rc;
    }
    serde_json::to_vec(&plugin).expect("encode")
}

fn parse(v: Value) -> Result<NetConf, CniError> {
    NetConf::parse(v.to_string().as_bytes())
}

#[test]
fn calico_conflist_entry() {
    let rc = json!({
        "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
        "io.kubernetes.cri.pod-annotations": {"cni.projectcalico.org/ipv4pools": "[\"pool-a\"]"},
        "bandwidth": {"ingressRate": 1000000, "egressBurst": 2000},
        "dns": {"servers": ["10.96.0.10"], "searches": ["svc.cluster.local"]},
        "ips": ["10.244.1.7/32"],
        "mac": "c2:11:22:33:44:55",
        "future": 1
    });
    let conf = NetConf::parse(&plugin_bytes(0, Some(rc))).expect("calico entry");
    assert_eq!(conf.cni_version.as_deref(), Some("0.3.1"));
    assert_eq!(conf.version(), Ok(CniVersion::V0_3_1));
    assert_eq!(conf.network_name(), "k8s-pod-network");
    assert_eq!(conf.plugin_type.as_deref(), Some("calico"));
    assert_eq!(conf.mtu, Some(1440));
    assert_eq!(conf.nodename.as_deref(), Some("node-1"));
    assert_eq!(conf.datastore_type.as_deref(), Some("kubernetes"));
    assert_eq!(conf.log_level.as_deref(), Some("info"));
    assert_eq!(
        conf.log_file_path.as_deref(),
        Some("/var/log/calico/cni/cni.log")
    );
    assert_eq!(
        conf.policy.as_ref().and_then(|p| p.policy_type.as_deref()),
        Some("k8s")
    );
    assert_eq!(
        conf.kubernetes
            .as_ref()
            .and_then(|k| k.kubeconfig.as_deref()),
        Some("/etc/cni/net.d/calico-kubeconfig")
    );
    let fc = conf.feature_control.clone().unwrap_or_default();
    assert!(fc.floating_ips && !fc.ip_addrs_no_ipam);
    assert!(
        conf.container_settings
            .as_ref()
            .is_some_and(|c| c.allow_ip_forwarding)
    );

    let ipam = conf.ipam.clone().expect("ipam");
    assert_eq!(ipam.ipam_type, "calico-ipam");
    assert_eq!(ipam.assign_ipv4, Some(true));
    assert_eq!(ipam.assign_ipv6, Some(false));
    assert!(ipam.assign_ipv4() && !ipam.assign_ipv6());
    assert_eq!(ipam.ipv4_pools, ["10.244.0.0/16", "default-ipv4-ippool"]);
    assert!(ipam.ipv6_pools.is_empty());
    assert_eq!(
        ipam.extra.get("ip_pools_label_selector_keys"),
        Some(&json!(["zone"]))
    );

    let rc = conf.runtime_config.clone().expect("runtimeConfig");
    assert_eq!(
        rc.port_mappings,
        [PortMapping {
            host_port: 8080,
            container_port: 80,
            protocol: "tcp".into(),
            host_ip: None,
        }]
    );
    assert_eq!(
        rc.pod_annotations
            .get("cni.projectcalico.org/ipv4pools")
            .map(String::as_str),
        Some("[\"pool-a\"]")
    );
    assert_eq!(
        rc.bandwidth.as_ref().and_then(|b| b.ingress_rate),
        Some(1_000_000)
    );
    assert_eq!(
        rc.bandwidth.as_ref().and_then(|b| b.egress_burst),
        Some(2000)
    );
    assert_eq!(
        rc.dns.as_ref().map(|d| d.servers.clone()),
        Some(vec!["10.96.0.10".to_string()])
    );
    assert_eq!(rc.ips, ["10.244.1.7/32"]);
    assert_eq!(rc.mac.as_deref(), Some("c2:11:22:33:44:55"));
    assert_eq!(rc.extra.get("future"), Some(&json!(1)));

    // unknown fields are kept, and written back unchanged
    assert_eq!(
        conf.extra.get("endpoint_status_dir"),
        Some(&json!("/var/run/calico/endpoint-status"))
    );
    let original: Value = serde_json::from_slice(&plugin_bytes(0, None)).expect("json");
    let mut written = conf.to_value();
    if let Some(obj) = written.as_object_mut() {
        obj.remove("runtimeConfig");
    }
    assert_eq!(written, original);
    // assign flags are written back as Calico's strings
    assert_eq!(written["ipam"]["assign_ipv4"], json!("true"));
}

#[test]
fn other_plugins_in_the_list_parse_too() {
    let portmap = NetConf::parse(&plugin_bytes(1, None)).expect("portmap");
    assert_eq!(portmap.plugin_type.as_deref(), Some("portmap"));
    assert_eq!(portmap.extra.get("snat"), Some(&json!(true)));
    assert_eq!(
        portmap.extra.get("capabilities"),
        Some(&json!({"portMappings": true}))
    );
    assert!(portmap.ipam.is_none());
}

#[test]
fn assign_flags_accept_strings_and_booleans() {
    let base =
        |ipam: Value| json!({"cniVersion": "1.0.0", "name": "n", "type": "calico", "ipam": ipam});
    let conf = parse(base(json!({"type": "calico-ipam"}))).expect("defaults");
    let ipam = conf.ipam_or_default();
    assert!(ipam.assign_ipv4() && !ipam.assign_ipv6());
    assert_eq!((ipam.assign_ipv4, ipam.assign_ipv6), (None, None));

    let conf = parse(base(
        json!({"type": "calico-ipam", "assign_ipv4": false, "assign_ipv6": true}),
    ))
    .expect("booleans");
    let ipam = conf.ipam_or_default();
    assert!(!ipam.assign_ipv4() && ipam.assign_ipv6());

    let conf = parse(base(
        json!({"type": "calico-ipam", "assign_ipv4": "FALSE", "assign_ipv6": "True"}),
    ))
    .expect("mixed case");
    let ipam = conf.ipam_or_default();
    assert!(!ipam.assign_ipv4() && ipam.assign_ipv6());

    let conf = parse(base(
        json!({"type": "calico-ipam", "assign_ipv4": null, "ipv4_pools": null}),
    ))
    .expect("nulls");
    assert!(conf.ipam_or_default().assign_ipv4());

    for bad in [json!("yes"), json!(1), json!([])] {
        let e =
            parse(base(json!({"type": "calico-ipam", "assign_ipv6": bad}))).expect_err("bad flag");
        assert_eq!(e.code, 6, "{e:?}");
        assert!(e.msg.contains("want \"true\" or \"false\""), "{}", e.msg);
    }

    // no ipam section at all: Calico's defaults
    let conf =
        parse(json!({"cniVersion": "1.0.0", "name": "n", "type": "calico"})).expect("no ipam");
    assert!(conf.ipam.is_none());
    assert!(conf.ipam_or_default().assign_ipv4());
    assert!(!conf.ipam_or_default().assign_ipv6());
}

#[test]
fn host_local_subnet() {
    let conf = parse(json!({
        "cniVersion": "0.4.0", "name": "n", "type": "calico",
        "ipam": {"type": "host-local", "subnet": "usePodCidr", "ranges": [[{"subnet": "10.0.0.0/24"}]]}
    }))
    .expect("host-local");
    let ipam = conf.ipam_or_default();
    assert_eq!(ipam.ipam_type, "host-local");
    assert_eq!(ipam.subnet.as_deref(), Some("usePodCidr"));
    assert!(ipam.extra.contains_key("ranges"));
}

#[test]
fn bad_json_is_code_6() {
    for bad in [
        &b""[..],
        b"{",
        b"not json",
        b"[]",
        b"42",
        b"null",
        b"\xff\xfe",
        br#"{"cniVersion": 1, "name": "n", "type": "t"}"#,
        br#"{"cniVersion": "1.0.0", "name": "n", "type": "t", "mtu": "1500"}"#,
        br#"{"cniVersion": "1.0.0", "name": "n", "type": "t", "mtu": -1}"#,
        br#"{"cniVersion": "1.0.0", "name": "n", "type": "t", "ipam": []}"#,
        br#"{"cniVersion": "1.0.0", "name": "n", "name": "m", "type": "t"}"#,
    ] {
        let e = NetConf::parse(bad).expect_err(&String::from_utf8_lossy(bad));
        assert_eq!(e.code, 6, "{}: {e:?}", String::from_utf8_lossy(bad));
        assert!(
            e.msg.starts_with("failed to decode network config"),
            "{}",
            e.msg
        );
    }
}

#[test]
fn missing_required_fields_are_code_7() {
    let full = json!({"cniVersion": "1.0.0", "name": "net", "type": "calico"});
    for field in ["cniVersion", "name", "type"] {
        for replacement in [None, Some(json!("")), Some(Value::Null)] {
            let mut v = full.clone();
            match &replacement {
                None => {
                    v.as_object_mut().map(|o| o.remove(field));
                }
                Some(r) => v[field] = r.clone(),
            }
            let e = parse(v).expect_err(field);
            assert_eq!(e.code, 7, "{field} {replacement:?}");
            assert_eq!(
                e.msg,
                format!("network config is missing required field {field:?}")
            );
        }
    }
    let e = parse(json!({})).expect_err("empty");
    assert!(e.msg.contains("cniVersion"));
}

#[test]
fn network_name_rules() {
    for ok in ["k8s-pod-network", "a", "net_1.2", "0net"] {
        assert_eq!(validate_network_name(ok), Ok(()), "{ok}");
    }
    for bad in ["-net", "my net", "net/1", "_x", "né"] {
        let e =
            parse(json!({"cniVersion": "1.0.0", "name": bad, "type": "calico"})).expect_err(bad);
        assert_eq!(e.code, 7, "{bad}");
        assert_eq!(e.msg, "invalid characters found in network name");
    }
}

#[test]
fn unsupported_version_is_left_to_version() {
    let conf =
        parse(json!({"cniVersion": "0.2.0", "name": "n", "type": "calico"})).expect("parses");
    assert_eq!(conf.version().map_err(|e| e.code), Err(1));
}

#[test]
fn prev_result_is_read() {
    let conf = parse(json!({
        "cniVersion": "0.4.0", "name": "n", "type": "calico",
        "prevResult": {
            "cniVersion": "0.4.0",
            "interfaces": [{"name": "cali0"}],
            "ips": [{"version": "4", "address": "10.0.0.5/32", "interface": 0}]
        }
    }))
    .expect("prevResult");
    let prev = conf.prev_result().expect("decodes").expect("present");
    assert_eq!(prev.ips.len(), 1);
    assert_eq!(prev.interfaces[0].name, "cali0");

    let none =
        parse(json!({"cniVersion": "1.0.0", "name": "n", "type": "calico", "prevResult": null}))
            .expect("null prevResult");
    assert_eq!(none.prev_result(), Ok(None));

    let bad = parse(
        json!({"cniVersion": "1.0.0", "name": "n", "type": "calico", "prevResult": {"ips": 3}}),
    )
    .expect("raw is kept");
    assert_eq!(bad.prev_result().map_err(|e| e.code), Err(6));
}

#[test]
fn args_cni_and_others() {
    let conf = parse(json!({
        "cniVersion": "1.0.0", "name": "n", "type": "calico",
        "args": {
            "cni": {"ips": ["10.0.0.9"], "mac": "aa:bb:cc:dd:ee:ff", "infinibandGUID": "x"},
            "labels": {"appVersion": "1.0"},
            "org.apache.mesos": {"network_info": {"name": "n"}}
        },
        "dns": {"nameservers": ["10.1.0.1"], "search": ["example.com"]}
    }))
    .expect("args");
    let args = conf.args.clone().expect("args");
    let cni = args.cni.expect("args.cni");
    assert_eq!(cni.ips, ["10.0.0.9"]);
    assert_eq!(cni.mac.as_deref(), Some("aa:bb:cc:dd:ee:ff"));
    assert!(cni.extra.contains_key("infinibandGUID"));
    assert!(args.extra.contains_key("labels") && args.extra.contains_key("org.apache.mesos"));
    let dns = conf.dns.expect("dns");
    assert_eq!(dns.nameservers, ["10.1.0.1"]);
    assert_eq!(dns.search, ["example.com"]);
}

#[test]
fn gc_attachments_both_spellings() {
    let att =
        json!([{"containerID": "c1", "ifname": "eth0"}, {"containerID": "c2", "ifname": "net1"}]);
    let want = vec![
        GcAttachment {
            container_id: "c1".into(),
            ifname: "eth0".into(),
        },
        GcAttachment {
            container_id: "c2".into(),
            ifname: "net1".into(),
        },
    ];
    let base = json!({"cniVersion": "1.1.0", "name": "n", "type": "calico"});

    let mut both = base.clone();
    both["cni.dev/valid-attachments"] = att.clone();
    both["cni.dev/attachments"] = att.clone();
    let conf = parse(both).expect("both keys, as libcni 1.2.3 sends");
    assert_eq!(conf.gc_attachments(), Ok(Some(want.clone())));

    let mut alt = base.clone();
    alt["cni.dev/attachments"] = att;
    let conf = parse(alt).expect("alt key");
    assert_eq!(conf.gc_attachments(), Ok(Some(want)));

    assert_eq!(
        parse(base.clone()).expect("none").gc_attachments(),
        Ok(None)
    );

    let mut bad = base;
    bad["cni.dev/attachments"] = json!("nope");
    let conf = parse(bad).expect("kept raw");
    assert_eq!(conf.gc_attachments().map_err(|e| e.code), Err(6));
}

/// Arbitrary JSON objects shaped like network configs: known keys with
/// values of any type, nested.
fn arb_conf_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("cniVersion"),
        Just("name"),
        Just("type"),
        Just("mtu"),
        Just("ipam"),
        Just("assign_ipv4"),
        Just("assign_ipv6"),
        Just("ipv4_pools"),
        Just("runtimeConfig"),
        Just("portMappings"),
        Just("io.kubernetes.cri.pod-annotations"),
        Just("args"),
        Just("cni"),
        Just("prevResult"),
        Just("policy"),
        Just("feature_control"),
        Just("cni.dev/valid-attachments"),
        Just("dns"),
        Just("zz"),
    ]
    .prop_map(str::to_string);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // floats that survive serde_json's text round trip exactly (its default
        // float parser is not exact for every f64; that is serde_json's, not ours)
        any::<i32>().prop_map(|i| Value::from(f64::from(i) / 8.0)),
        prop_oneof![
            Just("true".to_string()),
            Just("1.0.0".to_string()),
            "\\PC{0,8}"
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((key.clone(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn parse_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = NetConf::parse(&bytes);
    }

    #[test]
    fn parse_never_panics_on_config_shaped_json(mut v in arb_conf_json(), complete in any::<bool>()) {
        // half the time, make the required fields valid so the rest gets exercised
        if complete && let Some(obj) = v.as_object_mut() {
            obj.insert("cniVersion".into(), json!("1.1.0"));
            obj.insert("name".into(), json!("net"));
            obj.insert("type".into(), json!("calico"));
        }
        let text = v.to_string();
        if let Ok(conf) = NetConf::parse(text.as_bytes()) {
            let _ = conf.version();
            let _ = conf.prev_result();
            let _ = conf.gc_attachments();
            // what parses writes back to something that parses the same
            let again = NetConf::parse(conf.to_value().to_string().as_bytes());
            prop_assert_eq!(again, Ok(conf));
        }
    }

    #[test]
    fn valid_minimal_configs_parse(
        name in "[a-zA-Z0-9][a-zA-Z0-9_.-]{0,20}",
        ty in "[a-z-]{1,12}",
        v in prop::sample::select(crate::version::SUPPORTED),
        extra in "x_[a-z_]{1,10}",
    ) {
        let text = json!({"cniVersion": v, "name": name, "type": ty, extra: {"k": [1, "x"]}}).to_string();
        let conf = NetConf::parse(text.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert!(conf.version().is_ok());
        prop_assert_eq!(conf.network_name(), name.as_str());
    }
}
