//! The datastore lock, as Calico's `calico` plugin honours it: while the
//! ClusterInformation `default` has `spec.datastoreReady: false` (set by
//! `calicoctl datastore migrate lock`, or during an import), ADD and DEL
//! are refused before anything is made or removed. A datastore without a
//! ClusterInformation, or with `datastoreReady` unset, is ready (calico-rs
//! does not require one).

use calico_api::{Kind, Resource, ResourceKey};
use calico_datastore::{Client, ClientError};
use cni_spec::error::CniError;

/// Whether the datastore is locked.
pub fn locked(client: &Client) -> Result<bool, ClientError> {
    let key = ResourceKey {
        kind: Kind::ClusterInformation,
        namespace: None,
        name: "default".into(),
    };
    match client.get(&key) {
        Ok(Resource::ClusterInformation(ci)) => Ok(ci.spec.datastore_ready == Some(false)),
        Ok(_) | Err(ClientError::NotFound(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Refuses (CNI code 11, try again later) while the datastore is locked.
pub fn refuse_if_locked(client: &Client) -> Result<(), CniError> {
    match locked(client) {
        Ok(false) => Ok(()),
        Ok(true) => Err(CniError::try_again_later(
            "calico is currently not ready to process requests",
        )
        .with_details(
            "the datastore is locked (ClusterInformation default has datastoreReady: false, as during `calicoctl datastore migrate`); run `calicoctl datastore migrate unlock` when the migration is done",
        )),
        Err(e) => Err(CniError::try_again_later(format!(
            "error getting ClusterInformation: {e}"
        ))),
    }
}
