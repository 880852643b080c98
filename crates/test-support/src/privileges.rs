//! Permission tests that mean the same as root as for any other user.
//!
//! Root ignores a file's mode through three capabilities: CAP_DAC_OVERRIDE (write and read
//! anything), CAP_DAC_READ_SEARCH (read and search anything) and CAP_FOWNER. A test of "a
//! read-only folder is refused" proves nothing where the folder is writable anyway, and CI
//! runs as root; so such a test drops them, for the code it calls or the process it starts,
//! instead of skipping.

use std::process::Command;

const CAP_DAC_OVERRIDE: u32 = 1;
const CAP_DAC_READ_SEARCH: u32 = 2;
const CAP_FOWNER: u32 = 3;
const FILE_PRIVILEGES: [u32; 3] = [CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER];
/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets as two 32-bit words.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn capget() -> [CapData; 2] {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget writes two CapData for version 3 into `data`, which holds two.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    assert_eq!(rc, 0, "capget: {}", std::io::Error::last_os_error());
    data
}

fn capset(data: &[CapData; 2]) {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    // SAFETY: capset reads two CapData for version 3 from `data`. The raw system call acts on
    // the calling thread only (glibc's wrapper would too; libc has none for it).
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    assert_eq!(rc, 0, "capset: {}", std::io::Error::last_os_error());
}

/// Runs `f` on this thread with file permissions binding, as for an ordinary user: the
/// capabilities above leave this thread's effective set for the call (they stay permitted, so
/// they come back after it). Capabilities are per thread on Linux: the test harness's other
/// threads keep theirs. For any other user, a plain call.
pub fn with_file_permissions_binding<T>(f: impl FnOnce() -> T) -> T {
    let before = capget();
    let mut bound = before;
    for cap in FILE_PRIVILEGES {
        bound[0].effective &= !(1 << cap);
    }
    capset(&bound);
    let out = f();
    capset(&before);
    out
}

/// Makes the process `command` starts bind by file permissions even when it runs as root: the
/// capabilities above leave its bounding set before it executes, so root's program starts
/// without them.
pub fn bind_file_permissions(command: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe; the closure touches nothing of the parent's.
    unsafe {
        command.pre_exec(|| {
            for cap in FILE_PRIVILEGES {
                // An ordinary user may not change the bounding set (EPERM), and needs no
                // change: it has none of these capabilities.
                libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0);
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn read_only_folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
        dir
    }

    #[test]
    fn a_read_only_folder_refuses_this_thread_whoever_runs_it() {
        let dir = read_only_folder();
        let written = with_file_permissions_binding(|| std::fs::write(dir.path().join("x"), ""));
        assert_eq!(
            written.unwrap_err().kind(),
            std::io::ErrorKind::PermissionDenied
        );
        // Afterwards as before (root writes again; anyone else still cannot).
        let again = std::fs::write(dir.path().join("y"), "");
        // SAFETY: geteuid has no preconditions.
        assert_eq!(again.is_ok(), unsafe { libc::geteuid() } == 0);
    }

    #[test]
    fn a_read_only_folder_refuses_a_child_whoever_runs_it() {
        let dir = read_only_folder();
        let status = bind_file_permissions(Command::new("touch").arg(dir.path().join("x")))
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(!status.success());
        assert!(!dir.path().join("x").exists());
    }
}
