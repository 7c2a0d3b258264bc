//! A real etcd started for one test, and a datastore client over it.

use std::sync::Arc;

use calico_datastore::Client;
use calico_datastore::etcd::{EtcdStore, EtcdTls};
use calico_testutil::EtcdServer;

/// The server (stopped when dropped) and a client of it.
pub fn etcd_client() -> (EtcdServer, Client) {
    let etcd = EtcdServer::start();
    let store = EtcdStore::connect(&[etcd.endpoint()], &EtcdTls::default(), None)
        .unwrap_or_else(|e| panic!("{e}"));
    (etcd, Client::new(Arc::new(store)))
}
