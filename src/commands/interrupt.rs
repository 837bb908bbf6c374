//! Ctrl-C and SIGTERM during a launch.
//!
//! Listening starts before anything is created, so the signal never kills the process midway
//! (which would strand a node). A create already in flight is allowed to finish, since
//! abandoning it could let the node appear after teardown has looked; the job phase, which owns
//! nothing, is simply stopped. The caller then tears down with `--down`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// The launch was interrupted by Ctrl-C or SIGTERM.
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

/// Set once a signal arrived.
#[derive(Debug, Clone)]
pub(super) struct Interrupt {
    fired: Arc<AtomicBool>,
    notify: Arc<Notify>,
}

impl Interrupt {
    /// Starts listening for SIGINT and SIGTERM.
    pub(super) fn listen() -> Self {
        let interrupt = Self {
            fired: Arc::new(AtomicBool::new(false)),
            notify: Arc::new(Notify::new()),
        };
        let handle = interrupt.clone();
        tokio::spawn(async move {
            if wait_for_signal().await {
                handle.fired.store(true, Ordering::SeqCst);
                handle.notify.notify_waiters();
            }
        });
        interrupt
    }

    /// The flag a signal sets, for loops that poll it.
    pub(super) fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.fired)
    }

    /// Whether a signal has arrived.
    pub(super) fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }

    /// Resolves once a signal has arrived.
    pub(super) async fn wait(&self) {
        loop {
            // Registered before the check, so a signal between the two is not missed.
            let notified = self.notify.notified();
            if self.fired() {
                return;
            }
            notified.await;
        }
    }
}

/// True when SIGINT or SIGTERM arrived; false if no handler could be installed.
async fn wait_for_signal() -> bool {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return tokio::signal::ctrl_c().await.is_ok();
    };
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.is_ok(),
        r = term.recv() => r.is_some(),
    }
}
