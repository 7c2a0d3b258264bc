//! BGP peers for the tests: GoBGP (`gobgpd`) and a hand-driven peer, both
//! in the fabric namespace.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Cluster;

/// Waits (up to 30 s) until `check` holds; fails the test naming `what`.
pub fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// GoBGP (`gobgpd`) in the fabric namespace, its API on the namespace's
/// loopback.
pub struct GoBgp {
    child: Child,
    netns: String,
}

impl GoBgp {
    pub fn start(c: &Cluster, config: &str) -> GoBgp {
        let conf = c.dir.path().join("gobgpd.toml");
        std::fs::write(&conf, config).unwrap();
        let log = c.dir.path().join("gobgpd.log");
        let child = Command::new("ip")
            .args(["netns", "exec", c.fabric.name(), "gobgpd", "-p", "-f"])
            .arg(&conf)
            .args(["--api-hosts", "127.0.0.1:50051", "--pprof-disable"])
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut g = GoBgp {
            child,
            netns: c.fabric.name().to_string(),
        };
        until("gobgpd's API", || {
            if let Ok(Some(status)) = g.child.try_wait() {
                panic!(
                    "gobgpd exited ({status}): {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            g.try_cmd(&["global"]).is_some()
        });
        g
    }

    pub fn try_cmd(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.netns, "gobgp", "-u", "127.0.0.1"])
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn cmd(&self, args: &[&str]) -> String {
        self.try_cmd(args)
            .unwrap_or_else(|| panic!("gobgp {args:?} failed"))
    }
}

impl Drop for GoBgp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A hand-driven BGP peer in the fabric namespace.
pub struct RawPeer {
    s: std::net::TcpStream,
    buf: Vec<u8>,
}

impl RawPeer {
    pub fn connect(c: &Cluster) -> RawPeer {
        let ns = calico_dataplane::NetNs::open(c.fabric.path()).unwrap();
        let to: std::net::SocketAddr = "172.31.0.1:179".parse().unwrap();
        let s = ns
            .run(|| std::net::TcpStream::connect_timeout(&to, Duration::from_secs(2)))
            .unwrap()
            .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        RawPeer { s, buf: Vec::new() }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.s.write_all(bytes).unwrap();
    }

    pub fn send(&mut self, m: &calico_bgp::msg::Message) {
        let ctx = calico_bgp::wire::Context { asn4: true };
        let bytes = calico_bgp::wire::encode(m, &ctx).unwrap();
        self.send_raw(&bytes);
    }

    /// The next message from the speaker; None when the connection ends.
    pub fn next(&mut self) -> Option<calico_bgp::msg::Message> {
        use std::io::Read;
        let ctx = calico_bgp::wire::Context { asn4: true };
        loop {
            if let Some((m, n)) = calico_bgp::wire::decode(&self.buf, &ctx).unwrap() {
                self.buf.drain(..n);
                return Some(m);
            }
            let mut chunk = [0u8; 4096];
            match self.s.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads until a NOTIFICATION: its (code, subcode).
    pub fn notification(&mut self) -> (u8, u8) {
        while let Some(m) = self.next() {
            if let calico_bgp::msg::Message::Notification(n) = m {
                return (n.code, n.subcode);
            }
        }
        panic!("the connection ended without a NOTIFICATION");
    }
}

/// An OPEN from AS `asn` (router id 172.31.0.254, IPv4 unicast, 4-octet AS).
pub fn open(asn: u32) -> calico_bgp::msg::Message {
    use calico_bgp::msg::{Afi, Capability, Message, Open};
    Message::Open(Open {
        asn,
        hold_time: 90,
        router_id: "172.31.0.254".parse().unwrap(),
        capabilities: vec![
            Capability::Multiprotocol {
                afi: Afi::Ipv4,
                safi: 1,
            },
            Capability::FourOctetAs(asn),
        ],
    })
}
