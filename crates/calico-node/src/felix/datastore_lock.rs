//! The datastore lock as Felix honours it: while the ClusterInformation
//! `default` has `spec.datastoreReady: false` (`calicoctl datastore migrate
//! lock`, or an import in progress), Felix makes no change to the
//! dataplane and waits ("Waiting for datastore to be initialized (or
//! migrated)"), staying live and ready; when the flag turns true it carries
//! on. No ClusterInformation, or no `datastoreReady`, means ready.

use calico_api::{Kind, Resource, ResourceKey};
use calico_datastore::{Client, Revision, keys};

/// What the agent logs and reports on readiness while the datastore is locked.
pub const WAITING: &str = "datastore locked (ClusterInformation datastoreReady is false): waiting for it to be initialized (or migrated); the dataplane is left as it is";

/// The revision to wait from when the datastore is locked; `None` when it is not.
pub fn locked_at(client: &Client) -> Result<Option<Revision>, String> {
    let key = ResourceKey {
        kind: Kind::ClusterInformation,
        namespace: None,
        name: "default".into(),
    };
    let (kvs, rev) = client
        .store()
        .list(&keys::resource_key(&key))
        .map_err(|e| format!("datastore: {e}"))?;
    if kvs.is_empty() {
        return Ok(None);
    }
    match client.get(&key) {
        Ok(Resource::ClusterInformation(ci)) if ci.spec.datastore_ready == Some(false) => {
            Ok(Some(rev))
        }
        Ok(_) | Err(calico_datastore::ClientError::NotFound(_)) => Ok(None),
        Err(e) => Err(format!("datastore: {e}")),
    }
}
