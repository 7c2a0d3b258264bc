//! The datastore lock as Felix honours it: while ClusterInformation
//! `datastoreReady` is false (`calicoctl datastore migrate lock`), the
//! agent applies no datastore change to the dataplane and says so on
//! readiness; once unlocked, it catches up.

#![allow(clippy::unwrap_used)] // the shared harness (node_host) unwraps: a failed unwrap is a failed test

use std::process::Stdio;
use std::time::{Duration, Instant};

use calico_testutil::{free_port, require_root};

#[allow(dead_code)] // node.rs uses the rest of the harness
mod node_host;
use node_host::{Agent, BIN, Host};

fn vni(h: &Host) -> String {
    h.ns.try_exec(&["ip", "-d", "link", "show", "vxlan.calico"])
        .unwrap_or_default()
}

/// Waits (a guard against a hung agent, not a timing assertion) until `ok`.
fn wait_for(what: &str, mut ok: impl FnMut() -> Option<String>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let last = match ok() {
            None => return,
            Some(last) => last,
        };
        assert!(Instant::now() < deadline, "never {what}: {last}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn felix_config(h: &Host, name: &str, vni: u32) -> i64 {
    let f = h.dir.path().join(format!("{name}.yaml"));
    let text = format!(
        "apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {{name: {name}}}\nspec: {{vxlanVNI: {vni}}}\n"
    );
    std::fs::write(&f, text).unwrap_or_else(|e| panic!("{e}"));
    h.calicoctl(&["apply", "-f", &f.display().to_string()]);
    h.get("felixconfiguration", name)["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no resourceVersion for {name}"))
}

#[test]
fn a_locked_datastore_holds_the_dataplane_until_unlocked() {
    require_root!();
    let h = Host::new(false);
    felix_config(&h, "default", 4200);
    let port = free_port().to_string();
    let env = [
        ("NODENAME", "node-l"),
        ("FELIX_HEALTHENABLED", "true"),
        ("FELIX_HEALTHPORT", port.as_str()),
        ("CALICO_NETWORKING_BACKEND", "vxlan"),
        ("CALICO_IPV4POOL_CIDR", "10.84.0.0/16"),
        ("CALICO_IPV4POOL_VXLAN", "Always"),
    ];
    let _agent = Agent(
        h.cmd(BIN, &[], &env)
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let has_vni = |want: u32| {
        let dev = vni(&h);
        (!dev.contains(&format!("vxlan id {want} "))).then_some(dev)
    };
    wait_for("VNI 4200", || has_vni(4200));

    h.calicoctl(&["datastore", "migrate", "lock"]);
    let seen = || -> i64 {
        let out = h.node(&["-felix-ready"], &env);
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        body.split("(seen revision ")
            .nth(1)
            .and_then(|r| r.split(')').next())
            .and_then(|r| r.parse().ok())
            .unwrap_or(-1)
    };
    wait_for("saw the lock", || {
        (seen() < 0).then(|| "no lock on readiness".into())
    });

    // A change while locked: the agent wakes for it and leaves it alone.
    let rev = felix_config(&h, "node.node-l", 4300);
    wait_for("saw the change", || {
        let s = seen();
        (s < rev).then(|| format!("seen revision {s}, change at {rev}"))
    });
    let dev = vni(&h);
    assert!(
        dev.contains("vxlan id 4200 "),
        "applied while locked: {dev}"
    );

    h.calicoctl(&["datastore", "migrate", "unlock"]);
    wait_for("VNI 4300 after unlock", || has_vni(4300));
    let out = h.node(&["-felix-ready"], &env);
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(!body.contains("locked"), "{body}");
}
