//! What the sensors that read Linux sysfs files share (`rapl`, `hwmon`, `ina3221`): reading
//! one number from an attribute file, and an energy counter turned into cumulative joules.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::Reading;

/// Where sysfs is mounted; every sysfs sensor has a `root` setting so that tests (and users
/// with a copy of another machine's tree) can point it elsewhere.
pub const DEFAULT_ROOT: &str = "/sys";

pub fn default_root() -> PathBuf {
    PathBuf::from(DEFAULT_ROOT)
}

/// For `skip_serializing_if`: rig snippets leave the default root out.
pub fn is_default_root(root: &Path) -> bool {
    root == Path::new(DEFAULT_ROOT)
}

/// Why reading a file failed, kept apart so callers can explain a permission problem.
#[derive(Debug)]
pub enum ReadError {
    PermissionDenied(PathBuf),
    Other(anyhow::Error),
}

impl From<ReadError> for anyhow::Error {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::PermissionDenied(path) => {
                anyhow::anyhow!("cannot read {}: permission denied", path.display())
            }
            ReadError::Other(e) => e,
        }
    }
}

/// The trimmed text of a sysfs attribute.
pub fn read_text(path: &Path) -> Result<String, ReadError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.trim().to_string()),
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            Err(ReadError::PermissionDenied(path.to_path_buf()))
        }
        Err(e) => Err(ReadError::Other(
            anyhow::Error::new(e).context(format!("cannot read {}", path.display())),
        )),
    }
}

/// A sysfs attribute holding one integer (sysfs numbers are decimal, one per file).
pub fn read_int(path: &Path) -> Result<i64, ReadError> {
    let text = read_text(path)?;
    text.parse().map_err(|_| {
        ReadError::Other(anyhow::anyhow!(
            "{}: {text:?} is not an integer",
            path.display()
        ))
    })
}

/// [`read_int`] for counters, which are never negative.
pub fn read_u64(path: &Path) -> Result<u64, ReadError> {
    let v = read_int(path)?;
    u64::try_from(v)
        .map_err(|_| ReadError::Other(anyhow::anyhow!("{}: {v} is negative", path.display())))
}

/// The entries of a folder whose names start with `prefix`, sorted naturally (hwmon2 before
/// hwmon10); a missing folder is an empty list.
pub fn entries(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path())
        .collect();
    found.sort_by_key(|p| natural_key(&p.file_name().unwrap_or_default().to_string_lossy()));
    found
}

/// A name split into text and numbers, so "hwmon10" sorts after "hwmon2".
fn natural_key(name: &str) -> Vec<(String, u64)> {
    let mut key = Vec::new();
    let mut text = String::new();
    let mut digits = String::new();
    for c in name.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            if !digits.is_empty() {
                key.push((
                    std::mem::take(&mut text),
                    digits.parse().unwrap_or(u64::MAX),
                ));
                digits.clear();
            }
            text.push(c);
        }
    }
    key.push((text, digits.parse().unwrap_or(0)));
    key
}

/// The numbers N of the files `prefix N suffix` in `dir` (e.g. `power` … `_input`), sorted.
pub fn channels(dir: &Path, prefix: &str, suffix: &str) -> Vec<u32> {
    let mut found: Vec<u32> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix(prefix)?
                .strip_suffix(suffix)?
                .parse()
                .ok()
        })
        .collect();
    found.sort_unstable();
    found
}

/// A cumulative energy counter in microjoules (RAPL's `energy_uj`, hwmon's `energy*_input`),
/// turned into joules since the sensor opened.
#[derive(Debug, Clone)]
pub struct EnergyCounter {
    /// The counter counts modulo this (RAPL's `max_energy_range_uj`): a value lower than the
    /// previous one wrapped once. `None`: the counter is not expected to wrap (64-bit hwmon).
    range_uj: Option<u64>,
    /// An unchanged counter is stale only once it has not moved for this long (the read
    /// period). A counter that moves far more often than it is read (RAPL: every ~1 ms, read
    /// every 50 ms) is current at every read, and the sampler must treat it so: calling the
    /// sampler's back-to-back second read stale would make it phase-lock to "updates" one
    /// period apart and stamp later reads half a period early. A counter unchanged for a
    /// whole period has stopped, and stale says so.
    tick_s: f64,
    /// The raw value and time at the latest change.
    last_raw: u64,
    last_change_s: f64,
    /// Microjoules counted since open (u128: no overflow whatever the run length).
    total_uj: u128,
    watts: f64,
}

impl EnergyCounter {
    /// A counter that read `raw` at time `at_s` (seconds on any monotonic clock).
    pub fn new(raw: u64, at_s: f64, range_uj: Option<u64>, tick_s: f64) -> Result<Self> {
        if let Some(range) = range_uj {
            if range == 0 {
                bail!("max_energy_range_uj is 0");
            }
            if raw > range {
                bail!("counter {raw} µJ is above its range {range} µJ");
            }
        }
        Ok(Self {
            range_uj,
            tick_s,
            last_raw: raw,
            last_change_s: at_s,
            total_uj: 0,
            watts: 0.0,
        })
    }

    /// Notes the counter read `raw` at `at_s`: cumulative joules since open, watts over the
    /// last change, stale when it has not moved for longer than a tick.
    pub fn update(&mut self, raw: u64, at_s: f64) -> Result<Reading> {
        if let Some(range) = self.range_uj.filter(|&range| raw > range) {
            bail!("counter {raw} µJ is above its range {range} µJ");
        }
        let delta = if raw >= self.last_raw {
            raw - self.last_raw
        } else {
            match self.range_uj {
                // Counting modulo the range: up to the range, then on from 0.
                Some(range) => range - self.last_raw + raw,
                None => {
                    let last = self.last_raw;
                    // Start again from here so one reset costs one failed read.
                    self.last_raw = raw;
                    self.last_change_s = at_s;
                    bail!(
                        "energy counter went backwards (from {last} to {raw} µJ) and has no \
                         wrap range: was the driver reloaded?"
                    )
                }
            }
        };
        let since = at_s - self.last_change_s;
        let stale = delta == 0 && since >= self.tick_s;
        if delta > 0 {
            self.total_uj += u128::from(delta);
            if since > 0.0 {
                self.watts = delta as f64 / 1e6 / since;
            }
            self.last_raw = raw;
            self.last_change_s = at_s;
        }
        Ok(Reading {
            watts: self.watts,
            energy_j: Some(self.total_uj as f64 / 1e6),
            stale,
            ..Reading::default()
        })
    }
}

/// A monotonic clock in seconds for counters (only differences matter).
pub fn now_s() -> f64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64()
}

/// Context for errors about one sensor's folder.
pub fn in_dir<T>(r: Result<T, ReadError>, what: &str) -> Result<T> {
    r.map_err(anyhow::Error::from)
        .with_context(|| what.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_unwraps_and_reports_watts() {
        // A counter counting modulo 1000 µJ.
        let mut c = EnergyCounter::new(900, 0.0, Some(1000), 0.002).unwrap();
        let r = c.update(1000, 0.1).unwrap();
        assert_eq!(r.energy_j, Some(100e-6));
        assert!((r.watts - 1e-3).abs() < 1e-12, "{}", r.watts);
        // 1000 → 300: wrapped once, 300 µJ more.
        let r = c.update(300, 0.2).unwrap();
        assert_eq!(r.energy_j, Some(400e-6));
        assert!((r.watts - 3e-3).abs() < 1e-12, "{}", r.watts);
        assert!(!r.stale);
    }

    #[test]
    fn unchanged_counter_is_stale_only_after_a_tick() {
        let mut c = EnergyCounter::new(5, 0.0, Some(1000), 0.002).unwrap();
        let r = c.update(10, 0.010).unwrap();
        assert!(!r.stale);
        let w = r.watts;
        // Back to back: cannot tell.
        let r = c.update(10, 0.0105).unwrap();
        assert!(!r.stale);
        assert_eq!((r.watts, r.energy_j), (w, Some(5e-6)));
        // Unchanged for 5 ms: the counter stopped.
        let r = c.update(10, 0.015).unwrap();
        assert!(r.stale);
        // Watts come from the whole stretch since the last change.
        let r = c.update(20, 0.020).unwrap();
        assert!((r.watts - 10e-6 / 0.010).abs() < 1e-12, "{}", r.watts);
    }

    #[test]
    fn bad_counters_are_errors() {
        assert!(EnergyCounter::new(5, 0.0, Some(0), 0.002).is_err());
        assert!(EnergyCounter::new(2000, 0.0, Some(1000), 0.002).is_err());
        let mut c = EnergyCounter::new(500, 0.0, None, 0.002).unwrap();
        let e = c.update(100, 0.1).unwrap_err().to_string();
        assert!(e.contains("went backwards (from 500 to 100"), "{e}");
        // The next read counts on from the new value.
        let r = c.update(150, 0.2).unwrap();
        assert_eq!(r.energy_j, Some(50e-6));
        let mut c = EnergyCounter::new(500, 0.0, Some(1000), 0.002).unwrap();
        assert!(c.update(1500, 0.1).is_err());
    }

    #[test]
    fn numbers_and_their_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x");
        std::fs::write(&f, "  42\n").unwrap();
        assert_eq!(read_int(&f).unwrap(), 42);
        std::fs::write(&f, "4x2\n").unwrap();
        let e = anyhow::Error::from(read_int(&f).unwrap_err()).to_string();
        assert!(
            e.contains(&f.display().to_string()) && e.contains("not an integer"),
            "{e}"
        );
        std::fs::write(&f, "-3\n").unwrap();
        assert!(read_u64(&f).is_err());
        let e = anyhow::Error::from(read_int(&dir.path().join("missing")).unwrap_err());
        assert!(format!("{e:#}").contains("missing"), "{e:#}");
    }

    #[test]
    fn entries_sort_naturally() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["hwmon10", "hwmon2", "other"] {
            std::fs::create_dir(dir.path().join(n)).unwrap();
        }
        let names: Vec<_> = entries(dir.path(), "hwmon")
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["hwmon2", "hwmon10"]);
        std::fs::write(dir.path().join("power3_input"), "1").unwrap();
        std::fs::write(dir.path().join("power1_input"), "1").unwrap();
        std::fs::write(dir.path().join("power1_label"), "x").unwrap();
        assert_eq!(channels(dir.path(), "power", "_input"), [1, 3]);
    }
}
