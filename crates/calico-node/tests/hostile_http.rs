//! Hostile clients against the health and metrics servers (issue 17), run in
//! process on 127.0.0.1 with the library's own `serve` functions: an
//! oversized request line, 1,000 idle connections, a slow-loris client,
//! methods other than GET and HEAD, a malformed request line; and the
//! metrics body read as a Prometheus scraper reads it.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use calico_node::health::{self, Health};
use calico_node::metrics::Metrics;

fn health_server(ready: bool) -> u16 {
    let h = Health::new();
    if ready {
        h.set_ready(true, "in sync");
    }
    health::serve(h, "127.0.0.1", 0).unwrap()
}

/// Sends `raw` and reads the answer to the end (the server closes).
fn exchange(port: u16, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(raw).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn get(port: u16, path: &str) -> String {
    exchange(
        port,
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes(),
    )
}

/// A number field of `/proc/self/status` (`VmRSS:` in KiB, `Threads:`).
fn status(name: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap()
}

/// `VmRSS` and `VmHWM` of this process, in KiB.
fn memory() -> (u64, u64) {
    (status("VmRSS:"), status("VmHWM:"))
}

#[test]
fn answers_are_as_before() {
    let ready = health_server(true);
    let r = get(ready, "/readiness");
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(r.ends_with("\r\n\r\nready: in sync\n"), "{r}");
    let r = get(ready, "/liveness");
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(r.ends_with("\r\n\r\nlive: in sync\n"), "{r}");
    let starting = health_server(false);
    let r = get(starting, "/readiness");
    assert!(r.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{r}");
    assert!(r.ends_with("\r\n\r\nnot ready: starting\n"), "{r}");
    let r = get(starting, "/bgp-readiness");
    assert!(r.starts_with("HTTP/1.1 503 "), "{r}");
    assert!(
        r.ends_with("\r\n\r\nthe BGP speaker is not running\n"),
        "{r}"
    );
    let r = get(starting, "/nothing");
    assert!(r.starts_with("HTTP/1.1 404 "), "{r}");
    // HEAD: the status and length, no body.
    let r = exchange(ready, b"HEAD /liveness HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(r.contains("content-length: 14\r\n"), "{r}");
    assert!(r.ends_with("\r\n\r\n"), "{r}");
}

#[test]
fn a_64_mib_request_without_newline_is_refused_in_bounded_memory() {
    let port = health_server(true);
    let (rss0, hwm0) = memory();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"GET /").unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0usize;
    while sent < 64 << 20 {
        match s.write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // The server gave up on us: what we want.
            Err(_) => break,
        }
    }
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    let (rss1, hwm1) = memory();
    println!(
        "sent {} KiB; VmRSS {rss0} -> {rss1} KiB, VmHWM {hwm0} -> {hwm1} KiB; answer {:?}",
        sent / 1024,
        answer.lines().next().unwrap_or("(closed)")
    );
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431 "),
        "{answer}"
    );
    let bound = 32 * 1024;
    assert!(rss1 <= rss0 + bound, "VmRSS grew from {rss0} to {rss1} KiB");
    assert!(hwm1 <= hwm0 + bound, "VmHWM grew from {hwm0} to {hwm1} KiB");
    // Still serving.
    assert!(get(port, "/liveness").starts_with("HTTP/1.1 200 "));
}

#[test]
fn a_thousand_idle_connections_do_not_keep_a_probe_out() {
    let port = health_server(true);
    // Served from the first probe on: the server's runtime thread exists.
    assert!(get(port, "/liveness").starts_with("HTTP/1.1 200 "));
    let (threads0, (rss0, _)) = (status("Threads:"), memory());
    let mut idle = Vec::new();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    for _ in 0..1000 {
        if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            idle.push(s);
        }
    }
    // Give the server the time to accept them all (it would start a thread
    // for each, were it to).
    std::thread::sleep(Duration::from_millis(500));
    let (threads1, (rss1, _)) = (status("Threads:"), memory());
    println!(
        "{} idle connections open; threads {threads0} -> {threads1}, VmRSS {rss0} -> {rss1} KiB",
        idle.len()
    );
    assert!(idle.len() >= 900, "only {} connections opened", idle.len());
    // No thread per connection (other tests of this file may start a few).
    assert!(
        threads1 <= threads0 + 16,
        "threads {threads0} -> {threads1}"
    );
    // A probe with a deadline longer than the header timeout (5 s) that
    // frees the slots the idle clients hold: retried as a prober retries.
    let started = Instant::now();
    let deadline = started + Duration::from_secs(20);
    let answered = loop {
        let r = get(port, "/readiness");
        if r.starts_with("HTTP/1.1 200 ") {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    println!("probe answered after {:?}", started.elapsed());
    assert!(answered, "no answer within 20 s");
    // The idle clients were closed (at once over the cap, at the header
    // timeout under it): none is left holding the server.
    let mut closed = 0;
    for s in &mut idle {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut b = [0u8; 1];
        if matches!(s.read(&mut b), Ok(0) | Err(_)) {
            closed += 1;
        }
    }
    assert_eq!(closed, idle.len());
}

#[test]
fn a_slow_loris_is_cut_off() {
    let port = health_server(true);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let started = Instant::now();
    let head = b"GET /liveness HTTP/1.1\r\nX-Slow: ";
    let mut sent = 0usize;
    let mut answer = Vec::new();
    let cut = loop {
        if started.elapsed() > Duration::from_secs(40) {
            break false;
        }
        let byte = head.get(sent).copied().unwrap_or(b'a');
        if s.write_all(&[byte]).is_err() {
            break true;
        }
        sent += 1;
        // One byte a second: the read waits that second.
        let mut b = [0u8; 512];
        match s.read(&mut b) {
            Ok(0) => break true,
            Ok(n) => answer.extend_from_slice(&b[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break true,
        }
    };
    let answer = String::from_utf8_lossy(&answer);
    println!(
        "slow client cut off after {:?} and {sent} bytes; answer {answer:?}",
        started.elapsed()
    );
    assert!(cut, "still connected after 40 s");
    assert!(!answer.contains(" 200 "), "{answer}");
}

#[test]
fn only_get_and_head() {
    let port = health_server(true);
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"] {
        let r = exchange(
            port,
            format!("{method} /liveness HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
                .as_bytes(),
        );
        assert!(r.starts_with("HTTP/1.1 405 "), "{method}: {r}");
        assert!(r.contains("allow: GET, HEAD\r\n"), "{method}: {r}");
    }
    let metrics = health::serve_metrics(Arc::new(Metrics::default()), "127.0.0.1", 0).unwrap();
    let r = exchange(metrics, b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 405 "), "{r}");
}

#[test]
fn a_malformed_request_line_gets_400() {
    let port = health_server(true);
    for raw in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET /liveness HTTP/9.9\r\n\r\n",
        b"GET\x01/liveness HTTP/1.1\r\n\r\n",
        b"GET /liveness HTTP/1.1\r\nBad Header\r\n\r\n",
    ] {
        let r = exchange(port, raw);
        assert!(
            r.starts_with("HTTP/1.1 400 "),
            "{:?}: {r}",
            String::from_utf8_lossy(raw)
        );
    }
    assert!(get(port, "/liveness").starts_with("HTTP/1.1 200 "));
}

/// Every line of `text` as a Prometheus text-format (0.0.4) parser reads
/// it: family name → type, and the samples' names and values.
fn parse_prometheus(text: &str) -> (HashMap<String, String>, Vec<(String, f64)>) {
    let mut types = HashMap::new();
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(
                ["counter", "gauge", "summary", "histogram", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(
                types.insert(name.to_string(), kind.to_string()).is_none(),
                "{line}"
            );
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#'), "{line}");
        let (series, value) = line.rsplit_once(' ').unwrap();
        let name = series.split('{').next().unwrap();
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        if let Some(labels) = series.strip_prefix(name)
            && !labels.is_empty()
        {
            assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
        }
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap(),
        };
        // A sample belongs to a family declared before it.
        let family = ["_sum", "_count", "_bucket"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| types.contains_key(*f)))
            .unwrap_or(name);
        assert!(types.contains_key(family), "{line}: no TYPE for {family}");
        samples.push((name.to_string(), value));
    }
    (types, samples)
}

#[test]
fn metrics_parse_as_prometheus_text_with_felix_names() {
    let m = Arc::new(Metrics::new("node-h"));
    m.observe_apply(Duration::from_millis(800));
    m.observe_apply(Duration::from_millis(4));
    Metrics::inc(&m.errors);
    m.set_counts(2, 5, 1);
    let port = health::serve_metrics(m, "127.0.0.1", 0).unwrap();
    let r = get(port, "/metrics");
    let (head, body) = r.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("content-type: text/plain; version=0.0.4; charset=utf-8\r\n"),
        "{head}"
    );
    let (types, samples) = parse_prometheus(body);
    for (name, kind) in [
        ("felix_int_dataplane_apply_time_seconds", "summary"),
        ("felix_int_dataplane_initial_resync_time_seconds", "gauge"),
        ("felix_int_dataplane_failures", "counter"),
        ("felix_active_local_endpoints", "gauge"),
        ("felix_cluster_num_hosts", "gauge"),
        ("felix_cluster_num_workload_endpoints", "gauge"),
        ("felix_host", "gauge"),
    ] {
        assert_eq!(
            types.get(name).map(String::as_str),
            Some(kind),
            "{name}: {body}"
        );
    }
    assert!(body.contains("# TYPE felix_int_dataplane_apply_time_seconds summary\n"));
    // Every name is Felix's or carries calico-rs's prefix.
    for name in types.keys() {
        assert!(
            name.starts_with("felix_") || name.starts_with("calico_rs_"),
            "{name}"
        );
    }
    let value = |n: &str| samples.iter().find(|(s, _)| s == n).map(|(_, v)| *v);
    assert_eq!(value("felix_int_dataplane_failures"), Some(1.0));
    assert_eq!(
        value("felix_int_dataplane_apply_time_seconds_count"),
        Some(1.0)
    );
    assert_eq!(value("felix_cluster_num_hosts"), Some(2.0));
    let r = get(port, "/other");
    assert!(r.starts_with("HTTP/1.1 404 "), "{r}");
}
