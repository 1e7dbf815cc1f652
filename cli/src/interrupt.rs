//! Ctrl-C during training: the first press asks the running trainer to
//! stop after its current step and write a checkpoint (the trainer's stop
//! flag); a second press exits at once.
//!
//! The handler is installed once per process (the `ctrlc` crate allows no
//! more), and commands that train several networks in turn (`ablate`,
//! `demo`) point it at each trainer's flag as they go.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};

static INSTALL: Once = Once::new();
static CURRENT: Mutex<Option<Arc<AtomicBool>>> = Mutex::new(None);
static PRESSED: AtomicBool = AtomicBool::new(false);

/// Routes Ctrl-C to `stop` (a trainer's stop flag) from now on.
pub fn watch(stop: Arc<AtomicBool>) {
    INSTALL.call_once(|| {
        // If a handler cannot be installed (rare: another one exists),
        // Ctrl-C keeps its default meaning and nothing else changes.
        let _ = ctrlc::set_handler(|| {
            if PRESSED.swap(true, Ordering::SeqCst) {
                eprintln!("\nsecond Ctrl-C: exiting without a checkpoint");
                std::process::exit(130);
            }
            eprintln!("\nCtrl-C: stopping after this step and writing a checkpoint (press again to quit now)");
            if let Some(flag) = CURRENT.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                flag.store(true, Ordering::SeqCst);
            }
        });
    });
    *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = Some(stop);
}
