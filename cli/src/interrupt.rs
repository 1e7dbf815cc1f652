//! Ctrl-C during training, and the signals that schedulers and service
//! managers send to stop a job (SIGTERM from Slurm, Docker and systemd;
//! SIGHUP when a terminal closes): the first asks the running trainer to
//! stop after its current step and write a checkpoint (the trainer's stop
//! flag); a second exits at once.
//!
//! The handler is installed once per process (the `ctrlc` crate allows no
//! more), and commands that train several networks in turn (`ablate`,
//! `demo`) point it at each trainer's flag as they go.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};

static INSTALL: Once = Once::new();
static CURRENT: Mutex<Option<Arc<AtomicBool>>> = Mutex::new(None);
static PRESSED: AtomicBool = AtomicBool::new(false);

/// Routes Ctrl-C, SIGTERM and SIGHUP to `stop` (a trainer's stop flag)
/// from now on.
pub fn watch(stop: Arc<AtomicBool>) {
    INSTALL.call_once(|| {
        // If a handler cannot be installed (rare: another one exists),
        // Ctrl-C keeps its default meaning and nothing else changes.
        let _ = ctrlc::set_handler(|| {
            if PRESSED.swap(true, Ordering::SeqCst) {
                say!("\nsecond stop signal: exiting without a checkpoint");
                std::process::exit(130);
            }
            say!(
                "\nstop signal (Ctrl-C, SIGTERM or SIGHUP): stopping after this step and writing \
                 a checkpoint (another one quits now)"
            );
            if let Some(flag) = CURRENT.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                flag.store(true, Ordering::SeqCst);
            }
        });
    });
    *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = Some(stop);
}
