//! Hostile network configurations on the plugins' stdin (issue 17 point 4):
//! a 100 MiB config, invalid UTF-8, JSON nested 100,000 and 1,000,000
//! deep. Each, for both `calico` and `calico-ipam`, gets a CNI decoding
//! failure (code 6) naming what was wrong, exits without a signal, and
//! makes nothing: no datastore opened (the SQLite file the config names is
//! never created), no link in the pod's namespace (when run as root).
//!
//! Memory bound: the plugin's peak RSS (`ru_maxrss` from wait4, through
//! GNU time) stays under 32 MiB whatever it is sent; stdin is read up to
//! 16 MiB ([`calico_cni::MAX_CONFIG`]), so a 100 MiB config is refused
//! after 16 MiB. Each peak is printed.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use calico_testutil::{TestNetns, is_root};
use serde_json::Value;

const PLUGINS: [&str; 2] = [
    env!("CARGO_BIN_EXE_calico"),
    env!("CARGO_BIN_EXE_calico-ipam"),
];

/// The stated memory bound of a plugin process, in KiB.
const BOUND_KIB: u64 = 32 * 1024;

struct Run {
    answer: Value,
    exit: Option<i32>,
    peak_kib: u64,
}

/// Runs `plugin` for ADD under GNU time with `stdin` (written from a
/// thread, a broken pipe ignored: the plugin may stop reading), the
/// config's datastore in `dir` and the pod namespace `netns`.
fn run(plugin: &str, dir: &Path, netns: &str, stdin: Vec<u8>) -> Run {
    let time_out = dir.join("time.out");
    let mut child = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&time_out)
        .arg(plugin)
        .env("CNI_COMMAND", "ADD")
        .env("CNI_CONTAINERID", "hostile-stdin")
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", "/nonexistent")
        .env("DATASTORE_TYPE", "local")
        .env("DATASTORE_PATH", dir.join("ds.db"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        for chunk in stdin.chunks(1 << 20) {
            if pipe.write_all(chunk).is_err() {
                break;
            }
        }
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let answer: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{plugin}: not a CNI answer ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    // GNU time writes the peak on the last line (after "Command exited
    // with non-zero status").
    let peak_kib = std::fs::read_to_string(&time_out)
        .unwrap()
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap();
    Run {
        answer,
        exit: out.status.code(),
        peak_kib,
    }
}

/// A config that would be served were it not for `pad`, spliced in as the
/// value of an extra field.
fn config(pad: &[u8]) -> Vec<u8> {
    let mut c = br#"{"cniVersion":"1.0.0","name":"k8s-pod-network","type":"calico","nodename":"n1","ipam":{"type":"calico-ipam"},"x":"#.to_vec();
    c.extend_from_slice(pad);
    c.push(b'}');
    c
}

fn nested(depth: usize) -> Vec<u8> {
    let mut pad = vec![b'['; depth];
    pad.extend(std::iter::repeat_n(b']', depth));
    config(&pad)
}

fn hostile_inputs() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let mut big = b"\"".to_vec();
    big.resize(100 << 20, b'a');
    big.push(b'"');
    vec![
        ("a 100 MiB config", config(&big), "larger than 16 MiB"),
        (
            "invalid UTF-8",
            config(b"\"\xff\xfe\xc0\xaf\""),
            "failed to decode network config",
        ),
        (
            "JSON nested 100,000 deep",
            nested(100_000),
            "recursion limit exceeded",
        ),
        (
            "JSON nested 1,000,000 deep",
            nested(1_000_000),
            "recursion limit exceeded",
        ),
    ]
}

#[test]
fn hostile_configs_get_a_decoding_failure_in_bounded_memory_and_make_nothing() {
    let netns = is_root().then(|| TestNetns::new("hstdin"));
    if netns.is_none() {
        println!("not root: the pod namespace is a path that does not exist");
    }
    let ns_path = netns
        .as_ref()
        .map(|n| n.path().display().to_string())
        .unwrap_or_else(|| "/nonexistent/netns".into());
    for (what, input, says) in hostile_inputs() {
        for plugin in PLUGINS {
            let dir = tempfile::tempdir().unwrap();
            let name = Path::new(plugin).file_name().unwrap().to_string_lossy();
            let r = run(plugin, dir.path(), &ns_path, input.clone());
            println!(
                "{name}, {what} ({} KiB): peak RSS {} KiB (bound {BOUND_KIB}); {}",
                input.len() / 1024,
                r.peak_kib,
                r.answer
            );
            assert_eq!(r.exit, Some(1), "{name}, {what}: exit {:?}", r.exit);
            assert_eq!(r.answer["code"], 6, "{name}, {what}: {}", r.answer);
            let msg = r.answer["msg"].as_str().unwrap_or_default();
            assert!(msg.contains(says), "{name}, {what}: {msg}");
            assert!(
                r.peak_kib <= BOUND_KIB,
                "{name}, {what}: peak RSS {} KiB over {BOUND_KIB}",
                r.peak_kib
            );
            assert!(
                !dir.path().join("ds.db").exists(),
                "{name}, {what}: the datastore was opened"
            );
            if let Some(ns) = &netns {
                let links = ns.exec(&["ip", "-o", "link", "show"]);
                assert_eq!(links.lines().count(), 1, "{name}, {what}: {links}");
            }
        }
    }
}

/// A config of exactly the limit is read whole (and refused for what it
/// says, not for its size); one byte more is refused for its size.
#[test]
fn the_limit_is_16_mib() {
    let at = |len: usize| {
        let mut pad = b"\"".to_vec();
        let frame = config(b"\"\"").len();
        pad.resize(len - frame + 1, b'a');
        pad.push(b'"');
        let c = config(&pad);
        assert_eq!(c.len(), len);
        c
    };
    let limit = usize::try_from(calico_cni::MAX_CONFIG).unwrap();
    let r = calico_cni::read_config(&at(limit)[..]).unwrap();
    assert_eq!(r.len(), limit);
    let e = calico_cni::read_config(&at(limit + 1)[..]).unwrap_err();
    assert_eq!(e.code, 6);
    assert!(e.msg.contains("larger than 16 MiB"), "{}", e.msg);
}
