//! joulebench: how much useful ML inference a machine does per joule.
//!
//! Data flows one way:
//! rig file ([`rig`]) → runner ([`runner`], driving a [`backend`] through the [`protocol`])
//! while the [`sampler`] reads [`sensor`]s → samples → summary ([`energy`], [`stats`],
//! [`summary`]) → files ([`output`]).

pub mod backend;
pub mod bench;
pub mod clock;
pub mod energy;
pub mod input;
pub mod models;
pub mod output;
pub mod protocol;
pub mod rig;
pub mod runner;
pub mod sampler;
pub mod sensor;
pub mod stats;
pub mod summary;

/// Where set-up keeps what it builds and installs outside the clone (cargo target, Python
/// venv): `$JOULEBENCH_CACHE`, else `~/.cache/joulebench`.
pub fn cache_dir() -> std::path::PathBuf {
    std::env::var_os("JOULEBENCH_CACHE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
            std::path::PathBuf::from(home).join(".cache/joulebench")
        })
}
