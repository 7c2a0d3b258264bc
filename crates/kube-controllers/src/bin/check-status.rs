//! `check-status`: the liveness/readiness probe of calico-kube-controllers,
//! as Calico's: `-r`/`--ready` or `-l`/`--live` read the status file
//! (`-f`/`--file`, default `/status/status.json`) and exit 0 printing
//! `Ready`, or 1 printing the reasons; no flag is an error.

use std::path::PathBuf;

use calico_kube_controllers::status::{DEFAULT_STATUS_FILE, Status};

fn main() {
    let mut file = PathBuf::from(DEFAULT_STATUS_FILE);
    let mut check = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-r" | "--ready" | "-l" | "--live" => check = true,
            "-f" | "--file" => file = args.next().map(PathBuf::from).unwrap_or(file),
            "-v" | "--version" => {
                println!("{}", env!("CARGO_PKG_VERSION"));
                return;
            }
            other => {
                println!("Failed to parse flags: unknown flag {other}");
                std::process::exit(1);
            }
        }
    }
    if !check {
        println!("No command specified to check-status");
        std::process::exit(1);
    }
    match Status::read(&file) {
        Err(e) => {
            println!("Failed to read status file {}: {e}", file.display());
            std::process::exit(1);
        }
        Ok(s) if s.ready() => println!("Ready"),
        Ok(s) => {
            println!("{}", s.not_ready());
            std::process::exit(1);
        }
    }
}
