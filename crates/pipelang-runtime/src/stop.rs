//! Graceful stop. SIGINT and SIGTERM (a scheduler's preemption sends SIGTERM and waits) set a
//! flag that the training loop reads at every step boundary: the trainer checkpoints, the run
//! records where it stopped, and `pipe run` exits with its own status and the command that
//! continues. A second signal ends the process at once, as SIGKILL would: every file of the run
//! is written atomically, so `--resume` still continues from the last checkpoint.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};

/// The request to stop, shared by the signal handlers and the training loop. The default one
/// is never set by a signal (tests and library users that install no handlers).
#[derive(Debug, Clone, Default)]
pub struct StopFlag {
    requested: Arc<AtomicBool>,
    /// The signal that set it (0: none, or set by [`StopFlag::request`]).
    signal: Arc<AtomicUsize>,
}

impl StopFlag {
    /// A flag set by SIGINT and SIGTERM. The first of them asks for a stop at the next step
    /// boundary (and says so on stderr); the next one exits at once with 128 + its number,
    /// the status a shell reports for a process killed by that signal.
    pub fn on_signals() -> std::io::Result<StopFlag> {
        let flag = StopFlag::default();
        for sig in [SIGINT, SIGTERM] {
            // Registered before the flag itself: it sees the flag as the previous signal left it.
            signal_hook::flag::register_conditional_shutdown(
                sig,
                128 + sig,
                flag.requested.clone(),
            )?;
            signal_hook::flag::register_usize(sig, flag.signal.clone(), sig as usize)?;
            signal_hook::flag::register(sig, flag.requested.clone())?;
        }
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
        std::thread::Builder::new()
            .name("pipe-stop".into())
            .spawn(move || {
                // Only the first is announced: the second has already ended the process.
                if let Some(sig) = signals.forever().next() {
                    eprintln!(
                        "pipe run: {} received: stopping after the current step with a \
                         checkpoint (send it again to stop at once)",
                        name(sig)
                    );
                }
            })?;
        Ok(flag)
    }

    /// Asks for a stop as a signal would (without a signal).
    pub fn request(&self) {
        self.requested.store(true, Ordering::SeqCst);
    }

    pub fn requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// The name of the signal that asked for the stop ("a stop request" without one).
    pub fn cause(&self) -> String {
        match self.signal.load(Ordering::SeqCst) {
            0 => "a stop request".into(),
            sig => name(sig as i32).into(),
        }
    }
}

fn name(sig: i32) -> &'static str {
    match sig {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}
