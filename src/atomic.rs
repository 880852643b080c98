//! Files replaced whole, the one way joulebench writes a file that a reader, a second
//! process or a crash may catch half done (`summary.csv`, `run.json`, a rig being calibrated,
//! a model being fetched or converted): the bytes go to a temporary file in the same folder (a
//! rename is atomic only within a file system), which is synced, renamed over the old one, and
//! the folder synced so the rename itself survives a power cut. The file gets the mode a plain
//! create would (0666 less the umask), not the temporary file's private 0600. A path that is a
//! symbolic link is written through: its target is replaced and the link stays, as a plain
//! write would do (a rename onto the link would replace the link with a file and leave the
//! target as it was).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;

/// Replaces `path` with `bytes`: a crash at any moment leaves the old file or the new one.
pub fn replace(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut pending = Pending::beside(path)?;
    pending
        .file()
        .write_all(bytes)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    pending.persist()
}

/// A file being written beside its destination, removed unless [`Pending::persist`]ed.
pub struct Pending {
    tmp: tempfile::NamedTempFile,
    dest: PathBuf,
}

impl Pending {
    /// A new, empty temporary file in the folder of `dest` (of the file it links to, if it
    /// is a symbolic link).
    pub fn beside(dest: &Path) -> Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let dest = &through_links(dest);
        let tmp = tempfile::Builder::new()
            .prefix(".joulebench-")
            .permissions(std::fs::Permissions::from_mode(0o666))
            .tempfile_in(folder(dest))
            .map_err(|e| anyhow::anyhow!("cannot write {}: {}", dest.display(), unnamed(e)))?;
        Ok(Self {
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    /// Where the bytes go until they are persisted.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub fn file(&mut self) -> &mut std::fs::File {
        self.tmp.as_file_mut()
    }

    /// Syncs the bytes, renames the file onto its destination (replacing what is there) and
    /// syncs the folder.
    pub fn persist(self) -> Result<()> {
        let dest = self.dest;
        let fail =
            |e: &dyn std::fmt::Display| anyhow::anyhow!("cannot write {}: {e}", dest.display());
        self.tmp.as_file().sync_all().map_err(|e| fail(&e))?;
        self.tmp.persist(&dest).map_err(|e| fail(&e.error))?;
        std::fs::File::open(folder(&dest))
            .and_then(|d| d.sync_all())
            .map_err(|e| fail(&e))
    }
}

/// `e` without the temporary file's name that `tempfile` adds (" at path …/.joulebench-x1y2"):
/// the user asked for the destination, and the temporary file never existed.
fn unnamed(e: std::io::Error) -> std::io::Error {
    match e.get_ref() {
        // A wrapped error keeps its kind, which says what went wrong.
        Some(_) => std::io::Error::from(e.kind()),
        None => e,
    }
}

/// The file a write to `path` lands in: where its symbolic links lead (followed as the kernel
/// does, at most 40 deep; the last may not exist yet), else `path` itself.
fn through_links(path: &Path) -> PathBuf {
    let mut path = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::read_link(&path) {
            // A relative target is relative to the link's folder; an absolute one replaces.
            Ok(target) => path = folder(&path).join(target),
            Err(_) => break,
        }
    }
    path
}

/// The folder `path` is in ("." for a bare file name).
fn folder(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_file_is_always_the_old_or_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.csv");
        // Large enough that a plain write would be seen half done.
        let versions: Vec<Vec<u8>> = (0..4u8).map(|v| vec![b'a' + v; 1 << 20]).collect();
        replace(&path, &versions[0]).unwrap();
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for i in 0..40 {
                    replace(&path, &versions[i % versions.len()]).unwrap();
                }
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            });
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || reads == 0 {
                let seen = std::fs::read(&path).unwrap();
                assert!(
                    versions.contains(&seen),
                    "a torn file of {} bytes",
                    seen.len()
                );
                reads += 1;
            }
        });
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_replaced_file_has_the_mode_of_a_plain_one() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("power.csv");
        std::fs::write(&plain, "x").unwrap();
        let replaced = dir.path().join("summary.csv");
        replace(&replaced, b"a").unwrap();
        replace(&replaced, b"b").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        // Both 0666 less this process's umask (0644 under the usual 022), not 0600.
        assert_eq!(mode(&replaced), mode(&plain));
    }

    #[test]
    fn a_replace_into_a_missing_folder_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone/run.json");
        let e = format!("{:#}", replace(&path, b"{}").unwrap_err());
        assert!(
            e.contains("cannot write") && e.contains("gone/run.json"),
            "{e}"
        );
    }

    #[test]
    fn a_pending_file_is_removed_unless_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        {
            let mut pending = Pending::beside(&dest).unwrap();
            pending.file().write_all(b"abc").unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let mut pending = Pending::beside(&dest).unwrap();
        pending.file().write_all(b"abc").unwrap();
        pending.persist().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"abc");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_replace_through_symbolic_links_keeps_them_and_writes_the_target() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let rigs = dir.path().join("rigs");
        std::fs::create_dir(&rigs).unwrap();
        let target = rigs.join("pi.toml");
        std::fs::write(&target, "old").unwrap();
        // A relative link to an absolute one: both followed.
        let absolute = dir.path().join("absolute.toml");
        symlink(&target, &absolute).unwrap();
        let relative = dir.path().join("relative.toml");
        symlink("absolute.toml", &relative).unwrap();
        replace(&relative, b"new").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        for link in [&relative, &absolute] {
            assert!(std::fs::symlink_metadata(link)
                .unwrap()
                .file_type()
                .is_symlink());
        }
        // The temporary file went into the target's folder, and is gone.
        assert_eq!(std::fs::read_dir(&rigs).unwrap().count(), 1);
        // A link whose target does not exist yet: the target is created, the link kept.
        let dangling = dir.path().join("dangling.toml");
        symlink("rigs/new.toml", &dangling).unwrap();
        replace(&dangling, b"made").unwrap();
        assert_eq!(std::fs::read(rigs.join("new.toml")).unwrap(), b"made");
        assert!(std::fs::symlink_metadata(&dangling)
            .unwrap()
            .file_type()
            .is_symlink());
    }
}
