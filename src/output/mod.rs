//! Writing results: the run folder with its CSV files and `run.json`, and every command's
//! stdout ([`console`]).

pub mod batch_curve;
pub mod console;
pub mod files;
#[cfg(test)]
mod fixtures;
pub mod folder;
pub mod rebuild;
pub mod stream;
pub mod table;

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};

/// The lock file a run holds (`flock`) in its folder for as long as it runs.
pub const LOCK_FILE: &str = ".lock";
/// Written and removed to prove the folder takes data before anything is measured.
const PROBE_FILE: &str = ".write-probe";
/// The probe's size: enough to need a data block, so a full disk shows.
const PROBE_BYTES: usize = 64 * 1024;

/// A run folder claimed for one run: created, locked and proven writable. The lock lasts as
/// long as this value; dropping it removes the lock file, and the folder too if the run
/// created it and wrote nothing (a run refused after the claim leaves no empty folder).
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    created: bool,
    _lock: File,
}

impl RunDir {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What releasing the folder takes, for a caller that may end the process without
    /// dropping this value (a second signal).
    pub fn releaser(&self) -> impl Fn() + Send + 'static {
        let (path, created) = (self.path.clone(), self.created);
        move || release(&path, created)
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        release(&self.path, self.created);
    }
}

fn release(path: &Path, created: bool) {
    let _ = std::fs::remove_file(path.join(LOCK_FILE));
    if created {
        // Fails, as it should, once the run wrote anything.
        let _ = std::fs::remove_dir(path);
    }
}

/// Creates and claims the folder a run writes to, before anything is measured. Never reuses an
/// existing, non-empty folder: with `out` given it must be new or empty (a lock file left by a
/// run that was killed does not count); by default it is `results/<rig>-<UTC timestamp>/`,
/// suffixed `-2`, `-3`, ... if that exists already. A folder another run holds is refused, and
/// so is one that cannot be written.
pub fn create_run_dir(out: Option<&Path>, rig: &str, started: DateTime<Utc>) -> Result<RunDir> {
    if let Some(dir) = out {
        refuse_if_in_use(dir)?;
        if let Some(run) = dir.parent().and_then(folder::run_folder_holding) {
            bail!(
                "--out {} is inside the run folder {}: give a folder outside it, so that run's \
                 folder keeps only its own files",
                dir.display(),
                run.display()
            );
        }
        if occupied(dir) {
            bail!(
                "{} already holds files: choose a new --out folder",
                dir.display()
            );
        }
        let created = !dir.exists();
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        return claim(dir, created);
    }
    let results = Path::new("results");
    let base = results.join(format!("{rig}-{}", started.format("%Y%m%dT%H%M%SZ")));
    let made_results = !results.exists();
    std::fs::create_dir_all(results).context("cannot create results/")?;
    for n in 1.. {
        let dir = if n == 1 {
            base.clone()
        } else {
            PathBuf::from(format!("{}-{n}", base.display()))
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => return claim(&dir, true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                // A refused run leaves nothing behind, not an empty results/ either.
                if made_results {
                    let _ = std::fs::remove_dir(results);
                }
                return Err(e).with_context(|| format!("cannot create {}", dir.display()));
            }
        }
    }
    unreachable!("an unbounded range always yields")
}

/// Whether `dir` holds anything besides a lock file.
fn occupied(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name() != LOCK_FILE && e.file_name() != PROBE_FILE)
        })
        .unwrap_or(false)
}

/// A run in progress may already have written its first rows: "in use" says more than
/// "already holds files".
fn refuse_if_in_use(dir: &Path) -> Result<()> {
    match run_holding(dir)? {
        Some(run) => bail!(
            "{} is in use by {run}: wait for it to end or choose another --out folder",
            dir.display()
        ),
        None => Ok(()),
    }
}

/// "another joulebench run (process N)" where a run holds `dir`'s lock now, else `None`
/// (no lock file, or one a run that ended left behind).
pub fn run_holding(dir: &Path) -> Result<Option<String>> {
    let Ok(lock) = File::open(dir.join(LOCK_FILE)) else {
        return Ok(None);
    };
    if try_lock(&lock, dir)? {
        // Ours only for the look: closing `lock` lets it go.
        return Ok(None);
    }
    Ok(Some(in_use(&lock)))
}

fn claim(dir: &Path, created: bool) -> Result<RunDir> {
    let not_writable = |e: std::io::Error| {
        anyhow::anyhow!(
            "cannot write to {}: {e}: choose a folder you can write to (--out) or free space on its disk",
            dir.display()
        )
    };
    let mut lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(LOCK_FILE))
        .map_err(not_writable)?;
    if !try_lock(&lock, dir)? {
        bail!(
            "{} is in use by {}: wait for it to end or choose another --out folder",
            dir.display(),
            in_use(&lock)
        );
    }
    // The holder's process id, for the message a second run gets.
    lock.set_len(0)
        .and_then(|()| write!(lock, "{}", std::process::id()))
        .map_err(not_writable)?;
    // Ours from here: a failed probe below drops it, which cleans up.
    let run_dir = RunDir {
        path: dir.to_path_buf(),
        created,
        _lock: lock,
    };
    let probe = dir.join(PROBE_FILE);
    let written = File::create(&probe)
        .and_then(|mut f| {
            f.write_all(&[0u8; PROBE_BYTES])?;
            f.sync_all()
        })
        .map_err(not_writable);
    let _ = std::fs::remove_file(&probe);
    written?;
    Ok(run_dir)
}

/// Takes `lock`'s `flock` without waiting: false where another process holds it.
fn try_lock(lock: &File, dir: &Path) -> Result<bool> {
    // SAFETY: flock on a file descriptor this `File` owns.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.kind() == std::io::ErrorKind::WouldBlock {
        return Ok(false);
    }
    Err(e).with_context(|| format!("cannot lock {}", dir.join(LOCK_FILE).display()))
}

/// "another joulebench run (process N)", N from the lock file where it is written.
fn in_use(lock: &File) -> String {
    let holder = std::io::read_to_string(lock)
        .ok()
        .filter(|pid| !pid.trim().is_empty())
        .map_or(String::new(), |pid| format!(" (process {})", pid.trim()));
    format!("another joulebench run{holder}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_out_dir_must_be_new_or_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        let claimed = create_run_dir(Some(&dir), "r", Utc::now()).unwrap();
        assert_eq!(claimed.path(), dir);
        std::fs::write(dir.join("summary.csv"), "x").unwrap();
        drop(claimed);
        // The run is over: its lock file is gone, its files stay.
        assert!(!dir.join(LOCK_FILE).exists() && dir.join("summary.csv").exists());
        let err = create_run_dir(Some(&dir), "r", Utc::now())
            .unwrap_err()
            .to_string();
        assert!(err.contains("already holds files"), "{err}");
    }

    #[test]
    fn a_folder_another_run_holds_is_refused_until_it_ends() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        let first = create_run_dir(Some(&dir), "r", Utc::now()).unwrap();
        let lock = std::fs::read_to_string(dir.join(LOCK_FILE)).unwrap();
        assert_eq!(lock, std::process::id().to_string());
        // Another open file description conflicts with `first`'s flock, as another process's.
        for _ in 0..2 {
            let err = create_run_dir(Some(&dir), "r", Utc::now()).unwrap_err();
            let text = format!("{err:#}");
            assert!(
                text.contains("is in use by another joulebench run (process ")
                    && text.contains("choose another --out"),
                "{text}"
            );
        }
        // Refusals leave the holder's lock file alone.
        assert!(dir.join(LOCK_FILE).exists());
        drop(first);
        // Nothing written: the folder the run created is gone, and free to claim again.
        assert!(!dir.exists());
        assert!(create_run_dir(Some(&dir), "r", Utc::now()).is_ok());
    }

    #[test]
    fn a_lock_file_left_by_a_killed_run_does_not_count_as_files() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(LOCK_FILE), "12345").unwrap();
        let claimed = create_run_dir(Some(tmp.path()), "r", Utc::now()).unwrap();
        drop(claimed);
        // A folder the run did not create stays, empty.
        assert!(tmp.path().is_dir());
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_read_only_folder_is_refused_before_anything_runs() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ro");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        // Read-only even as root (as CI runs): this thread's file privileges dropped.
        let err = joulebench_test_support::with_file_permissions_binding(|| {
            format!(
                "{:#}",
                create_run_dir(Some(&dir), "r", Utc::now()).unwrap_err()
            )
        });
        assert!(
            err.starts_with(&format!("cannot write to {}: ", dir.display()))
                && err.contains("choose a folder you can write to")
                && !err.contains('\n'),
            "{err}"
        );
    }
}
