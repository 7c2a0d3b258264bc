//! Logs as Calico writes them, behind the ecosystem's `log` facade:
//!
//! ```text
//! 2026-12-03 05:56:30.779 [INFO][4242] felix/mod.rs 123: nftables table inet calico updated
//! 2026-12-03 05:56:31.002 [WARNING][4242] bgp/speaker.rs 88: session down peer="172.31.0.2"
//! ```
//!
//! Local time to the millisecond, the level in capitals, the process id,
//! the source file (from its crate's `src/`) and line, the message, then
//! the record's key-values (`log::info!(pod = name; "...")`) as
//! `key="value"`, as logrus prints Calico's fields. Levels are read as
//! Calico's settings give them ([`parse_level`]: `info`, `Info`, `WARNING`,
//! `none`, ...). Lines go to stderr (the agent, as `kubectl logs` reads
//! it) or are appended to a file (the CNI plugins, whose stdout carries the
//! result). [`line`] is the pure formatter.
//!
//! Lines a client can cause over and over (a refused connection) go
//! through [`limited!`], which logs a few per key and window and counts the
//! rest ([`limit`]).

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{Mutex, OnceLock};

pub use log::LevelFilter;

pub mod limit;
pub use limit::{RateLimiter, flush_limited};

#[doc(hidden)]
pub use log as __log;

/// Reads a level as Calico's settings spell it (`FELIX_LOGSEVERITYSCREEN`,
/// `CALICO_LOG_LEVEL`, the CNI `log_level`), in any case: `trace`,
/// `debug`, `info`, `warning`/`warn`, `error`, `fatal`/`panic`,
/// `none`/`off`.
pub fn parse_level(s: &str) -> Result<LevelFilter, String> {
    Ok(match s.trim().to_ascii_lowercase().as_str() {
        "trace" => LevelFilter::Trace,
        "debug" => LevelFilter::Debug,
        "info" => LevelFilter::Info,
        "warning" | "warn" => LevelFilter::Warn,
        "error" | "fatal" | "panic" => LevelFilter::Error,
        "none" | "off" => LevelFilter::Off,
        _ => {
            return Err(format!(
                "{s:?} is not a log level (trace, debug, info, warning, error, fatal or none)"
            ));
        }
    })
}

/// Calico's name of a level.
fn level_name(l: log::Level) -> &'static str {
    match l {
        log::Level::Error => "ERROR",
        log::Level::Warn => "WARNING",
        log::Level::Info => "INFO",
        log::Level::Debug => "DEBUG",
        log::Level::Trace => "TRACE",
    }
}

/// Year, month, day of a count of days since 1970-01-01 (proleptic
/// Gregorian; Howard Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `YYYY-MM-DD hh:mm:ss.mmm` for a Unix time in milliseconds at a UTC
/// offset in seconds.
pub fn timestamp(unix_ms: i64, offset_secs: i32) -> String {
    let local_ms = unix_ms + i64::from(offset_secs) * 1000;
    let secs = local_ms.div_euclid(1000);
    let ms = local_ms.rem_euclid(1000);
    let (y, mo, d) = civil(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}.{ms:03}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// The source file as Calico shows it: the part after the crate's `src/`
/// (`felix/mod.rs`), else the file name.
fn short_file(file: &str) -> &str {
    match file.rfind("src/") {
        Some(i) => &file[i + 4..],
        None => file.rsplit('/').next().unwrap_or(file),
    }
}

/// Collects a record's key-values as ` key="value"`.
struct Fields(String);

impl<'kvs> log::kv::VisitSource<'kvs> for Fields {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        let _ = write!(self.0, " {key}=\"{}\"", value.to_string().escape_default());
        Ok(())
    }
}

/// One log line (with its newline) for `record` at `unix_ms`, `offset_secs`;
/// `context` (already ` key="value"` text) follows the record's own fields.
pub fn line(
    record: &log::Record<'_>,
    unix_ms: i64,
    offset_secs: i32,
    pid: u32,
    context: &str,
) -> String {
    let mut fields = Fields(String::new());
    let _ = record.key_values().visit(&mut fields);
    fields.0.push_str(context);
    let file = record.file().map(short_file).unwrap_or("?");
    let mut msg = record.args().to_string();
    // One record, one line: a newline inside a message would let its text
    // pass for a line of its own.
    if msg.contains('\n') {
        msg = msg.replace('\n', "\\n");
    }
    format!(
        "{} [{}][{pid}] {file} {}: {msg}{}\n",
        timestamp(unix_ms, offset_secs),
        level_name(record.level()),
        record.line().unwrap_or(0),
        fields.0
    )
}

/// Where lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    /// Standard error.
    Stderr,
    /// Appended to this file (its directory created); lines that cannot be
    /// written are dropped.
    File(std::path::PathBuf),
}

/// The process's logger, once [`init`] made it.
static LOGGER: OnceLock<Logger> = OnceLock::new();

struct Logger {
    sink: Sink,
    /// Fields every line carries ([`set_context`]), as ` key="value"`.
    context: Mutex<String>,
    /// Serialises lines from several threads (and the file's opening).
    lock: Mutex<Option<std::fs::File>>,
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let context = self
            .context
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let text = line(
            record,
            now,
            calico_sys::local_offset(now / 1000),
            std::process::id(),
            &context,
        );
        let mut file = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        match &self.sink {
            Sink::Stderr => {
                let _ = std::io::stderr().write_all(text.as_bytes());
            }
            Sink::File(path) => {
                if file.is_none() {
                    if let Some(dir) = path.parent() {
                        let _ = std::fs::create_dir_all(dir);
                    }
                    *file = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .ok();
                }
                if let Some(f) = file.as_mut() {
                    let _ = f.write_all(text.as_bytes());
                }
            }
        }
    }

    fn flush(&self) {}
}

/// Sends this process's `log` records at `level` and above to `sink`, in
/// Calico's format. A second call changes only the level (the first
/// logger stays).
pub fn init(level: LevelFilter, sink: Sink) {
    let logger = LOGGER.get_or_init(|| Logger {
        sink,
        context: Mutex::new(String::new()),
        lock: Mutex::new(None),
    });
    let _ = log::set_logger(logger);
    set_level(level);
}

/// Fields every line of this process carries from now on (a CNI plugin's
/// container, namespace and pod), after each record's own.
pub fn set_context(fields: &[(&str, &str)]) {
    let mut text = String::new();
    for (k, v) in fields {
        let _ = write!(text, " {k}=\"{}\"", v.escape_default());
    }
    if let Some(l) = LOGGER.get() {
        *l.context.lock().unwrap_or_else(|p| p.into_inner()) = text;
    }
}

/// Changes the level from now on (a setting read again at run time).
pub fn set_level(level: LevelFilter) {
    if log::max_level() != level {
        log::set_max_level(level);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_local_time_to_the_millisecond() {
        // 2026-12-03 05:56:30.779 UTC.
        let t = 1_796_277_390_779;
        assert_eq!(timestamp(t, 0), "2026-12-03 05:56:30.779");
        assert_eq!(timestamp(t, 3600), "2026-12-03 06:56:30.779");
        assert_eq!(timestamp(t, -6 * 3600), "2026-12-02 23:56:30.779");
        assert_eq!(timestamp(0, 0), "1970-01-01 00:00:00.000");
        // A leap day, and the turn of a century that is no leap year.
        assert_eq!(timestamp(951_782_400_000, 0), "2000-02-29 00:00:00.000");
        assert_eq!(timestamp(4_107_542_400_000, 0), "2100-03-01 00:00:00.000");
    }

    #[test]
    fn a_line_as_calico_writes_it() {
        let pod = "web-1";
        let args = format_args!("ADD done\nfor real");
        let kvs: &[(&str, &str)] = &[("pod", pod), ("node", "n\"1")];
        let record = log::Record::builder()
            .args(args)
            .level(log::Level::Warn)
            .file(Some("crates/calico-cni/src/plugin/mod.rs"))
            .line(Some(123))
            .key_values(&kvs)
            .build();
        assert_eq!(
            line(&record, 1_796_277_390_779, 0, 42, " ContainerID=\"c1\""),
            "2026-12-03 05:56:30.779 [WARNING][42] plugin/mod.rs 123: ADD done\\nfor real pod=\"web-1\" node=\"n\\\"1\" ContainerID=\"c1\"\n"
        );
    }

    #[test]
    fn levels_as_calico_spells_them() {
        for (s, l) in [
            ("info", LevelFilter::Info),
            ("Info", LevelFilter::Info),
            ("WARNING", LevelFilter::Warn),
            ("warn", LevelFilter::Warn),
            ("debug", LevelFilter::Debug),
            ("Fatal", LevelFilter::Error),
            ("none", LevelFilter::Off),
        ] {
            assert_eq!(parse_level(s), Ok(l), "{s}");
        }
        assert!(parse_level("loud").unwrap_err().contains("not a log level"));
    }
}
