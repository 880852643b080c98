//! Ending a run on SIGINT, SIGTERM or SIGHUP.
//!
//! The first signal sets the run's interrupt flag: every phase (idle baseline, warm-up,
//! settle, timed run, between backends) stops at its next check, and the run writes what it
//! measured, marked `interrupted`. A second signal stops at once — but never inside a file
//! write: before measuring began there is nothing to keep, and the claimed run folder is given
//! up; once measuring began, it waits for the files to be written, then exits. Either way the
//! exit status is 128 + the first signal's number (130, 143, 129), as shells report it.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// Where the run stands: what a second signal must not cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Rig, models, sensors, ranging: nothing that counts is measured yet.
    Preparing,
    /// The measured run: its data is only in memory until written.
    Measuring,
    /// Writing the run folder and the exports.
    Writing,
    /// Everything is written.
    Written,
}

/// How long a second signal waits for a measuring run to reach its writing: one
/// classification and the sampler's stop take far less; a backend hung in its engine would
/// otherwise keep the run from ever stopping.
const MEASURING_GRACE: Duration = Duration::from_secs(5);

/// The first signal's number; 0 until one arrives.
static FIRST: AtomicI32 = AtomicI32::new(0);
static STAGE: Mutex<Stage> = Mutex::new(Stage::Preparing);
static STAGE_CHANGED: Condvar = Condvar::new();
/// What releasing the run folder takes (see [`on_exit`]).
type Release = Box<dyn Fn() + Send>;
static RELEASE: Mutex<Option<Release>> = Mutex::new(None);

/// Installs the handlers for SIGINT, SIGTERM and SIGHUP and returns the interrupt flag the
/// first of them sets. Call once per process.
pub fn install() -> Result<Arc<AtomicBool>> {
    let interrupt = Arc::new(AtomicBool::new(false));
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("cannot install the SIGINT, SIGTERM and SIGHUP handlers")?;
    let flag = Arc::clone(&interrupt);
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if FIRST
                    .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
                {
                    flag.store(true, Ordering::SeqCst);
                    say(&format!(
                        "{}: stopping; what was measured will be written (send it again to stop at once)",
                        name(signal)
                    ));
                } else {
                    stop_now(signal);
                }
            }
        })
        .context("cannot start the signal-handling thread")?;
    Ok(interrupt)
}

/// Records where the run stands, for a second signal.
pub fn set_stage(stage: Stage) {
    let mut now = STAGE.lock().unwrap_or_else(|e| e.into_inner());
    *now = stage;
    STAGE_CHANGED.notify_all();
}

/// Runs `f` with a second signal held off until it returns: claiming the run folder and
/// registering its release ([`on_exit`]) must happen as one, or a signal between them would
/// leave a claimed folder behind.
pub fn hold<T>(f: impl FnOnce() -> T) -> T {
    let _stage = STAGE.lock().unwrap_or_else(|e| e.into_inner());
    f()
}

/// What a second signal does to the run folder before it ends the process, which runs no
/// destructors: release the claim (remove the lock file, and the folder if the run created it
/// and wrote nothing).
pub fn on_exit(release: impl Fn() + Send + 'static) {
    *RELEASE.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(release));
}

/// The first signal received, if any.
pub fn received() -> Option<i32> {
    Some(FIRST.load(Ordering::SeqCst)).filter(|&s| s != 0)
}

/// The exit status for a run ended by `signal`: 128 + its number.
pub fn exit_code(signal: i32) -> u8 {
    u8::try_from(128 + signal).unwrap_or(255)
}

/// The signal's name: SIGINT, SIGTERM, SIGHUP.
pub fn name(signal: i32) -> String {
    match signal {
        SIGINT => "SIGINT".into(),
        SIGTERM => "SIGTERM".into(),
        SIGHUP => "SIGHUP".into(),
        other => format!("signal {other}"),
    }
}

/// The second signal: exits once no file is half-written. Holds the stage lock while exiting,
/// so the run cannot move on (and start a write) meanwhile.
fn stop_now(signal: i32) {
    let first = FIRST.load(Ordering::SeqCst);
    let mut stage = STAGE.lock().unwrap_or_else(|e| e.into_inner());
    if *stage == Stage::Measuring {
        say(&format!(
            "{} again: stopping once what was measured is written",
            name(signal)
        ));
        stage = STAGE_CHANGED
            .wait_timeout_while(stage, MEASURING_GRACE, |s| *s == Stage::Measuring)
            .map_or_else(|e| e.into_inner().0, |(s, _)| s);
    }
    if *stage == Stage::Writing {
        stage = STAGE_CHANGED
            .wait_while(stage, |s| *s == Stage::Writing)
            .unwrap_or_else(|e| e.into_inner());
    }
    if let Some(release) = RELEASE.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        release();
    }
    match *stage {
        Stage::Preparing => {
            say(&format!(
                "{} again: stopped before measuring began; nothing was written",
                name(signal)
            ));
        }
        Stage::Measuring => say(&format!(
            "the run did not stop within {} s of {}; stopped without writing its files",
            MEASURING_GRACE.as_secs(),
            name(first)
        )),
        Stage::Writing | Stage::Written => {
            say("stopped; the run folder is written (exports and the table skipped)");
        }
    }
    // `_exit`, not `exit`: a backend's engine may be running on the main thread, and C++
    // static destructors run by `exit` under it can crash. Everything written is in the kernel.
    // SAFETY: `_exit` only ends the process.
    unsafe { libc::_exit(i32::from(exit_code(first))) }
}

/// One stderr line; a closed terminal (SIGHUP) must not turn it into a panic.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "joulebench: {line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_128_plus_the_signal() {
        assert_eq!(exit_code(SIGINT), 130);
        assert_eq!(exit_code(SIGTERM), 143);
        assert_eq!(exit_code(SIGHUP), 129);
        assert_eq!(name(SIGTERM), "SIGTERM");
        assert_eq!(name(SIGHUP), "SIGHUP");
    }
}
