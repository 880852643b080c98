//! Files that ship with the project rather than inside the binary (the reference loops, the
//! published references), found at run time, so a binary that was installed or copied
//! elsewhere still finds them and no path of the build machine is baked in.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// `folder/name` of the project: in `$env_var` if that is set (which then must hold it), else
/// in `folder` under the current directory or any directory above it, else under the
/// executable's directory or any above it.
pub fn find(folder: &str, name: &str, env_var: &str) -> Result<PathBuf> {
    let starts = [
        std::env::current_dir().ok(),
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(PathBuf::from)),
    ];
    let named = std::env::var_os(env_var).map(PathBuf::from);
    let starts: Vec<PathBuf> = starts.into_iter().flatten().collect();
    find_in(folder, name, (env_var, named.as_deref()), &starts)
}

fn find_in(
    folder: &str,
    name: &str,
    (env_var, named): (&str, Option<&Path>),
    starts: &[PathBuf],
) -> Result<PathBuf> {
    if let Some(dir) = named {
        let path = dir.join(name);
        return if path.is_file() {
            Ok(path)
        } else {
            bail!("{} not found ({env_var} is set)", path.display())
        };
    }
    starts
        .iter()
        .flat_map(|start| start.ancestors())
        .map(|dir| dir.join(folder).join(name))
        .find(|path| path.is_file())
        .with_context(|| {
            format!(
                "cannot find {folder}/{name} in the current folder, the executable's, or any \
                 above them: run from the project folder or set {env_var}"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_files_are_found_from_where_the_binary_runs() {
        let project = tempfile::tempdir().unwrap();
        let scripts = project.path().join("analysis/reference");
        std::fs::create_dir_all(&scripts).unwrap();
        std::fs::write(scripts.join("litert_loop.py"), "").unwrap();
        let deep = project.path().join("target/release");
        std::fs::create_dir_all(&deep).unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let find = |named: Option<&Path>, starts: &[PathBuf]| {
            find_in(
                "analysis/reference",
                "litert_loop.py",
                ("DIR_VAR", named),
                starts,
            )
        };
        // From a folder below the project (a binary in target/release, or a shell in rigs/).
        let found = find(None, &[elsewhere.path().into(), deep]);
        assert_eq!(found.unwrap(), scripts.join("litert_loop.py"));
        // Named by the environment, which then has to be right.
        assert_eq!(
            find(Some(&scripts), &[]).unwrap(),
            scripts.join("litert_loop.py")
        );
        let wrong = find(Some(elsewhere.path()), &[]).unwrap_err().to_string();
        assert!(wrong.contains("(DIR_VAR is set)"), "{wrong}");
        let e = find(None, &[elsewhere.path().into()])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("cannot find analysis/reference/litert_loop.py") && e.contains("DIR_VAR"),
            "{e}"
        );
    }
}
