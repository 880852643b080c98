//! Files that ship with the project. The rigs, the models manifest and the published
//! references are built into the binary (their text, never a path of the build machine), so a
//! binary installed with `cargo install` works from any folder; the Python reference loops of
//! `bench` are found at run time ([`find`]).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

include!(concat!(env!("OUT_DIR"), "/shipped_rigs.rs"));

/// A rig file's text and where it came from.
#[derive(Debug, Clone)]
pub struct RigSource {
    pub text: String,
    /// "rig file PATH", or "built-in rig NAME".
    pub origin: String,
    /// The file it was read from; None for a built-in rig.
    pub path: Option<PathBuf>,
}

/// The user's own rigs: `$XDG_CONFIG_HOME/joulebench/rigs` (`~/.config/joulebench/rigs`).
pub fn user_rigs_dir() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("joulebench/rigs"))
}

/// Reads the rig `--rig` names: a path (anything with a `/`, ending in `.toml`, or an existing
/// file), else a name looked up as `rigs/NAME.toml` under the current folder (a project
/// checkout, where rigs are edited), then in [`user_rigs_dir`], then among the rigs built in.
pub fn read_rig(arg: &str) -> Result<RigSource> {
    let starts = [Some(PathBuf::from("rigs")), user_rigs_dir()];
    read_rig_from(arg, &starts.into_iter().flatten().collect::<Vec<_>>())
}

fn read_rig_from(arg: &str, dirs: &[PathBuf]) -> Result<RigSource> {
    let read = |path: &Path| -> Result<RigSource> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read rig file {}", path.display()))?;
        Ok(RigSource {
            text,
            origin: format!("rig file {}", path.display()),
            path: Some(path.to_path_buf()),
        })
    };
    let path = Path::new(arg);
    if arg.contains('/') || arg.ends_with(".toml") || path.is_file() {
        return read(path);
    }
    if let Some(found) = dirs
        .iter()
        .map(|dir| dir.join(format!("{arg}.toml")))
        .find(|p| p.is_file())
    {
        return read(&found);
    }
    match SHIPPED_RIGS.iter().find(|(name, _)| *name == arg) {
        Some((name, text)) => Ok(RigSource {
            text: text.to_string(),
            origin: format!("built-in rig {name}"),
            path: None,
        }),
        None => bail!(
            "no rig {arg:?}: not a file, not in {}, and not a built-in rig ({})",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(" or "),
            shipped_rig_names().join(", ")
        ),
    }
}

/// A built-in rig's text, exactly as shipped; an unknown name is a one-line error listing the
/// built-in ones.
pub fn shipped_rig(name: &str) -> Result<&'static str> {
    match SHIPPED_RIGS.iter().find(|(shipped, _)| *shipped == name) {
        Some((_, text)) => Ok(text),
        None => bail!(
            "no built-in rig {name:?}; the built-in rigs are {}",
            shipped_rig_names().join(", ")
        ),
    }
}

/// The names of the built-in rigs.
pub fn shipped_rig_names() -> Vec<&'static str> {
    SHIPPED_RIGS.iter().map(|(name, _)| *name).collect()
}

/// The Python for a script of the project (`bench`'s reference loops, the torch backend's
/// AOTInductor export): `given` (`--python`), else `$env_var`, else the project venv `venv`
/// that `make setup` creates under [`crate::cache_dir`].
pub fn python_path(given: Option<&PathBuf>, env_var: &str, venv: &str) -> PathBuf {
    given
        .cloned()
        .or_else(|| std::env::var_os(env_var).map(PathBuf::from))
        .unwrap_or_else(|| crate::cache_dir().join(venv).join("bin/python3"))
}

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
    fn rigs_are_found_by_path_by_name_and_built_in() {
        let here = tempfile::tempdir().unwrap();
        let mine = here.path().join("mine");
        std::fs::create_dir_all(&mine).unwrap();
        std::fs::write(mine.join("sim-cpu.toml"), "name = \"my own\"\n").unwrap();
        let dirs = [here.path().join("rigs"), mine.clone()];
        // A name: the user's copy first, then the one built in.
        let found = read_rig_from("sim-cpu", &dirs).unwrap();
        assert_eq!(found.text, "name = \"my own\"\n");
        assert_eq!(
            found.origin,
            format!("rig file {}", mine.join("sim-cpu.toml").display())
        );
        let built_in = read_rig_from("rpi3-cpu", &dirs).unwrap();
        assert_eq!(built_in.origin, "built-in rig rpi3-cpu");
        let shipped = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("rigs/rpi3-cpu.toml"),
        )
        .unwrap();
        assert_eq!(built_in.text, shipped, "the binary holds the rig's text");
        // A path is only ever a path.
        let e = format!("{:#}", read_rig_from("rigs/nope.toml", &dirs).unwrap_err());
        assert!(e.starts_with("cannot read rig file rigs/nope.toml"), "{e}");
        let e = format!("{:#}", read_rig_from("nope", &dirs).unwrap_err());
        assert!(
            e.starts_with("no rig \"nope\": not a file")
                && e.contains("sim-cpu")
                && !e.contains('\n'),
            "{e}"
        );
        // Every rig of rigs/ is built in.
        let on_disk = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("rigs"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "toml")
            })
            .count();
        assert_eq!(shipped_rig_names().len(), on_disk);
    }

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
