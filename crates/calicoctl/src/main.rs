//! `calicoctl`: the command-line interface over the calico-rs datastore.
//!
//! Thin wiring: parse arguments (as Calico's calicoctl takes them), open the
//! datastore, run one subcommand from [`commands`], print, exit 0 or 1.

mod commands;
mod input;
mod table;
mod template;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use calico_datastore::{Client, DatastoreConfig};
use clap::{Parser, Subcommand};

/// Where calicoctl looks for its config file when `--config` is not given.
const DEFAULT_CONFIG: &str = "/etc/calico/calicoctl.cfg";

#[derive(Parser)]
#[command(name = "calicoctl", about = "Manage calico-rs resources", version = env!("CARGO_PKG_VERSION"))]
struct Cli {
    /// Path to a CalicoAPIConfig file (default /etc/calico/calicoctl.cfg, else the environment).
    #[arg(short = 'c', long, global = true)]
    config: Option<PathBuf>,
    /// Accepted for compatibility with Calico's calicoctl; versions are not compared.
    #[arg(long, global = true)]
    allow_version_mismatch: bool,
    /// Accepted for compatibility; calicoctl logs nothing but errors.
    #[arg(short = 'l', long, global = true)]
    log_level: Option<String>,
    /// With `-f DIR`: read the directory's subdirectories too (create,
    /// apply, replace, delete, get, validate).
    #[arg(short = 'R', long, global = true)]
    recursive: bool,
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create resources from a file; fails if any exists.
    Create(commands::write::WriteArgs),
    /// Create or update resources from a file.
    Apply(commands::write::WriteArgs),
    /// Replace existing resources from a file.
    Replace(commands::write::WriteArgs),
    /// Delete resources by file or by kind and name.
    Delete(commands::delete::DeleteArgs),
    /// Show resources.
    Get(commands::get::GetArgs),
    /// Patch a resource with a JSON merge patch.
    Patch(commands::patch::PatchArgs),
    /// Set or remove a label on a resource.
    Label(commands::label::LabelArgs),
    /// Check resources in a file without writing them.
    Validate(commands::validate::ValidateArgs),
    /// Show the client and cluster versions.
    Version,
    /// IP address management.
    #[command(subcommand)]
    Ipam(commands::ipam::IpamCmd),
    /// The calico-node agent on this host.
    #[command(subcommand)]
    Node(commands::node::NodeCmd),
    /// Datastore migration: export, import, lock, unlock.
    #[command(subcommand)]
    Datastore(commands::datastore::DatastoreCmd),
}

/// Opens the datastore named by `--config`, the default config file, or the environment.
pub fn connect(config: Option<&PathBuf>) -> anyhow::Result<Client> {
    connect_with(datastore_config(config)?)
}

/// The datastore settings: `--config`, else the default file if present,
/// else the environment.
pub fn datastore_config(config: Option<&PathBuf>) -> anyhow::Result<DatastoreConfig> {
    Ok(match config {
        Some(p) => DatastoreConfig::from_file(p)?,
        None if std::path::Path::new(DEFAULT_CONFIG).exists() => {
            DatastoreConfig::from_file(DEFAULT_CONFIG.as_ref())?
        }
        None => DatastoreConfig::from_env()?,
    })
}

/// A client of the datastore `cfg` describes.
pub fn connect_with(cfg: DatastoreConfig) -> anyhow::Result<Client> {
    let store = cfg.connect().context("cannot open the datastore")?;
    Ok(Client::new(store))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = (cli.allow_version_mismatch, &cli.log_level);
    input::set_recursive(cli.recursive);
    let cfg = cli.config.as_ref();
    let result = match cli.cmd {
        Command::Create(a) => commands::write::run(cfg, commands::write::Mode::Create, a),
        Command::Apply(a) => commands::write::run(cfg, commands::write::Mode::Apply, a),
        Command::Replace(a) => commands::write::run(cfg, commands::write::Mode::Replace, a),
        Command::Delete(a) => commands::delete::run(cfg, a),
        Command::Get(a) => commands::get::run(cfg, a),
        Command::Patch(a) => commands::patch::run(cfg, a),
        Command::Label(a) => commands::label::run(cfg, a),
        Command::Validate(a) => commands::validate::run(a),
        Command::Version => commands::version::run(cfg),
        Command::Ipam(c) => commands::ipam::run(cfg, c),
        Command::Node(c) => commands::node::run(cfg, c),
        Command::Datastore(c) => commands::datastore::run(cfg, c),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
