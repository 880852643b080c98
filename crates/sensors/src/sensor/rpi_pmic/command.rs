//! Running `vcgencmd pmic_read_adc` once: its output, and the CPU time the process took.
//!
//! One process per read. The alternative, the firmware mailbox that vcgencmd itself talks to
//! (`/dev/vcio`, ioctl `IOCTL_MBOX_PROPERTY` with the `GET_GENCMD_RESULT` tag 0x00030080),
//! would save the process, but it is an interface the firmware does not document for this
//! command: its buffer layout and the command's text are vcgencmd's business and have changed
//! with firmware before (the two output formats of [`super::adc`]). vcgencmd is the supported
//! way, and a read every half second costs well under 1 % of a core
//! ([`super::DEFAULT_PERIOD`]).
//!
//! The child is waited for with `wait4`, which reports its CPU time (user + system, its own
//! waited-for children included): the sampler adds that to its thread's time, so a run's
//! `sampler_cpu_pct` counts what the reads really cost. A child that does not finish within
//! [`TIMEOUT`] is killed, so a wedged firmware call cannot hold the sampler thread forever.
//! A failed run's CPU counts too. (Where the sampler thread runs at SCHED_FIFO, as root, the
//! child inherits it: it runs for about a millisecond and waits on the firmware, and resetting
//! it would need a `pre_exec` hook, which turns the cheap spawn into a fork of the whole
//! process.)

use std::fmt;
use std::io::{ErrorKind, Read};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The longest a read may take: vcgencmd answers in milliseconds; seconds means it is stuck.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// More output than this is not `pmic_read_adc`'s (about 1.3 KiB on a Pi 5).
const MAX_OUTPUT: usize = 64 * 1024;

/// The argument vcgencmd is given.
pub const COMMAND: &str = "pmic_read_adc";

/// What one run of the program gave.
#[derive(Debug, Clone)]
pub struct Output {
    /// What it printed, or why there is nothing to read.
    pub stdout: Result<String, RunError>,
    /// User plus system CPU time of the child, whether it succeeded or not (a child killed
    /// at its time limit may have spent all of it).
    pub cpu: Duration,
}

/// Why a run of the program gave no output to read.
#[derive(Debug, Clone, PartialEq)]
pub enum RunError {
    /// Not found (on PATH, or at the path given).
    NotFound(PathBuf),
    /// Found, but it could not be started (permissions, not an executable).
    Start(PathBuf, String),
    /// It ended with a failure; the first line of what it wrote to stderr.
    Failed {
        program: PathBuf,
        status: String,
        stderr: String,
    },
    /// It did not finish within [`TIMEOUT`] (then killed).
    TimedOut(PathBuf),
    /// Its output was not text, or too long.
    Output(PathBuf, String),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::NotFound(p) if p.components().count() == 1 => write!(
                f,
                "cannot run {}: no such program on PATH (Raspberry Pi OS has it in package \
                 raspi-utils; or give its path: vcgencmd = \"/usr/bin/vcgencmd\")",
                p.display()
            ),
            RunError::NotFound(p) => write!(f, "cannot run {}: no such file", p.display()),
            RunError::Start(p, why) => write!(f, "cannot run {}: {why}", p.display()),
            RunError::Failed {
                program,
                status,
                stderr,
            } => {
                write!(f, "{} {COMMAND} failed ({status})", program.display())?;
                if !stderr.is_empty() {
                    write!(f, ": {stderr}")?;
                }
                Ok(())
            }
            RunError::TimedOut(p) => write!(
                f,
                "{} {COMMAND} did not finish within {} s (killed)",
                p.display(),
                TIMEOUT.as_secs()
            ),
            RunError::Output(p, why) => write!(f, "{} {COMMAND}: {why}", p.display()),
        }
    }
}

impl std::error::Error for RunError {}

/// Runs `program pmic_read_adc` and returns what it printed and the CPU it used.
pub fn run(program: &Path) -> Output {
    run_with(program, &[COMMAND], TIMEOUT)
}

/// [`run`] with other arguments and time limit (tests).
pub fn run_with(program: &Path, args: &[&str], timeout: Duration) -> Output {
    let mut cpu = Duration::ZERO;
    let stdout = run_counting(program, args, timeout, &mut cpu);
    Output { stdout, cpu }
}

/// Where `program` is: the path given, or for a bare name the first executable of that name
/// on PATH. Looked up here rather than left to the spawn: a spawn reports a missing or
/// non-executable program as its own error on a board, but as a child that exits 127 or 126
/// under emulation (qemu-user), and the message would then blame the program's output.
fn locate(program: &Path) -> Result<PathBuf, RunError> {
    use std::os::unix::fs::PermissionsExt as _;
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
    };
    let found = if program.components().count() > 1 {
        program.exists().then(|| program.to_path_buf())
    } else {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join(program))
            .find(|p| p.is_file() && executable(p))
    };
    match found {
        None => Err(RunError::NotFound(program.to_path_buf())),
        Some(p) if !p.is_file() || !executable(&p) => Err(RunError::Start(
            p,
            std::io::Error::from_raw_os_error(libc::EACCES).to_string(),
        )),
        Some(p) => Ok(p),
    }
}

/// Runs the program; once the child is reaped, its CPU time goes to `cpu`.
fn run_counting(
    program: &Path,
    args: &[&str],
    timeout: Duration,
    cpu: &mut Duration,
) -> Result<String, RunError> {
    let deadline = Instant::now() + timeout;
    let program = &locate(program)?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            ErrorKind::NotFound => RunError::NotFound(program.to_path_buf()),
            _ => RunError::Start(program.to_path_buf(), e.to_string()),
        })?;
    let pid = child.id() as libc::pid_t;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let mut text = Vec::new();
    let read = read_until_closed(&mut stdout, &mut text, deadline);
    // A child that closed its output exits at once; one that keeps running past the deadline
    // (or whose output went wrong) is killed, and reaped either way.
    let waited = match read {
        Ok(()) => reap_by(pid, deadline),
        Err(_) => None,
    };
    let (status, usage) = match waited {
        Some(done) => done,
        None => {
            let _ = child.kill();
            reap(pid).ok_or_else(|| {
                RunError::Start(program.to_path_buf(), "lost track of the child".into())
            })?
        }
    };
    *cpu = timeval(usage.ru_utime) + timeval(usage.ru_stime);
    read.map_err(|e| match e {
        ReadFailure::TimedOut => RunError::TimedOut(program.to_path_buf()),
        ReadFailure::TooLong => RunError::Output(
            program.to_path_buf(),
            format!("printed more than {} KiB", MAX_OUTPUT / 1024),
        ),
        ReadFailure::Io(e) => RunError::Output(program.to_path_buf(), e),
    })?;
    if waited.is_none() {
        return Err(RunError::TimedOut(program.to_path_buf()));
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        return Err(RunError::Failed {
            program: program.to_path_buf(),
            status: describe_status(status),
            stderr: first_line_waiting(&mut stderr),
        });
    }
    String::from_utf8(text)
        .map_err(|_| RunError::Output(program.to_path_buf(), "printed something not UTF-8".into()))
}

enum ReadFailure {
    TimedOut,
    TooLong,
    Io(String),
}

/// Reads `pipe` to its end, waiting at most until `deadline`.
fn read_until_closed(
    pipe: &mut std::process::ChildStdout,
    into: &mut Vec<u8>,
    deadline: Instant,
) -> Result<(), ReadFailure> {
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadFailure::TimedOut);
        }
        if !readable_within(pipe.as_raw_fd(), left) {
            continue;
        }
        match pipe.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                into.extend_from_slice(&buf[..n]);
                if into.len() > MAX_OUTPUT {
                    return Err(ReadFailure::TooLong);
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadFailure::Io(e.to_string())),
        }
    }
}

/// Whether `fd` has data (or its end) within `wait`.
fn readable_within(fd: libc::c_int, wait: Duration) -> bool {
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = wait.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
    // SAFETY: one pollfd that lives across the call; poll writes only its revents.
    unsafe { libc::poll(&mut poll, 1, ms) > 0 }
}

/// The child's exit status and resource use, once it has exited, polled until `deadline`.
fn reap_by(pid: libc::pid_t, deadline: Instant) -> Option<(libc::c_int, libc::rusage)> {
    loop {
        // SAFETY: wait4 writes only the status and the rusage it is given, both owned here.
        let mut status = 0;
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let got = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if got == pid {
            return Some((status, usage));
        }
        if got < 0 && std::io::Error::last_os_error().kind() != ErrorKind::Interrupted {
            return None;
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Waits for the (killed) child to end.
fn reap(pid: libc::pid_t) -> Option<(libc::c_int, libc::rusage)> {
    loop {
        // SAFETY: as in `reap_by`.
        let mut status = 0;
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if got == pid {
            return Some((status, usage));
        }
        if got < 0 && std::io::Error::last_os_error().kind() != ErrorKind::Interrupted {
            return None;
        }
    }
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
}

fn describe_status(status: libc::c_int) -> String {
    if libc::WIFEXITED(status) {
        format!("exit status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("status {status}")
    }
}

/// The first non-blank line the exited child left on stderr (without waiting on a pipe some
/// grandchild may hold open).
fn first_line_waiting(pipe: &mut std::process::ChildStderr) -> String {
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    while text.len() < MAX_OUTPUT && readable_within(pipe.as_raw_fd(), Duration::from_millis(1)) {
        match pipe.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&text)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .chars()
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(dir: &Path, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("stand-in");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn output_and_the_childs_cpu_time() {
        let dir = tempfile::tempdir().unwrap();
        // Burns some CPU so the child's time cannot read as zero.
        let p = script(
            dir.path(),
            "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo \"VDD_CORE_A=$1\"",
        );
        let out = run(&p);
        assert_eq!(out.stdout.unwrap(), "VDD_CORE_A=pmic_read_adc\n");
        assert!(out.cpu > Duration::ZERO, "{:?}", out.cpu);
        // A failing child's CPU counts too.
        let p = script(
            dir.path(),
            "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exit 1",
        );
        let out = run(&p);
        assert!(out.stdout.is_err() && out.cpu > Duration::ZERO, "{out:?}");
    }

    #[test]
    fn failures_are_one_line_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = run(Path::new("no-such-vcgencmd-here")).stdout.unwrap_err();
        assert_eq!(missing, RunError::NotFound("no-such-vcgencmd-here".into()));
        assert!(missing.to_string().contains("no such program on PATH"));
        let p = script(
            dir.path(),
            "echo 'VCHI initialization failed' >&2\n\necho more >&2; exit 3",
        );
        let e = run(&p).stdout.unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{} pmic_read_adc failed (exit status 3): VCHI initialization failed",
                p.display()
            )
        );
        let p = script(dir.path(), "kill -9 $$");
        assert!(run(&p)
            .stdout
            .unwrap_err()
            .to_string()
            .contains("failed (killed by signal 9)"));
        let p = script(dir.path(), "exec sleep 30");
        let started = Instant::now();
        let e = run_with(&p, &[], Duration::from_millis(200))
            .stdout
            .unwrap_err();
        assert_eq!(e, RunError::TimedOut(p.clone()));
        // Killed, not waited out.
        assert!(started.elapsed() < Duration::from_secs(20));
        std::fs::write(dir.path().join("plain"), "").unwrap();
        let e = run(&dir.path().join("plain")).stdout.unwrap_err();
        assert!(matches!(e, RunError::Start(..)), "{e:?}");
    }
}
