//! `calicoctl validate -f FILE`: decode, default and validate every
//! resource without touching the datastore.

use clap::Args;

use crate::input::{kind_label, read_prepared};

/// Arguments of validate.
#[derive(Args)]
pub struct ValidateArgs {
    /// File of resources (`-` for stdin).
    #[arg(short = 'f', long = "filename")]
    file: String,
}

/// Runs the command.
pub fn run(a: ValidateArgs) -> anyhow::Result<()> {
    let rs = read_prepared(&a.file, None)?.resources;
    println!(
        "Successfully validated {} {}resource(s)",
        rs.len(),
        kind_label(rs.iter().map(|p| p.kind))
    );
    Ok(())
}
