//! The wait at the end of each reconcile pass (Felix's and BGP's).

use std::time::{Duration, Instant};

use calico_datastore::{Client, Revision};

/// Waits until something under `/calico/` changes after revision `rev`,
/// or `within` passes. A change waits 50 ms more and takes in what came
/// meanwhile, so a burst is one pass. `on_event` is called per change.
pub fn wait_for_change(
    client: &Client,
    rev: Revision,
    within: Duration,
    on_event: &mut dyn FnMut(),
) {
    let deadline = Instant::now() + within;
    match client.store().watch("/calico/", rev + 1) {
        Ok(mut w) => {
            while Instant::now() < deadline {
                match w.next(Duration::from_millis(500)) {
                    Ok(Some(_)) => {
                        on_event();
                        std::thread::sleep(Duration::from_millis(50));
                        while let Ok(Some(_)) = w.next(Duration::from_millis(1)) {
                            on_event();
                        }
                        break;
                    }
                    Ok(None) => {}
                    Err(_) => break,
                }
            }
        }
        Err(_) => std::thread::sleep(Duration::from_secs(1)),
    }
}
