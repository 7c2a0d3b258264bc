//! `calicoctl apply -f` of big files, against writing the same keys and
//! values with the datastores' own tools, in one run.
//!
//! `cargo bench -p calicoctl --bench apply` (needs etcd, etcdctl, sqlite3
//! and GNU time; a few minutes on 2 cores).
//!
//! Workloads (one YAML file each, as users write them):
//! - 10,000 WorkloadEndpoints (10 namespaces), as the CNI plugin writes them;
//! - 50,000 GlobalNetworkSet nets as one set: what a threat feed makes (Calico
//!   Enterprise syncs each IPSet `GlobalThreatFeed` into one
//!   GlobalNetworkSet holding the whole feed, as a deny-list), and the
//!   biggest resource (about 0.8 MiB) within the 1 MiB one resource may be;
//! - the same 50,000 nets as 50 sets of 1,000, as sets kept by hand.
//!
//! For each: the time of `calicoctl validate -f FILE` (reading and checking
//! alone, the floor of any apply); then, on a fresh store, the wall time and
//! peak RSS (`ru_maxrss` from wait4, through GNU time) of `calicoctl apply
//! -f FILE` creating them and of a second apply updating them, on the local
//! store (a SQLite file: the whole file in one transaction) and on a real
//! etcd started by the bench (transactions of 128). The references write
//! exactly the keys and values calicoctl stored (read back from etcd): on
//! etcd, `etcdctl txn` processes fed from stdin with batches of 128 puts
//! (etcd's `--max-txn-ops`) and at most 1 MiB, one after the other; on
//! SQLite, one `sqlite3` process inserting every row into a fresh WAL file
//! in one transaction. Ratios are calicoctl / reference. Not run by CI.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use calico_testutil::EtcdServer;

const ENDPOINTS: usize = 10_000;
const NETS: usize = 50_000;

fn wep(i: usize) -> String {
    format!(
        "apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata:
  name: node--1-k8s-pod{i}-eth0
  namespace: ns{ns}
  labels:
    app: web
    projectcalico.org/namespace: ns{ns}
    projectcalico.org/orchestrator: k8s
    projectcalico.org/serviceaccount: default
spec:
  orchestrator: k8s
  node: node-1
  containerID: c{i:x}
  pod: pod{i}
  endpoint: eth0
  serviceAccountName: default
  ipNetworks:
  - 10.{a}.{b}.{c}/32
  profiles:
  - kns.ns{ns}
  - ksa.ns{ns}.default
  interfaceName: cali{i:011x}
  mac: ee:ee:ee:ee:ee:ee
",
        ns = i % 10,
        a = 64 + i / 65536,
        b = (i / 256) % 256,
        c = i % 256,
    )
}

fn global_network_set(name: &str, first: usize, nets: usize) -> String {
    let nets: String = (first..first + nets)
        .map(|i| format!("  - 10.{}.{}.{}/32\n", i / 65536, (i / 256) % 256, i % 256))
        .collect();
    format!(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata:\n  name: {name}\n  labels: {{feed: blocklist}}\nspec:\n  nets:\n{nets}"
    )
}

/// One process's wall time and peak RSS.
#[derive(Clone, Copy, Default)]
struct Cost {
    wall: Duration,
    rss_kib: u64,
}

impl Cost {
    /// Several processes one after the other: times add, the peak is the largest.
    fn then(self, o: Cost) -> Cost {
        Cost {
            wall: self.wall + o.wall,
            rss_kib: self.rss_kib.max(o.rss_kib),
        }
    }
}

/// Runs `cmd` under GNU time (wait4's ru_maxrss), with `input` on stdin.
fn measure(program: &str, args: &[&str], env: &[(&str, &str)], input: Option<&[u8]>) -> Cost {
    let rss_file = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = Command::new("/usr/bin/time");
    cmd.arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(rss_file.path())
        .arg(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let t = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program} under /usr/bin/time: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.unwrap_or_default());
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let wall = t.elapsed();
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let rss_kib = std::fs::read_to_string(rss_file.path())
        .ok()
        .and_then(|s| s.lines().last().and_then(|l| l.trim().parse().ok()))
        .unwrap_or(0);
    Cost { wall, rss_kib }
}

fn calicoctl(env: &[(&str, &str)], file: &Path) -> Cost {
    let file = file.display().to_string();
    measure(
        env!("CARGO_BIN_EXE_calicoctl"),
        &["apply", "-f", &file],
        env,
        None,
    )
}

/// The keys and values under `prefix`, as stored (values are one-line JSON).
fn etcd_dump(etcd: &EtcdServer, prefix: &str) -> Vec<(String, String)> {
    let out = etcd
        .etcdctl(&["get", "--prefix", prefix])
        .unwrap_or_else(|e| panic!("{e}"));
    let lines: Vec<&str> = out.lines().collect();
    lines
        .chunks(2)
        .filter_map(|kv| match kv {
            [k, v] => Some((k.to_string(), v.to_string())),
            _ => None,
        })
        .collect()
}

/// etcdctl txn processes, one per batch of at most 128 puts and 1 MiB.
fn etcdctl_reference(etcd: &EtcdServer, kvs: &[(String, String)]) -> Cost {
    let endpoint = etcd.endpoint();
    let mut total = Cost::default();
    let mut batch = String::new();
    let mut n = 0;
    let mut flush = |batch: &mut String, n: &mut usize| {
        if *n == 0 {
            return;
        }
        let input = format!("\n{batch}\n\n");
        total = total.then(measure(
            "etcdctl",
            &["--endpoints", &endpoint, "txn"],
            &[("ETCDCTL_API", "3")],
            Some(input.as_bytes()),
        ));
        batch.clear();
        *n = 0;
    };
    for (k, v) in kvs {
        assert!(!v.contains('\''), "values are JSON without single quotes");
        let line = format!("put {k} '{v}'\n");
        if n == 128 || (n > 0 && batch.len() + line.len() > 1 << 20) {
            flush(&mut batch, &mut n);
        }
        batch.push_str(&line);
        n += 1;
    }
    flush(&mut batch, &mut n);
    total
}

/// One sqlite3 process inserting every row in one transaction (WAL, as the local store).
fn sqlite_reference(dir: &Path, kvs: &[(String, String)]) -> Cost {
    let db = dir.join("reference.db").display().to_string();
    let mut sql = String::from(
        "PRAGMA journal_mode=WAL;\nCREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB, create_rev INTEGER, mod_rev INTEGER);\nBEGIN;\n",
    );
    for (k, v) in kvs {
        sql += &format!(
            "INSERT INTO kv VALUES ('{}', '{}', 1, 1);\n",
            k.replace('\'', "''"),
            v.replace('\'', "''")
        );
    }
    sql += "COMMIT;\n";
    measure("sqlite3", &[&db], &[], Some(sql.as_bytes()))
}

struct Row {
    workload: &'static str,
    /// `calicoctl validate -f`: reading and checking alone, no store.
    validate: Cost,
    store: &'static str,
    create: Cost,
    update: Cost,
    reference: Cost,
    reference_name: &'static str,
}

fn run(workload: &'static str, text: &str, prefix: &str, rows: &mut Vec<Row>) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("resources.yaml");
    std::fs::write(&file, text).unwrap_or_else(|e| panic!("{e}"));

    let path = file.display().to_string();
    let validate = measure(
        env!("CARGO_BIN_EXE_calicoctl"),
        &["validate", "-f", &path],
        &[],
        None,
    );
    // etcd first: what it stores is the references' input.
    let etcd = EtcdServer::start();
    let endpoint = etcd.endpoint();
    let env = [
        ("DATASTORE_TYPE", "etcdv3"),
        ("ETCD_ENDPOINTS", endpoint.as_str()),
    ];
    let create = calicoctl(&env, &file);
    let update = calicoctl(&env, &file);
    let kvs = etcd_dump(&etcd, prefix);
    drop(etcd);
    let fresh = EtcdServer::start();
    let reference = etcdctl_reference(&fresh, &kvs);
    assert_eq!(etcd_dump(&fresh, prefix).len(), kvs.len());
    drop(fresh);
    rows.push(Row {
        workload,
        validate,
        store: "etcd",
        create,
        update,
        reference,
        reference_name: "etcdctl txn ×128",
    });

    let db = dir.path().join("ds.db").display().to_string();
    let env = [("DATASTORE_PATH", db.as_str())];
    let create = calicoctl(&env, &file);
    let update = calicoctl(&env, &file);
    let reference = sqlite_reference(dir.path(), &kvs);
    rows.push(Row {
        workload,
        validate,
        store: "local",
        create,
        update,
        reference,
        reference_name: "sqlite3, 1 txn",
    });
}

fn main() {
    let mut rows = Vec::new();
    let weps: Vec<String> = (0..ENDPOINTS).map(wep).collect();
    run(
        "10,000 WorkloadEndpoints",
        &weps.join("---\n"),
        "/calico/resources/v3/projectcalico.org/workloadendpoints/",
        &mut rows,
    );
    drop(weps);
    let gns = "/calico/resources/v3/projectcalico.org/globalnetworksets/";
    run(
        "1 GlobalNetworkSet × 50,000 nets",
        &global_network_set("feed", 0, NETS),
        gns,
        &mut rows,
    );
    let sets: Vec<String> = (0..50)
        .map(|s| global_network_set(&format!("set{s}"), s * 1000, 1000))
        .collect();
    run(
        "50 GlobalNetworkSets × 1,000 nets",
        &sets.join("---\n"),
        gns,
        &mut rows,
    );

    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "\n{:<34} {:>10} {:<6} {:>10} {:>9} {:>10} {:>9} | {:<17} {:>8} {:>9} | {:>10} {:>9}",
        "workload",
        "validate s",
        "store",
        "create s",
        "RSS MiB",
        "update s",
        "RSS MiB",
        "reference",
        "s",
        "RSS MiB",
        "create/ref",
        "RSS/ref"
    );
    for r in &rows {
        println!(
            "{:<34} {:>10.2} {:<6} {:>10.2} {:>9.1} {:>10.2} {:>9.1} | {:<17} {:>8.2} {:>9.1} | {:>9.2}× {:>8.2}×",
            r.workload,
            r.validate.wall.as_secs_f64(),
            r.store,
            r.create.wall.as_secs_f64(),
            mib(r.create.rss_kib),
            r.update.wall.as_secs_f64(),
            mib(r.update.rss_kib),
            r.reference_name,
            r.reference.wall.as_secs_f64(),
            mib(r.reference.rss_kib),
            r.create.wall.as_secs_f64() / r.reference.wall.as_secs_f64().max(1e-9),
            r.create.rss_kib as f64 / (r.reference.rss_kib.max(1)) as f64,
        );
    }
}
