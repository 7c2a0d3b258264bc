use super::*;

#[test]
fn export_changes_are_one_wake_up_and_never_wait_on_a_full_channel() {
    let (tx, rx) = mpsc::sync_channel(1);
    let ptx = PeerTx {
        tx,
        exports: Arc::default(),
    };
    // The session is behind: its channel is full.
    ptx.tx.try_send(Input::Stop).unwrap();
    ptx.exports_changed();
    ptx.exports_changed();
    assert!(ptx.exports.load(Ordering::Acquire), "the flag carries it");
    assert!(matches!(rx.try_recv(), Ok(Input::Stop)));
    assert!(rx.try_recv().is_err(), "nothing queued behind");
    // The session looked at the flag; the next changes wake it once.
    assert!(ptx.exports.swap(false, Ordering::AcqRel));
    for _ in 0..5 {
        ptx.exports_changed();
    }
    assert!(matches!(rx.try_recv(), Ok(Input::Exports)));
    assert!(rx.try_recv().is_err(), "one wake-up for five changes");
}
