//! `calicoctl node status`: as Calico's, on the host it runs on — whether
//! the calico-node agent process is running, then its BGP sessions as a
//! table (PEER ADDRESS, PEER TYPE, STATE, SINCE, INFO). The sessions come
//! from the agent's control socket (`/bgp-status`; `calico-node.ctl` in
//! `CALICO_STATE_DIR`, else in `/var/run/calico`), always on and root-only,
//! where Calico asks BIRD's; an agent without one (an older calico-rs) is
//! asked on its health port (`FELIX_HEALTHHOST`:`FELIX_HEALTHPORT`).

use anyhow::bail;

/// Whether a `calico-node` agent (not a probe or install run) is running.
pub fn agent_running() -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten().any(|e| {
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            return false;
        };
        let args: Vec<&[u8]> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .collect();
        let Some(first) = args.first() else {
            return false;
        };
        let is_node = first.rsplit(|b| *b == b'/').next() == Some(b"calico-node".as_slice());
        // The agent runs with no argument or with -startup finished; probes exit at once.
        is_node && args.len() == 1
    })
}

/// Where the agent's control socket is (the agent's own rule, in
/// `calico_node::control::path`).
fn control_socket() -> std::path::PathBuf {
    match std::env::var("CALICO_STATE_DIR")
        .ok()
        .filter(|d| !d.trim().is_empty())
    {
        Some(dir) => std::path::Path::new(dir.trim()).join("calico-node.ctl"),
        None => std::path::Path::new("/var/run/calico/calico-node.ctl").to_path_buf(),
    }
}

/// Asks the agent's control socket for `path`: (status code, body); `None`
/// when there is no socket to ask.
fn agent_ask(path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let conn = std::os::unix::net::UnixStream::connect(control_socket()).ok()?;
    let timeout = Some(std::time::Duration::from_secs(5));
    let _ = conn.set_read_timeout(timeout);
    let _ = conn.set_write_timeout(timeout);
    writeln!(&conn, "{path}").ok()?;
    let mut answer = String::new();
    (&conn).take(16 << 20).read_to_string(&mut answer).ok()?;
    let (code, body) = answer.split_once('\n')?;
    Some((code.trim().parse().ok()?, body.to_string()))
}

/// `GET path` from the agent's health server: (status code, body).
fn agent_get(path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let host = std::env::var("FELIX_HEALTHHOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "127.0.0.1".into());
    let port: u16 = std::env::var("FELIX_HEALTHPORT")
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(9099);
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
        .ok()?
        .next()?;
    let mut s =
        std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2)).ok()?;
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let code = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Some((code, body.to_string()))
}

/// A table as Calico's calicoctl prints it: `+---+` borders, headings
/// centred, cells left-aligned.
pub fn table(headings: &[&str], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = headings
        .iter()
        .enumerate()
        .map(|(i, h)| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
                .max(h.len())
        })
        .collect();
    let rule: String = widths
        .iter()
        .map(|w| format!("+{}", "-".repeat(w + 2)))
        .collect::<String>()
        + "+\n";
    let mut out = rule.clone();
    for (h, w) in headings.iter().zip(&widths) {
        let pad = w - h.len();
        let left = pad / 2;
        out += &format!("| {}{}{} ", " ".repeat(left), h, " ".repeat(pad - left));
    }
    out += "|\n";
    out += &rule;
    for r in rows {
        for (i, w) in widths.iter().enumerate() {
            let c = r.get(i).map_or("", String::as_str);
            out += &format!("| {c}{} ", " ".repeat(w - c.chars().count()));
        }
        out += "|\n";
    }
    out + &rule
}

/// The status text from the agent's `/bgp-status` lines (address, type,
/// state, since, info; tab-separated).
pub fn render(lines: &str) -> String {
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for l in lines.lines().filter(|l| !l.trim().is_empty()) {
        let row: Vec<String> = l.split('\t').map(str::to_string).collect();
        if row.first().is_some_and(|a| a.contains(':')) {
            v6.push(row);
        } else {
            v4.push(row);
        }
    }
    let headings = ["PEER ADDRESS", "PEER TYPE", "STATE", "SINCE", "INFO"];
    let mut out = String::new();
    for (family, rows) in [("IPv4", v4), ("IPv6", v6)] {
        out += &format!("{family} BGP status\n");
        if rows.is_empty() {
            out += &format!("No {family} peers found.\n");
        } else {
            out += &table(&headings, &rows);
        }
        out += "\n";
    }
    out
}

pub fn run() -> anyhow::Result<()> {
    if !agent_running() {
        bail!("Calico process is not running.");
    }
    println!("Calico process is running.\n");
    match agent_ask("/bgp-status").or_else(|| agent_get("/bgp-status")) {
        Some((200, body)) => print!("{}", render(&body)),
        _ => println!("None of the BGP backend processes (BIRD or GoBGP) are running."),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_as_calico() {
        let out = render("172.17.8.102\tnode-to-node mesh\tup\t23:30:04\tEstablished\n");
        assert_eq!(
            out,
            "IPv4 BGP status\n\
             +--------------+-------------------+-------+----------+-------------+\n\
             | PEER ADDRESS |     PEER TYPE     | STATE |  SINCE   |    INFO     |\n\
             +--------------+-------------------+-------+----------+-------------+\n\
             | 172.17.8.102 | node-to-node mesh | up    | 23:30:04 | Established |\n\
             +--------------+-------------------+-------+----------+-------------+\n\
             \n\
             IPv6 BGP status\n\
             No IPv6 peers found.\n\n"
        );
    }
}
