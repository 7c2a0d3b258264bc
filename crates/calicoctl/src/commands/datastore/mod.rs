//! `calicoctl datastore migrate export|import|lock|unlock`: moving a whole
//! datastore (every Calico resource and the IPAM state) to another one, in
//! the file format of Calico's calicoctl.
//!
//! The format (see [`export`]): the v3 resources as YAML, one `<Kind>List`
//! per kind each followed by `---`; a line `===`; the ClusterInformation as
//! JSON; a line `===`; the IPAM state as JSON (`block_affinities`, `blocks`,
//! `handles`, `config`), each entry `{Key, Value, TTL}` with the etcd key and
//! the value as stored. Export needs a locked source; import needs an empty
//! target and leaves it locked ([`lock`]) until `unlock`, as Calico's do.

pub mod export;
pub mod import;
pub mod lock;

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// The datastore subcommands.
#[derive(Subcommand)]
pub enum DatastoreCmd {
    /// Move the datastore's contents to another datastore.
    #[command(subcommand)]
    Migrate(MigrateCmd),
}

/// The migrate subcommands.
#[derive(Subcommand)]
pub enum MigrateCmd {
    /// Print every resource and the IPAM state (of a locked datastore) in Calico's export format.
    Export,
    /// Load a file written by `export` into an empty datastore; it stays locked.
    Import(ImportArgs),
    /// Lock the datastore: agents and plugins stop changing the dataplane (datastoreReady false).
    Lock,
    /// Unlock the datastore (datastoreReady true).
    Unlock,
}

/// Arguments of import.
#[derive(Args)]
pub struct ImportArgs {
    /// The file written by `calicoctl datastore migrate export` (`-` for stdin).
    #[arg(short = 'f', long)]
    filename: String,
}

/// Runs one datastore subcommand.
pub fn run(config: Option<&PathBuf>, cmd: DatastoreCmd) -> anyhow::Result<()> {
    let DatastoreCmd::Migrate(m) = cmd;
    let client = crate::connect(config)?;
    match m {
        MigrateCmd::Export => {
            let text = export::export(&client)?;
            print!("{text}");
            Ok(())
        }
        MigrateCmd::Import(a) => {
            let text = if a.filename == "-" {
                std::io::read_to_string(std::io::stdin())
                    .map_err(|e| anyhow::anyhow!("cannot read the export from stdin: {e}"))?
            } else {
                std::fs::read_to_string(&a.filename).map_err(|e| {
                    anyhow::anyhow!("cannot read the export file {}: {e}", a.filename)
                })?
            };
            let report = import::import(&client, &text)?;
            print!("{report}");
            Ok(())
        }
        MigrateCmd::Lock => {
            lock::set_ready(&client, false)?;
            println!("Datastore locked.");
            Ok(())
        }
        MigrateCmd::Unlock => {
            lock::set_ready(&client, true)?;
            println!("Datastore unlocked.");
            Ok(())
        }
    }
}
