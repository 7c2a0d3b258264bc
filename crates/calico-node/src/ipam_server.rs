//! The node's IPAM service: the CNI plugins on this host may ask calico-node
//! (which keeps the store open) to allocate and release, instead of opening
//! the store in every plugin process. One JSON line per request and answer
//! on a unix socket (`CALICO_IPAM_SOCKET`, default
//! `/var/run/calico/ipam.sock`, mode 0600); requests are carried out one at
//! a time, in the order they arrive whole, each under the host-wide IPAM
//! lock file the plugin names (the one its own fallback takes), and never
//! after the plugin's deadline (`calico_ipam::service::answer_envelope`).
//! A plugin that cannot reach the socket, finds it serving another store,
//! or hears that its deadline passed, does the work itself.
//!
//! Connections are read and answered by [`crate::line_server`] within
//! [`LIMITS`]: no client waits on another's connection, 1,024 at once,
//! [`service::MAX_REQUEST`] bytes each, [`CLIENT_TIMEOUT`] from connect to
//! send the request. The line is decoded by [`service::decode_envelope`];
//! one thread carries the requests out.

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use calico_datastore::Store;
use calico_ipam::Ipam;
use calico_ipam::service::{self, Envelope, FailureClass, Response};

use crate::line_server::{self, Limits, Line, Outcome};

/// The default socket path.
pub const DEFAULT_SOCKET: &str = "/var/run/calico/ipam.sock";

/// How long a connected client may take to send its request (from
/// connect), and again to take the answer.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

/// What the service tolerates of its clients.
pub const LIMITS: Limits = Limits {
    max_connections: 1024,
    max_line: service::MAX_REQUEST,
    deadline: CLIENT_TIMEOUT,
};

type Job = (Envelope, tokio::sync::oneshot::Sender<Response>);

/// Starts serving on `path` in the background.
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
    let (jobs, queue) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("ipam-service".into())
        .spawn(move || {
            for (env, reply) in queue {
                let _ = reply.send(service::answer_envelope(&ipam, &identity, &env));
            }
        })?;
    line_server::serve(listener, "IPAM service", LIMITS, Service { jobs })
}

struct Service {
    jobs: mpsc::Sender<Job>,
}

/// An answer as sent: one JSON line.
fn encode(r: &Response) -> Vec<u8> {
    let mut out = serde_json::to_vec(r).unwrap_or_default();
    out.push(b'\n');
    out
}

fn failed(message: String) -> Vec<u8> {
    encode(&Response::Failed {
        class: FailureClass::Other,
        message,
    })
}

impl line_server::Answer for Service {
    fn answer(&self, line: Line) -> Outcome {
        let env = match service::decode_envelope(line.bytes()) {
            Ok(env) => env,
            Err(e) => {
                let message = e.to_string();
                return Outcome::Malformed {
                    detail: message.clone(),
                    answer: failed(message),
                };
            }
        };
        let (reply, answered) = tokio::sync::oneshot::channel();
        let sent = self.jobs.send((env, reply));
        Outcome::Reply(Box::pin(async move {
            if sent.is_err() {
                return failed("the IPAM service has stopped".into());
            }
            match answered.await {
                Ok(r) => encode(&r),
                Err(_) => failed("the IPAM service has stopped".into()),
            }
        }))
    }

    fn too_long(&self, limit: usize) -> Vec<u8> {
        failed(format!("bad request: longer than {limit} bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calico_ipam::hostlock;
    use calico_ipam::service::Request;
    use std::collections::BTreeMap;
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixStream;

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
