//! The node's IPAM service: the CNI plugins on this host may ask calico-node
//! (which keeps the store open) to allocate and release, instead of opening
//! the store in every plugin process. One JSON line per request and answer
//! on a unix socket (`CALICO_IPAM_SOCKET`, default
//! `/var/run/calico/ipam.sock`, mode 0600); requests are served one at a
//! time, each under the host-wide IPAM lock file the plugin names (the one
//! its own fallback takes), and never after the plugin's deadline
//! (`calico_ipam::service::answer_envelope`). A plugin that cannot reach
//! the socket, finds it serving another store, or hears that its deadline
//! passed, does the work itself.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use calico_datastore::Store;
use calico_ipam::Ipam;
use calico_ipam::service::{self, Envelope, Response};

/// The default socket path.
pub const DEFAULT_SOCKET: &str = "/var/run/calico/ipam.sock";

/// Starts serving on `path` from background threads.
pub fn serve(path: &Path, store: Arc<dyn Store>, identity: String) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // A socket file left by an earlier run.
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let ipam = Ipam::new(store);
    // One thread serves the connections in turn: requests are carried out
    // one at a time anyway, and a thread per connection would cost more
    // than the request. A client gets `CLIENT_TIMEOUT` to send its line.
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            serve_one(conn, &ipam, &identity);
        }
    });
    Ok(())
}

/// How long a connected client may take to send its request.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

fn serve_one(conn: UnixStream, ipam: &Ipam, identity: &str) {
    let timeout = Some(CLIENT_TIMEOUT);
    if conn.set_read_timeout(timeout).is_err() || conn.set_write_timeout(timeout).is_err() {
        return;
    }
    let mut line = String::new();
    if BufReader::new(&conn).read_line(&mut line).is_err() {
        return;
    }
    let answer = match serde_json::from_str::<Envelope>(&line) {
        Ok(env) => service::answer_envelope(ipam, identity, &env),
        Err(e) => Response::Failed {
            class: service::FailureClass::Other,
            message: format!("bad request: {e}"),
        },
    };
    // One write: the answer and its newline.
    let mut out = serde_json::to_vec(&answer).unwrap_or_default();
    out.push(b'\n');
    let _ = (&conn).write_all(&out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use calico_ipam::hostlock;
    use calico_ipam::service::{FailureClass, Request};
    use std::collections::BTreeMap;

    fn ask(sock: &Path, env: &Envelope) -> Response {
        let conn = UnixStream::connect(sock).unwrap_or_else(|e| panic!("{e}"));
        let mut line = serde_json::to_vec(env).unwrap_or_default();
        line.push(b'\n');
        (&conn).write_all(&line).unwrap_or_else(|e| panic!("{e}"));
        let mut answer = String::new();
        BufReader::new(&conn)
            .read_line(&mut answer)
            .unwrap_or_else(|e| panic!("{e}"));
        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer}"))
    }

    /// Over the real socket: a request whose deadline passes while the
    /// plugin's lock is held is answered `expired` and not carried out
    /// (issue 19, point 5); once the lock is free it is served.
    #[test]
    fn serves_under_the_plugins_lock_and_drops_expired_requests() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store: Arc<dyn Store> = Arc::new(
            calico_datastore::local::LocalStore::open(dir.path().join("ds.db"))
                .unwrap_or_else(|e| panic!("{e}")),
        );
        let pool = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.21.0.0/24}\n";
        let client = calico_datastore::Client::new(store.clone());
        for r in calico_api::decode_documents(pool).unwrap_or_else(|e| panic!("{e}")) {
            client
                .apply(r.unwrap_or_else(|e| panic!("{e}")))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let sock = dir.path().join("ipam.sock");
        serve(&sock, store.clone(), "local:test".into()).unwrap_or_else(|e| panic!("{e}"));
        let lock = dir.path().join("ipam.lock");
        let req = Request::Assign {
            store: "local:test".into(),
            handle: "net.c1".into(),
            node: "n1".into(),
            attrs: BTreeMap::new(),
            specific: None,
            num_v4: 1,
            num_v6: 0,
            v4_pools: vec![],
            v6_pools: vec![],
        };
        let held = hostlock::acquire(&lock, Duration::ZERO).unwrap_or_else(|e| panic!("{e}"));
        let env = Envelope::new(req.clone(), Duration::from_millis(200), Some(lock.clone()));
        let r = ask(&sock, &env);
        assert!(
            matches!(
                &r,
                Response::Failed {
                    class: FailureClass::Expired,
                    ..
                }
            ),
            "{r:?}"
        );
        let ipam = Ipam::new(store);
        assert_eq!(ipam.ips_by_handle("net.c1"), Ok(vec![]));
        drop(held);
        let env = Envelope::new(req, Duration::from_secs(60), Some(lock));
        let r = ask(&sock, &env);
        assert!(
            matches!(&r, Response::Ok { ips } if ips.len() == 1),
            "{r:?}"
        );
        assert_eq!(ipam.ips_by_handle("net.c1").map(|v| v.len()), Ok(1));
    }
}
