//! Rate limiting of repeated log lines, so that a flood (a client opening
//! connection after connection, each refused) costs neither disk nor the
//! lines an operator needs.
//!
//! Each message has a key (a `&'static str` the code names, never text a
//! client controls, so the keys are few). Per key, the first
//! [`RateLimiter::burst`] lines of a window of [`RateLimiter::window`] are
//! logged; the rest are counted. When the window has closed, the count is
//! logged as one line, `<key>: suppressed M similar messages in the last
//! T s`, either by the next line of that key (before it) or by
//! [`RateLimiter::flush`], which a thread that wakes regularly calls.
//! The decisions are pure ([`RateLimiter::check_at`],
//! [`RateLimiter::flush_at`] take the time), so they are tested without
//! waiting.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Lines of one key logged per window by the process's limiter
/// ([`limited!`](crate::limited)).
pub const BURST: u32 = 5;
/// The window of the process's limiter.
pub const WINDOW: Duration = Duration::from_secs(10);

/// Lines of a key that were counted rather than logged, over a closed
/// window: log [`Suppressed::line`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppressed {
    /// The key of the lines.
    pub key: &'static str,
    /// How many were not logged.
    pub count: u64,
    /// From the window's first line to its close (or to now).
    pub over: Duration,
}

impl Suppressed {
    /// `<key>: suppressed M similar messages in the last T s`.
    pub fn line(&self) -> String {
        format!(
            "{}: suppressed {} similar message{} in the last {} s",
            self.key,
            self.count,
            if self.count == 1 { "" } else { "s" },
            self.over.as_secs().max(1)
        )
    }
}

/// What to do with one line of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Log it, after the count of an earlier window if there is one.
    Log(Option<Suppressed>),
    /// Count it: the key's lines for this window are spent.
    Suppress,
}

#[derive(Debug)]
struct Window {
    start: Instant,
    logged: u32,
    suppressed: u64,
}

/// Per key: `burst` lines a window, the rest counted.
#[derive(Debug)]
pub struct RateLimiter {
    burst: u32,
    window: Duration,
    keys: Mutex<BTreeMap<&'static str, Window>>,
}

impl RateLimiter {
    /// A limiter logging `burst` lines of each key per `window`.
    pub fn new(burst: u32, window: Duration) -> RateLimiter {
        RateLimiter {
            burst,
            window,
            keys: Mutex::new(BTreeMap::new()),
        }
    }

    /// Lines of a key logged per window.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// The window.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// [`check_at`](Self::check_at) now.
    pub fn check(&self, key: &'static str) -> Decision {
        self.check_at(key, Instant::now())
    }

    /// Whether a line of `key` at `now` is logged or counted.
    pub fn check_at(&self, key: &'static str, now: Instant) -> Decision {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let w = keys.entry(key).or_insert(Window {
            start: now,
            logged: 0,
            suppressed: 0,
        });
        let mut earlier = None;
        if now.saturating_duration_since(w.start) >= self.window {
            if w.suppressed > 0 {
                earlier = Some(Suppressed {
                    key,
                    count: w.suppressed,
                    over: now.saturating_duration_since(w.start),
                });
            }
            *w = Window {
                start: now,
                logged: 0,
                suppressed: 0,
            };
        }
        if w.logged < self.burst {
            w.logged += 1;
            Decision::Log(earlier)
        } else {
            w.suppressed += 1;
            Decision::Suppress
        }
    }

    /// [`flush_at`](Self::flush_at) now.
    pub fn flush(&self) -> Vec<Suppressed> {
        self.flush_at(Instant::now())
    }

    /// The counts of the windows closed by `now` that suppressed lines
    /// (each reported once); keys quiet for a whole window are forgotten.
    pub fn flush_at(&self, now: Instant) -> Vec<Suppressed> {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        keys.retain(|key, w| {
            let over = now.saturating_duration_since(w.start);
            if over < self.window {
                return true;
            }
            if w.suppressed > 0 {
                out.push(Suppressed {
                    key,
                    count: w.suppressed,
                    over,
                });
            }
            false
        });
        out
    }
}

/// The process's limiter, behind [`limited!`](crate::limited).
pub fn limiter() -> &'static RateLimiter {
    static LIMITER: OnceLock<RateLimiter> = OnceLock::new();
    LIMITER.get_or_init(|| RateLimiter::new(BURST, WINDOW))
}

/// Logs the counts of the process limiter's closed windows, each at
/// `level` (from a thread that wakes regularly, so that a flood's count
/// shows once it is over); the lines carry the caller's file and line.
#[track_caller]
pub fn flush_limited(level: log::Level) {
    let at = std::panic::Location::caller();
    for s in limiter().flush() {
        if level > log::max_level() {
            continue;
        }
        let line = s.line();
        log::logger().log(
            &log::Record::builder()
                .args(format_args!("{line}"))
                .level(level)
                .target(module_path!())
                .file(Some(at.file()))
                .line(Some(at.line()))
                .build(),
        );
    }
}

/// Logs like `log::log!(level, ...)`, at most [`BURST`] lines of `key`
/// per [`WINDOW`]; the others are counted and the count logged once the
/// window has closed (see the [module](crate::limit)). `key` is a
/// `&'static str` naming the kind of message (it starts the count's line).
///
/// ```ignore
/// calico_log::limited!("BGP: refused a connection: not a peer", log::Level::Info,
///     "BGP: refused a connection: not a peer ({})", "172.31.0.200:40000");
/// ```
#[macro_export]
macro_rules! limited {
    ($key:expr, $level:expr, $($arg:tt)+) => {{
        let level: $crate::__log::Level = $level;
        if $crate::__log::log_enabled!(level) {
            match $crate::limit::limiter().check($key) {
                $crate::limit::Decision::Log(earlier) => {
                    if let Some(s) = earlier {
                        $crate::__log::log!(level, "{}", s.line());
                    }
                    $crate::__log::log!(level, $($arg)+);
                }
                $crate::limit::Decision::Suppress => {}
            }
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &str = "BGP: refused a connection: not a peer";

    #[test]
    fn a_burst_per_window_then_one_count_when_the_next_line_passes() {
        let l = RateLimiter::new(3, Duration::from_secs(10));
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        for i in 0..3 {
            assert_eq!(l.check_at(K, at(i)), Decision::Log(None));
        }
        for i in 3..1000 {
            assert_eq!(l.check_at(K, at(i)), Decision::Suppress);
        }
        // Another key has its own lines.
        assert_eq!(l.check_at("other", at(1000)), Decision::Log(None));
        // Still the first window.
        assert_eq!(l.check_at(K, at(9_999)), Decision::Suppress);
        // The window closed: the next line brings the count before it.
        let want = Suppressed {
            key: K,
            count: 998,
            over: Duration::from_secs(12),
        };
        assert_eq!(l.check_at(K, at(12_000)), Decision::Log(Some(want.clone())));
        assert_eq!(
            want.line(),
            "BGP: refused a connection: not a peer: suppressed 998 similar messages in the last 12 s"
        );
        // A new window: its own burst, nothing counted yet.
        assert_eq!(l.check_at(K, at(12_001)), Decision::Log(None));
        assert_eq!(l.check_at(K, at(12_002)), Decision::Log(None));
        assert_eq!(l.check_at(K, at(12_003)), Decision::Suppress);
        assert!(l.flush_at(at(12_004)).is_empty(), "window still open");
    }

    #[test]
    fn a_flush_reports_each_closed_windows_count_once() {
        let l = RateLimiter::new(1, Duration::from_secs(10));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(l.check_at(K, at(0)), Decision::Log(None));
        assert_eq!(l.check_at(K, at(1)), Decision::Suppress);
        assert_eq!(l.check_at("quiet", at(2)), Decision::Log(None));
        assert!(l.flush_at(at(9)).is_empty());
        assert_eq!(
            l.flush_at(at(11)),
            vec![Suppressed {
                key: K,
                count: 1,
                over: Duration::from_secs(11)
            }]
        );
        assert_eq!(
            l.flush_at(at(11)).first().map(Suppressed::line),
            None,
            "reported once"
        );
        // After the flush, the key starts over with no count pending.
        assert_eq!(l.check_at(K, at(30)), Decision::Log(None));
        assert_eq!(
            Suppressed {
                key: K,
                count: 1,
                over: Duration::ZERO
            }
            .line(),
            "BGP: refused a connection: not a peer: suppressed 1 similar message in the last 1 s"
        );
    }

    #[test]
    fn a_zero_burst_counts_everything() {
        let l = RateLimiter::new(0, Duration::from_secs(1));
        let t0 = Instant::now();
        assert_eq!(l.check_at(K, t0), Decision::Suppress);
        assert_eq!(l.flush_at(t0 + Duration::from_secs(1))[0].count, 1);
    }
}
