//! The datastore lock: ClusterInformation `default` `spec.datastoreReady`.
//!
//! As Calico's: `lock` sets it false (creating the ClusterInformation, with
//! a new cluster GUID, when there is none), `unlock` sets it true. While it
//! is false the `calico` CNI plugin refuses ADD and DEL and calico-node
//! leaves the dataplane as it is. A datastore without a ClusterInformation,
//! or with `datastoreReady` unset, is unlocked.

use anyhow::Context;
use calico_api::resources::ClusterInformationSpec;
use calico_api::{Kind, Resource, ResourceKey};
use calico_datastore::{Client, ClientError};

/// The key of the ClusterInformation.
pub fn cluster_info_key() -> ResourceKey {
    ResourceKey {
        kind: Kind::ClusterInformation,
        namespace: None,
        name: "default".into(),
    }
}

/// The ClusterInformation `default`, if there is one.
pub fn cluster_info(client: &Client) -> anyhow::Result<Option<Resource>> {
    match client.get(&cluster_info_key()) {
        Ok(r) => Ok(Some(r)),
        Err(ClientError::NotFound(_)) => Ok(None),
        Err(e) => Err(e).context("cannot read the ClusterInformation"),
    }
}

/// Whether the datastore is locked (`datastoreReady: false`).
pub fn locked(client: &Client) -> anyhow::Result<bool> {
    Ok(matches!(
        cluster_info(client)?,
        Some(Resource::ClusterInformation(ci)) if ci.spec.datastore_ready == Some(false)
    ))
}

/// Sets `datastoreReady` (false locks), creating the ClusterInformation if needed.
pub fn set_ready(client: &Client, ready: bool) -> anyhow::Result<()> {
    let what = if ready { "unlocking" } else { "locking" };
    let r = match cluster_info(client)? {
        Some(Resource::ClusterInformation(mut ci)) => {
            ci.spec.datastore_ready = Some(ready);
            Resource::ClusterInformation(ci)
        }
        _ => {
            let mut r = Resource::empty(Kind::ClusterInformation, "default");
            if let Resource::ClusterInformation(ci) = &mut r {
                ci.spec = ClusterInformationSpec {
                    cluster_guid: Some(new_guid()?),
                    datastore_ready: Some(ready),
                    ..Default::default()
                };
            }
            r
        }
    };
    client
        .apply(r)
        .with_context(|| format!("error updating the ClusterInformation for {what}"))?;
    Ok(())
}

/// A new cluster GUID as Calico makes them: 16 random bytes in hex.
pub fn new_guid() -> anyhow::Result<String> {
    use std::io::Read;
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .context("cannot read /dev/urandom for a cluster GUID")?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}
