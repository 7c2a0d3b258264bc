//! Test harness shared by the integration tests.
//!
//! - [`EtcdServer`]: a real etcd (Debian `etcd-server`) on loopback ports,
//!   with its data in a temporary directory; killed and removed on drop.
//! - [`TcpProxy`]: a loopback TCP forwarder whose connections a test can cut,
//!   to simulate a dropped datastore connection.
//!
//! - [`TestNetns`]: a uniquely named network namespace, deleted on drop.
//!
//! Everything listens on 127.0.0.1 only and cleans up on drop, even when a
//! test fails.

use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Waits until something accepts TCP connections on `port`.
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A real etcd server for one test.
pub struct EtcdServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// Client port on 127.0.0.1.
    pub port: u16,
    peer_port: u16,
    name: String,
    tls: Option<TlsFiles>,
    client_tls: Option<TlsFiles>,
    /// The network namespace etcd (and etcdctl) run in, if not this one.
    netns: Option<String>,
    /// The address it listens on (127.0.0.1 unless started with `start_in_at`).
    host: String,
}

/// PEM files of a test PKI: a CA, and a certificate and key signed by it.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA certificate.
    pub ca: PathBuf,
    /// The certificate.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl (install Debian's openssl): {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes a CA and two certificates for 127.0.0.1 in `dir`: one for the
/// server, one for the client. Returns (server files, client files).
pub fn make_pki(dir: &Path) -> (TlsFiles, TlsFiles) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "2",
        "-subj",
        "/CN=calico-rs-test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ];
    ca.extend(ec);
    openssl(dir, &ca);
    let mut files = Vec::new();
    for (name, usage) in [("server", "serverAuth"), ("client", "clientAuth")] {
        let (key, csr, pem, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        let _ = std::fs::write(
            dir.join(&ext),
            format!("subjectAltName=IP:127.0.0.1\nextendedKeyUsage={usage}\n"),
        );
        let mut req = vec![
            "req",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            key.as_str(),
            "-out",
            csr.as_str(),
        ];
        req.extend(ec);
        openssl(dir, &req);
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-days",
                "2",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-extfile",
                &ext,
            ],
        );
        files.push(TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join(&pem),
            key: dir.join(&key),
        });
    }
    let client = files.pop().unwrap_or_else(|| panic!("no client files"));
    let server = files.pop().unwrap_or_else(|| panic!("no server files"));
    (server, client)
}

/// A data directory for a test etcd: in memory (/dev/shm) where there is
/// one, so that etcd's fsyncs never wait on a disk busy with other work
/// (on a loaded 2-core machine they stalled requests past their deadline).
fn etcd_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::Builder::new()
            .prefix("calico-etcd")
            .tempdir_in(shm)
    } else {
        tempfile::tempdir()
    };
    dir.unwrap_or_else(|e| panic!("cannot make a temp dir for etcd: {e}"))
}

impl EtcdServer {
    /// Starts etcd; panics with a clear message if it is not installed or does not come up.
    pub fn start() -> EtcdServer {
        EtcdServer::launch(None)
    }

    /// Starts etcd inside the network namespace `netns` (on its loopback),
    /// for tests whose processes run in that namespace.
    pub fn start_in(netns: &str) -> EtcdServer {
        EtcdServer::launch(Some(netns.to_string()))
    }

    /// Starts etcd inside `netns` listening on `host` (an address of that
    /// namespace), for clusters of namespaces that reach it over a bridge.
    /// The namespace is the test's own, so etcd gets its standard ports
    /// (2379, 2380), as Calico's failsafe ports expect.
    pub fn start_in_at(netns: &str, host: &str) -> EtcdServer {
        EtcdServer::launch_at(Some(netns.to_string()), host, (2379, 2380))
    }

    fn launch(netns: Option<String>) -> EtcdServer {
        EtcdServer::launch_at(netns, "127.0.0.1", (free_port(), free_port()))
    }

    fn launch_at(netns: Option<String>, host: &str, (port, peer_port): (u16, u16)) -> EtcdServer {
        let dir = etcd_dir();
        let mut s = EtcdServer {
            child: None,
            port,
            peer_port,
            name: format!("test-{}", std::process::id()),
            dir,
            tls: None,
            client_tls: None,
            netns,
            host: host.to_string(),
        };
        s.spawn();
        s
    }

    /// A command that runs in this server's namespace (if it has one).
    fn command(&self, program: &str) -> Command {
        match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, program]);
                c
            }
            None => Command::new(program),
        }
    }

    /// Starts etcd serving TLS on its client port and requiring client
    /// certificates; returns the client's files (CA, certificate, key).
    pub fn start_tls() -> (EtcdServer, TlsFiles) {
        let dir = etcd_dir();
        let (server, client) = make_pki(dir.path());
        let mut s = EtcdServer {
            child: None,
            port: free_port(),
            peer_port: free_port(),
            name: format!("test-tls-{}", std::process::id()),
            dir,
            tls: Some(server),
            client_tls: None,
            netns: None,
            host: "127.0.0.1".into(),
        };
        s.client_tls = Some(client.clone());
        s.spawn();
        (s, client)
    }

    fn spawn(&mut self) {
        let url = self.endpoint();
        let peer = format!("http://{}:{}", self.host, self.peer_port);
        let log = std::fs::File::create(self.dir.path().join("etcd.log")).ok();
        let mut cmd = self.command("etcd");
        if let Some(t) = &self.tls {
            cmd.arg("--cert-file")
                .arg(&t.cert)
                .arg("--key-file")
                .arg(&t.key);
            cmd.arg("--client-cert-auth")
                .arg("--trusted-ca-file")
                .arg(&t.ca);
        }
        let child = cmd
            .arg("--name")
            .arg(&self.name)
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .arg("--listen-client-urls")
            .arg(&url)
            .arg("--advertise-client-urls")
            .arg(&url)
            .arg("--listen-peer-urls")
            .arg(&peer)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer)
            .arg("--initial-cluster")
            .arg(format!("{}={peer}", self.name))
            .env_remove("ETCD_ENDPOINTS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.map(Stdio::from).unwrap_or_else(Stdio::null))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start etcd (install Debian's etcd-server): {e}"));
        self.child = Some(child);
        if !self.wait_healthy(Duration::from_secs(20)) {
            let log = std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default();
            panic!("etcd did not become healthy on port {}:\n{log}", self.port);
        }
    }

    fn wait_healthy(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let ok = self
                .etcdctl_cmd()
                .args(["--dial-timeout=1s", "endpoint", "health"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return true;
            }
            thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// The client URL (https when the server was started with TLS).
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}:{}", self.host, self.port)
    }

    fn etcdctl_cmd(&self) -> Command {
        let mut cmd = self.command("etcdctl");
        cmd.env("ETCDCTL_API", "3")
            .arg("--endpoints")
            .arg(self.endpoint());
        if let Some(c) = &self.client_tls {
            cmd.arg("--cacert")
                .arg(&c.ca)
                .arg("--cert")
                .arg(&c.cert)
                .arg("--key")
                .arg(&c.key);
        }
        cmd
    }

    /// Runs `etcdctl` against this server and returns its stdout.
    pub fn etcdctl(&self, args: &[&str]) -> io::Result<String> {
        let out = self.etcdctl_cmd().args(args).output()?;
        if !out.status.success() {
            return Err(io::Error::other(
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Kills etcd (SIGKILL) without removing its data.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts etcd again on the same ports and data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A TCP forwarder on 127.0.0.1 whose connections can be cut.
pub struct TcpProxy {
    /// The port clients connect to.
    pub port: u16,
    stop: Arc<AtomicBool>,
    refuse: Arc<AtomicBool>,
    mute: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl TcpProxy {
    /// Forwards 127.0.0.1:`port` to 127.0.0.1:`target`.
    pub fn start(target: u16) -> TcpProxy {
        let listener =
            TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("proxy bind: {e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let _ = listener.set_nonblocking(true);
        let stop = Arc::new(AtomicBool::new(false));
        let refuse = Arc::new(AtomicBool::new(false));
        let mute = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (s, r, c, m) = (stop.clone(), refuse.clone(), conns.clone(), mute.clone());
        thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        if r.load(Ordering::SeqCst) {
                            let _ = client.shutdown(Shutdown::Both);
                            continue;
                        }
                        let _ = client.set_nonblocking(false);
                        let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                            continue;
                        };
                        // Requests always pass; replies are dropped while muted.
                        let pairs = [
                            (client.try_clone(), server.try_clone(), None),
                            (server.try_clone(), client.try_clone(), Some(m.clone())),
                        ];
                        if let Ok(mut g) = c.lock() {
                            g.extend(client.try_clone());
                            g.extend(server.try_clone());
                        }
                        for (a, b, mute) in pairs {
                            if let (Ok(mut a), Ok(mut b)) = (a, b) {
                                thread::spawn(move || {
                                    forward(&mut a, &mut b, mute.as_deref());
                                    let _ = b.shutdown(Shutdown::Both);
                                });
                            }
                        }
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        TcpProxy {
            port,
            stop,
            refuse,
            mute,
            conns,
        }
    }

    /// Closes every open connection and refuses new ones until [`TcpProxy::resume`].
    pub fn cut(&self) {
        self.refuse.store(true, Ordering::SeqCst);
        if let Ok(mut g) = self.conns.lock() {
            for s in g.drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }

    /// Accepts connections again (and passes replies again).
    pub fn resume(&self) {
        self.mute.store(false, Ordering::SeqCst);
        self.refuse.store(false, Ordering::SeqCst);
    }

    /// Drops every byte the server sends until [`TcpProxy::resume`];
    /// requests still reach it: a request is carried out and its answer
    /// lost.
    pub fn mute_replies(&self) {
        self.mute.store(true, Ordering::SeqCst);
    }

    /// The proxy's URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Copies `from` to `to` until either closes; while `mute` is set, what
/// is read is dropped.
fn forward(from: &mut TcpStream, to: &mut TcpStream, mute: Option<&AtomicBool>) {
    use std::io::{Read, Write};
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if mute.is_some_and(|m| m.load(Ordering::SeqCst)) {
                    continue;
                }
                if to.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.cut();
    }
}

/// Path of a workspace binary built by cargo (`target/<profile>/<name>`), next to the test executable.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    dir.join(name)
}

/// Whether this process may create namespaces and links (privileged tests
/// skip with a printed reason otherwise).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Skips the calling test (returns early) with a printed reason unless root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::is_root() {
            eprintln!("skipped: needs root (network namespaces)");
            return;
        }
    };
}

/// A uniquely named network namespace (`ip netns add`), deleted on drop
/// together with every link inside it.
pub struct TestNetns {
    name: String,
}

impl TestNetns {
    /// Creates `ct<pid>-<tag>-<n>`.
    pub fn new(tag: &str) -> TestNetns {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let name = format!("ct{}-{tag}-{n}", std::process::id());
        let status = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("run ip netns add");
        assert!(status.success(), "ip netns add {name} failed");
        let ns = TestNetns { name };
        // Loopback up, so tests can serve on 127.0.0.1 inside.
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/<name>`, the path a runtime passes as `CNI_NETNS`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.name))
    }

    /// Runs a command inside the namespace; panics unless it succeeds.
    pub fn exec(&self, args: &[&str]) -> String {
        let out = self.try_exec(args);
        match out {
            Ok(s) => s,
            Err(e) => panic!("in netns {}: {args:?}: {e}", self.name),
        }
    }

    /// Runs a command inside the namespace; its stdout, or stderr as error.
    pub fn try_exec(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "exit {}: {}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            ))
        }
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}
