//! The servers behind the agent's unix sockets (the control socket and the
//! IPAM service): one request line in, one answer out, then close — served
//! on the agent's one small server runtime (`crate::io_runtime`), which
//! the health and metrics servers share.
//!
//! Whatever a client does, its cost is bounded:
//!
//! - at most [`Limits::max_connections`] at once; one over the cap is
//!   closed at once, before anything is read;
//! - the request line must arrive whole within [`Limits::deadline`] of
//!   the connection (a client trickling bytes, or sending nothing, is cut
//!   then) and fit in [`Limits::max_line`] bytes (more is answered
//!   `too_long` and closed); at most that much is buffered per connection;
//! - the answer must be taken within [`Limits::deadline`] too;
//! - connections do not wait on each other: an idle or slow one never
//!   keeps another from being answered.
//!
//! Each kind of abuse is logged once when first seen, then counted and
//! reported at most once a minute ([`Abuse`], over calico-log's rate
//! limiter): a flood costs neither disk nor the lines an operator needs.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::ErrorKind;
use std::os::unix::net::UnixListener;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UnixStream;
use tokio::sync::Semaphore;

/// What one server tolerates of its clients.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; more are closed at once.
    pub max_connections: usize,
    /// The longest request line, without its newline.
    pub max_line: usize,
    /// Time allowed to send the request (from accept), and again to take
    /// the answer.
    pub deadline: Duration,
}

/// How a request line ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A line ended by its newline (not included).
    Full(Vec<u8>),
    /// The client shut down writing before a newline: what it sent.
    Eof(Vec<u8>),
}

impl Line {
    /// The bytes of the line.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Line::Full(b) | Line::Eof(b) => b,
        }
    }
}

/// The answer bytes to send, once ready.
pub type Reply = Pin<Box<dyn Future<Output = Vec<u8>> + Send>>;

/// What a server makes of a line.
pub enum Outcome {
    /// A request understood: its answer, once ready.
    Reply(Reply),
    /// A request not understood: logged as [`Kind::Malformed`] (with
    /// `detail`), `answer` sent.
    Malformed { detail: String, answer: Vec<u8> },
}

/// A server's answer to a line, and to a line over the limit.
pub trait Answer: Send + Sync + 'static {
    /// What to answer to `line` (called on the runtime: must not block).
    fn answer(&self, line: Line) -> Outcome;
    /// The answer sent to a request longer than the limit.
    fn too_long(&self, limit: usize) -> Vec<u8>;
}

/// Kinds of client behaviour that are logged once and then counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Over the connection cap: closed at once.
    OverCap,
    /// A request longer than the limit.
    TooLong,
    /// No whole request within the deadline (idle, or too slow).
    TooSlow,
    /// The answer was not taken within the deadline.
    SlowReader,
    /// A request the server could not make sense of.
    Malformed,
    /// `accept` itself failed (out of file descriptors and the like).
    AcceptFailed,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::OverCap => "over the connection cap, closed at once",
            Kind::TooLong => "sent a request over the size limit, refused",
            Kind::TooSlow => "sent no whole request in time, closed",
            Kind::SlowReader => "did not take the answer in time, closed",
            Kind::Malformed => "sent a malformed request, refused",
            Kind::AcceptFailed => "could not be accepted",
        }
    }
}

/// One server's abuse log, over its own [`calico_log::RateLimiter`] (one
/// line per kind a minute): the first client of a kind is logged at once
/// (with what it did), the next ones are counted and the count logged once
/// the minute is over (`<server>: a client <did what>: suppressed N similar
/// messages in the last T s`).
pub struct Abuse {
    limits: Limits,
    limiter: calico_log::RateLimiter,
    /// The key of each kind's lines: `<server>: a client <did what>`.
    keys: BTreeMap<Kind, &'static str>,
}

/// How often counted clients are reported.
pub const REPORT_EVERY: Duration = Duration::from_secs(60);

const KINDS: [Kind; 6] = [
    Kind::OverCap,
    Kind::TooLong,
    Kind::TooSlow,
    Kind::SlowReader,
    Kind::Malformed,
    Kind::AcceptFailed,
];

impl Abuse {
    fn new(server: &'static str, limits: Limits) -> Abuse {
        // The limiter's keys are static: one per server and kind, made
        // once when the server starts (a few servers a process).
        let keys = KINDS
            .into_iter()
            .map(|k| {
                let key: &'static str =
                    Box::leak(format!("{server}: a client {}", k.describe()).into_boxed_str());
                (k, key)
            })
            .collect();
        Abuse {
            limits,
            limiter: calico_log::RateLimiter::new(1, REPORT_EVERY),
            keys,
        }
    }

    fn limit_words(&self, kind: Kind) -> String {
        let l = &self.limits;
        match kind {
            Kind::OverCap => format!("{} connections at once", l.max_connections),
            Kind::TooLong => format!("{} bytes", l.max_line),
            Kind::TooSlow | Kind::SlowReader => format!("{:?}", l.deadline),
            Kind::Malformed | Kind::AcceptFailed => String::new(),
        }
    }

    /// Notes one client of `kind`; `detail` says what it did (may be
    /// empty). The lines logged.
    pub fn note(&self, kind: Kind, detail: &str) -> Vec<String> {
        self.note_at(kind, detail, Instant::now())
    }

    fn note_at(&self, kind: Kind, detail: &str, now: Instant) -> Vec<String> {
        let Some(key) = self.keys.get(&kind).copied() else {
            return Vec::new();
        };
        let calico_log::limit::Decision::Log(earlier) = self.limiter.check_at(key, now) else {
            return Vec::new();
        };
        let limit = self.limit_words(kind);
        let limit = if limit.is_empty() {
            String::new()
        } else {
            format!(" (limit: {limit})")
        };
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(": {detail}")
        };
        let lines: Vec<String> = earlier
            .map(|s| s.line())
            .into_iter()
            .chain([format!(
                "{key}{limit}{detail}; more such clients are counted and reported once a minute"
            )])
            .collect();
        for line in &lines {
            log::warn!("{line}");
        }
        lines
    }

    /// Logs the counts of the minutes that are over; the lines logged.
    fn report_at(&self, now: Instant) -> Vec<String> {
        let lines: Vec<String> = self
            .limiter
            .flush_at(now)
            .iter()
            .map(|s| s.line())
            .collect();
        for line in &lines {
            log::warn!("{line}");
        }
        lines
    }
}

/// Serves `answer` on `listener` (already bound, with its permissions set)
/// in the background for the life of the process; `server` names it in
/// log lines.
pub fn serve(
    listener: UnixListener,
    server: &'static str,
    limits: Limits,
    answer: impl Answer,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let rt = crate::io_runtime::handle()?;
    let listener = {
        let _guard = rt.enter();
        tokio::net::UnixListener::from_std(listener)?
    };
    let abuse = Arc::new(Abuse::new(server, limits));
    let reporter = abuse.clone();
    rt.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            reporter.report_at(Instant::now());
        }
    });
    rt.spawn(accept_loop(listener, limits, Arc::new(answer), abuse));
    Ok(())
}

async fn accept_loop(
    listener: tokio::net::UnixListener,
    limits: Limits,
    answer: Arc<dyn Answer>,
    abuse: Arc<Abuse>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                abuse.note(Kind::AcceptFailed, &e.to_string());
                // Out of file descriptors and the like: wait rather than spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(stream);
            abuse.note(Kind::OverCap, "the connection was closed unread");
            continue;
        };
        let (answer, abuse) = (answer.clone(), abuse.clone());
        tokio::spawn(async move {
            let _slot = slot;
            serve_one(stream, limits, &*answer, &abuse).await;
        });
    }
}

/// How reading a request failed.
enum ReadError {
    TooLong,
    Io,
}

async fn serve_one(stream: UnixStream, limits: Limits, answer: &dyn Answer, abuse: &Abuse) {
    let read = tokio::time::timeout(limits.deadline, read_line(&stream, limits.max_line)).await;
    let out = match read {
        Err(_) => {
            abuse.note(Kind::TooSlow, "");
            return;
        }
        Ok(Err(ReadError::Io)) => return,
        Ok(Err(ReadError::TooLong)) => {
            abuse.note(Kind::TooLong, "");
            answer.too_long(limits.max_line)
        }
        // Connected and closed: nothing asked, nothing to answer.
        Ok(Ok(Line::Eof(b))) if b.is_empty() => return,
        Ok(Ok(line)) => match answer.answer(line) {
            Outcome::Reply(reply) => reply.await,
            Outcome::Malformed { detail, answer } => {
                abuse.note(Kind::Malformed, &detail);
                answer
            }
        },
    };
    if tokio::time::timeout(limits.deadline, write_all(&stream, &out))
        .await
        .is_err()
    {
        abuse.note(Kind::SlowReader, "");
    }
}

/// Reads up to the first newline, at most `max` bytes before it.
async fn read_line(stream: &UnixStream, max: usize) -> Result<Line, ReadError> {
    let mut line = Vec::new();
    let mut chunk = [0u8; 2048];
    loop {
        stream.readable().await.map_err(|_| ReadError::Io)?;
        let n = match stream.try_read(&mut chunk) {
            Ok(0) => return Ok(Line::Eof(line)),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return Err(ReadError::Io),
        };
        let got = chunk.get(..n).unwrap_or_default();
        let (part, done) = match got.iter().position(|b| *b == b'\n') {
            Some(i) => (got.get(..i).unwrap_or_default(), true),
            None => (got, false),
        };
        if line.len() + part.len() > max {
            return Err(ReadError::TooLong);
        }
        line.extend_from_slice(part);
        if done {
            return Ok(Line::Full(line));
        }
    }
}

async fn write_all(stream: &UnixStream, mut out: &[u8]) -> std::io::Result<()> {
    while !out.is_empty() {
        stream.writable().await?;
        match stream.try_write(out) {
            Ok(n) => out = out.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flood of one kind is one line, then one count a minute; a kind
    /// quiet for a minute is logged in full again (issue 17 point 4).
    #[test]
    fn abuse_is_logged_once_then_counted() {
        let limits = Limits {
            max_connections: 8,
            max_line: 256,
            deadline: Duration::from_secs(2),
        };
        let abuse = Abuse::new("test socket", limits);
        let t0 = Instant::now();
        assert_eq!(
            abuse.note_at(Kind::TooSlow, "", t0),
            [
                "test socket: a client sent no whole request in time, closed (limit: 2s); more such clients are counted and reported once a minute"
            ]
        );
        for _ in 0..999 {
            assert!(abuse.note_at(Kind::TooSlow, "", t0).is_empty());
        }
        let other = abuse.note_at(Kind::Malformed, "unknown request \"x\"", t0);
        assert_eq!(other.len(), 1);
        assert!(
            other[0].contains("malformed request, refused: unknown request \"x\";"),
            "{other:?}"
        );
        assert!(abuse.report_at(t0 + Duration::from_secs(30)).is_empty());
        let minute = t0 + REPORT_EVERY;
        assert_eq!(
            abuse.report_at(minute),
            [
                "test socket: a client sent no whole request in time, closed: suppressed 999 similar messages in the last 60 s"
            ]
        );
        // Reported and quiet since: the next is logged in full.
        assert_eq!(abuse.note_at(Kind::TooSlow, "", minute).len(), 1);
        assert_eq!(abuse.note_at(Kind::Malformed, "", minute).len(), 1);
        // A count not yet reported comes before the next full line.
        assert!(abuse.note_at(Kind::TooSlow, "", minute).is_empty());
        let next = abuse.note_at(Kind::TooSlow, "", minute + REPORT_EVERY);
        assert_eq!(next.len(), 2, "{next:?}");
        assert!(next[0].ends_with("suppressed 1 similar message in the last 60 s"));
    }

    struct Echo;
    impl Answer for Echo {
        fn answer(&self, line: Line) -> Outcome {
            let mut out = line.bytes().to_vec();
            out.push(b'\n');
            Outcome::Reply(Box::pin(std::future::ready(out)))
        }
        fn too_long(&self, limit: usize) -> Vec<u8> {
            format!("over {limit}\n").into_bytes()
        }
    }

    /// Over the cap, a connection is closed at once while those under it
    /// are still held (their deadline is a minute away); once they are
    /// gone, a new one is served.
    #[test]
    fn over_the_cap_is_closed_at_once() {
        use std::io::{Read, Write};
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("s.sock");
        let listener = UnixListener::bind(&path).unwrap_or_else(|e| panic!("{e}"));
        let limits = Limits {
            max_connections: 4,
            max_line: 16,
            deadline: Duration::from_secs(60),
        };
        serve(listener, "test socket", limits, Echo).unwrap_or_else(|e| panic!("{e}"));
        let ask = |line: &[u8]| {
            let mut s =
                std::os::unix::net::UnixStream::connect(&path).unwrap_or_else(|e| panic!("{e}"));
            s.set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap_or_else(|e| panic!("{e}"));
            let _ = s.write_all(line);
            s
        };
        let answer = |mut s: std::os::unix::net::UnixStream| {
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            out
        };
        let held: Vec<_> = (0..4).map(|_| ask(b"")).collect();
        assert_eq!(answer(ask(b"hello\n")), "", "over the cap: closed unread");
        // The held ones are still open: each is answered.
        for s in held {
            let mut s = s;
            s.write_all(b"0123456789abcdefg\n")
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(answer(s), "over 16\n");
        }
        // A slot is given back just after its connection closes.
        let served = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            answer(ask(b"hello\n")) == "hello\n"
        });
        assert!(served);
    }
}
