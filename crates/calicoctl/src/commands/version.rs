//! `calicoctl version`: the client version, and the cluster's from its
//! ClusterInformation when the datastore has one.

use std::path::PathBuf;

use calico_api::{Kind, Resource, ResourceKey};

/// Runs the command.
pub fn run(config: Option<&PathBuf>) -> anyhow::Result<()> {
    println!("Client Version:    v{}", env!("CARGO_PKG_VERSION"));
    println!(
        "Git commit:        {}",
        option_env!("CALICO_GIT_COMMIT").unwrap_or("unknown")
    );
    let info = crate::connect(config).and_then(|c| {
        let k = ResourceKey {
            kind: Kind::ClusterInformation,
            namespace: None,
            name: "default".into(),
        };
        Ok(c.get(&k)?)
    });
    match info {
        Ok(Resource::ClusterInformation(ci)) => {
            println!(
                "Cluster Version:   {}",
                ci.spec.calico_version.unwrap_or_else(|| "unknown".into())
            );
            println!(
                "Cluster Type:      {}",
                ci.spec.cluster_type.unwrap_or_else(|| "unknown".into())
            );
        }
        Ok(_) => {}
        Err(e) => eprintln!("Unable to retrieve Cluster Version or Type: {e:#}"),
    }
    Ok(())
}
