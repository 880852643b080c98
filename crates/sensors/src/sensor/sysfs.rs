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

/// The trimmed text of a sysfs attribute. A sysfs attribute is a regular file: anything else
/// (a FIFO in a copied or faked tree, a device) is refused at once, opened without blocking,
/// since a read of it could wait forever.
pub fn read_text(path: &Path) -> Result<String, ReadError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |e: std::io::Error| match e.kind() {
        ErrorKind::PermissionDenied => ReadError::PermissionDenied(path.to_path_buf()),
        _ => ReadError::Other(
            anyhow::Error::new(e).context(format!("cannot read {}", path.display())),
        ),
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(fail)?;
    if !file.metadata().map_err(fail)?.is_file() {
        return Err(ReadError::Other(anyhow::anyhow!(
            "cannot read {}: not a regular file, as a sysfs attribute is (a FIFO or a device \
             would block the read): point the rig's root at a real sysfs tree",
            path.display()
        )));
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(fail)?;
    Ok(text.trim().to_string())
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
///
/// A counter tells energy only while each read can be matched to the one before. A counter
/// that wraps (RAPL) is unwrapped once per read, which is right only if it cannot go round its
/// range between two reads: with the largest power the rail can draw, [`Self::max_read_gap_s`]
/// is how far apart reads may be. A read later than that, a drop that no wrap explains (the
/// counter was reset: a driver reload) and an increase faster than that power all lose count;
/// such a read fails with [`CounterError::LostCount`], which the sampler keeps as
/// [`super::ReadError::CounterBreak`], and the summary makes every window that uses the energy
/// across it invalid.
#[derive(Debug, Clone)]
pub struct EnergyCounter {
    /// The counter counts modulo this (RAPL's `max_energy_range_uj`): a value lower than the
    /// previous one wrapped once. `None`: the counter is not expected to wrap (64-bit hwmon).
    range_uj: Option<u64>,
    /// The largest power the rail can draw, watts, where known: it bounds the energy between
    /// two reads.
    max_watts: Option<f64>,
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
    /// When the counter was last read.
    last_read_s: f64,
    /// The last read that still showed the value before `last_raw`: everything from that
    /// value to `last_raw` was counted after it, so from then on is the longest the energy
    /// of the next change can have taken. (Not the read that first saw `last_raw`: a
    /// counter that updates every millisecond, read twice 20 µs apart across an update,
    /// would seem to draw 50 times its power.)
    before_change_s: f64,
    /// Microjoules counted since open (u128: no overflow whatever the run length).
    total_uj: u128,
    watts: f64,
}

impl EnergyCounter {
    /// A counter that read `raw` at time `at_s` (seconds on any monotonic clock), on a rail
    /// that draws at most `max_watts` where that is known.
    pub fn new(
        raw: u64,
        at_s: f64,
        range_uj: Option<u64>,
        max_watts: Option<f64>,
        tick_s: f64,
    ) -> Result<Self> {
        if let Some(range) = range_uj {
            if range == 0 {
                bail!("max_energy_range_uj is 0");
            }
            if raw > range {
                return Err(CounterError::AboveRange { raw, range }.into());
            }
        }
        Ok(Self {
            range_uj,
            max_watts: max_watts.filter(|w| *w > 0.0),
            tick_s,
            last_raw: raw,
            last_change_s: at_s,
            last_read_s: at_s,
            before_change_s: at_s,
            total_uj: 0,
            watts: 0.0,
        })
    }

    /// How far apart two reads may be for a wrapping counter to be unwrapped without doubt:
    /// the time the rail's largest power takes to go round the range. `None` where the
    /// counter does not wrap or the power is unbounded.
    pub fn max_read_gap_s(range_uj: Option<u64>, max_watts: Option<f64>) -> Option<f64> {
        Some(range_uj? as f64 / 1e6 / max_watts.filter(|w| *w > 0.0)?)
    }

    /// Notes the counter read `raw` at `at_s`: cumulative joules since open, watts over the
    /// last change, stale when it has not moved for longer than a tick.
    pub fn update(&mut self, raw: u64, at_s: f64) -> Result<Reading, CounterError> {
        if let Some(range) = self.range_uj.filter(|&range| raw > range) {
            return Err(CounterError::AboveRange { raw, range });
        }
        let (last, previous_read) = (self.last_raw, self.last_read_s);
        self.last_read_s = at_s;
        let since = at_s - self.last_change_s;
        let delta = match self.counted(raw, at_s - previous_read, at_s - self.before_change_s) {
            Ok(delta) => delta,
            Err(why) => {
                // Count on from here, so one break costs one read.
                self.last_raw = raw;
                self.last_change_s = at_s;
                self.before_change_s = previous_read;
                return Err(CounterError::LostCount {
                    why,
                    from_uj: last,
                    to_uj: raw,
                });
            }
        };
        let stale = delta == 0 && since >= self.tick_s;
        if delta > 0 {
            self.total_uj += u128::from(delta);
            if since > 0.0 {
                self.watts = delta as f64 / 1e6 / since;
            }
            self.last_raw = raw;
            self.last_change_s = at_s;
            self.before_change_s = previous_read;
        }
        Ok(Reading {
            watts: self.watts,
            energy_j: Some(self.total_uj as f64 / 1e6),
            stale,
            ..Reading::default()
        })
    }

    /// The microjoules counted since the last change, or why they cannot be known:
    /// `since_read_s` since the previous read, `longest_s` the longest the change can have
    /// taken (since the last read before the previous change).
    fn counted(&self, raw: u64, since_read_s: f64, longest_s: f64) -> Result<u64, LostCount> {
        let gap = Self::max_read_gap_s(self.range_uj, self.max_watts);
        if let Some(gap_s) = gap.filter(|gap| since_read_s >= *gap) {
            return Err(LostCount::ReadTooLate {
                since_read_s,
                max_watts: self.max_watts.unwrap_or_default(),
                gap_s,
            });
        }
        let delta = match (raw >= self.last_raw, self.range_uj) {
            (true, _) => raw - self.last_raw,
            // Counting modulo the range: up to the range, then on from 0.
            (false, Some(range)) => range - self.last_raw + raw,
            (false, None) => return Err(LostCount::WentBackwards),
        };
        let watts = delta as f64 / 1e6 / longest_s;
        match self.max_watts {
            Some(max_watts) if longest_s > 0.0 && watts > max_watts => {
                Err(if raw < self.last_raw {
                    LostCount::Reset { watts, max_watts }
                } else {
                    LostCount::Jumped { watts, max_watts }
                })
            }
            _ => Ok(delta),
        }
    }
}

/// Why [`EnergyCounter::update`] has no reading: the energy counter's own error, typed so
/// that the sampler can tell a lost count ([`super::ReadError::CounterBreak`]) from any other
/// failed read without reading the message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CounterError {
    /// A value beyond the range the counter wraps at: a misread file, not a count.
    #[error("counter {raw} µJ is above its range {range} µJ")]
    AboveRange { raw: u64, range: u64 },
    /// The counter lost count between the read before and this one (from `from_uj` to
    /// `to_uj`): the energy in between is unknown, and the count goes on from `to_uj`.
    #[error("{}{why} (from {from_uj} to {to_uj} µJ)", super::COUNTER_BREAK)]
    LostCount {
        why: LostCount,
        from_uj: u64,
        to_uj: u64,
    },
}

/// How an energy counter lost count ([`EnergyCounter`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LostCount {
    /// Read `since_read_s` after the read before, no sooner than the `gap_s` in which
    /// `max_watts` takes a wrapping counter round its range: it may have gone round unseen.
    #[error(
        "read {:.1} ms after the one before, and at up to {max_watts} W the counter goes round \
         its range in {:.1} ms",
        .since_read_s * 1e3,
        .gap_s * 1e3
    )]
    ReadTooLate {
        since_read_s: f64,
        max_watts: f64,
        gap_s: f64,
    },
    /// A counter that does not wrap went down.
    #[error("the counter went backwards and has no wrap range: was the driver reloaded?")]
    WentBackwards,
    /// A drop that a wrap would explain only with more than the rail's `max_watts`.
    #[error(
        "a wrap would mean {watts:.0} W, above the {max_watts} W the rail can draw: the \
         counter was reset"
    )]
    Reset { watts: f64, max_watts: f64 },
    /// A rise faster than the rail's `max_watts`.
    #[error(
        "it counted {watts:.0} W, above the {max_watts} W the rail can draw: the counter \
         jumped"
    )]
    Jumped { watts: f64, max_watts: f64 },
}

/// Names the counter's file in an error of [`EnergyCounter::update`], keeping its type (the
/// sampler looks for [`CounterError::LostCount`] under the file's name).
pub fn counter_error(path: &Path, e: CounterError) -> anyhow::Error {
    anyhow::Error::new(e).context(path.display().to_string())
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
        let mut c = EnergyCounter::new(900, 0.0, Some(1000), None, 0.002).unwrap();
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
        let mut c = EnergyCounter::new(5, 0.0, Some(1000), None, 0.002).unwrap();
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
        assert!(EnergyCounter::new(5, 0.0, Some(0), None, 0.002).is_err());
        assert!(EnergyCounter::new(2000, 0.0, Some(1000), None, 0.002).is_err());
        let mut c = EnergyCounter::new(500, 0.0, None, None, 0.002).unwrap();
        let err = c.update(100, 0.1).unwrap_err();
        assert_eq!(
            err,
            CounterError::LostCount {
                why: LostCount::WentBackwards,
                from_uj: 500,
                to_uj: 100
            }
        );
        let e = err.to_string();
        assert_eq!(
            e,
            format!(
                "{}the counter went backwards and has no wrap range: was the driver reloaded? \
                 (from 500 to 100 µJ)",
                super::super::COUNTER_BREAK
            )
        );
        // The next read counts on from the new value.
        let r = c.update(150, 0.2).unwrap();
        assert_eq!(r.energy_j, Some(50e-6));
        let mut c = EnergyCounter::new(500, 0.0, Some(1000), None, 0.002).unwrap();
        assert!(c.update(1500, 0.1).is_err());
        let above = c.update(1500, 0.1).unwrap_err();
        assert_eq!(
            (
                above.to_string(),
                matches!(above, CounterError::AboveRange { .. })
            ),
            (
                "counter 1500 µJ is above its range 1000 µJ".to_string(),
                true
            )
        );
    }

    /// A counter of range 1 J on a rail of at most 10 W goes round in 100 ms.
    fn bounded() -> EnergyCounter {
        EnergyCounter::new(900_000, 0.0, Some(1_000_000), Some(10.0), 0.01).unwrap()
    }

    #[test]
    fn a_change_seen_by_two_close_reads_is_bounded_from_the_read_before_it() {
        // A counter that moves every millisecond at 9 W, read at 0 (seeing 0.9 J), 0.05 s
        // (0.99 J: the 0.45 J it moved by 49.5 ms, say) and 0.05002 s, just after its next
        // update (+9 mJ): 9 mJ in 20 µs would be 450 W, but the update it shows came after
        // the read at 0, so it took up to 50 ms.
        let mut c = bounded();
        c.update(990_000, 0.05).unwrap();
        let r = c.update(999_000, 0.05002).unwrap();
        assert!((r.energy_j.unwrap() - 0.099).abs() < 1e-12, "{r:?}");
    }

    #[test]
    fn a_counter_that_could_go_round_between_reads_loses_count() {
        assert_eq!(
            EnergyCounter::max_read_gap_s(Some(1_000_000), Some(10.0)),
            Some(0.1)
        );
        assert_eq!(EnergyCounter::max_read_gap_s(None, Some(10.0)), None);
        assert_eq!(EnergyCounter::max_read_gap_s(Some(1_000_000), None), None);
        // 99 ms after the last read: unwrapped once (0.9 → 0.2 J is 0.3 J, 3 W).
        let mut c = bounded();
        let r = c.update(200_000, 0.099).unwrap();
        assert!((r.energy_j.unwrap() - 0.3).abs() < 1e-12, "{r:?}");
        // 100 ms after the last read: it could have gone round once more, unseen.
        let err = c.update(300_000, 0.199).unwrap_err();
        assert!(
            matches!(
                err,
                CounterError::LostCount {
                    why: LostCount::ReadTooLate { .. },
                    ..
                }
            ),
            "{err:?}"
        );
        let e = err.to_string();
        assert!(
            e.starts_with(crate::sensor::COUNTER_BREAK)
                && e.contains("read 100.0 ms after the one before")
                && e.contains("goes round its range in 100.0 ms"),
            "{e}"
        );
        // It counts on from the value it lost count at: nothing of the lost stretch is added.
        let r = c.update(400_000, 0.249).unwrap();
        assert!((r.energy_j.unwrap() - 0.4).abs() < 1e-12, "{r:?}");
    }

    #[test]
    fn a_drop_no_wrap_explains_is_a_reset() {
        // 0.9 J → 0.85 J in 50 ms: a wrap would be 0.95 J in 50 ms, 19 W on a 10 W rail.
        let mut c = bounded();
        let err = c.update(850_000, 0.05).unwrap_err();
        assert!(
            matches!(
                err,
                CounterError::LostCount {
                    why: LostCount::Reset { .. },
                    ..
                }
            ),
            "{err:?}"
        );
        let e = err.to_string();
        assert!(
            e.starts_with(crate::sensor::COUNTER_BREAK)
                && e.contains("a wrap would mean 19 W, above the 10 W the rail can draw")
                && e.ends_with("(from 900000 to 850000 µJ)"),
            "{e}"
        );
        // Counting on: 0.01 J between the reads at 0.05 and 0.06 s (at most 60 ms since the
        // read at 0, the last before 0.85 J showed).
        let r = c.update(860_000, 0.06).unwrap();
        assert!((r.energy_j.unwrap() - 0.01).abs() < 1e-12, "{r:?}");
        // A counter seen at 0.1 J at 0 and 0.01 s, at 0.11 J at 0.02 s, then at 0.51 J at
        // 0.025 s: 0.4 J within at most the 15 ms since the read at 0.01 s is 27 W, a jump.
        let mut c = EnergyCounter::new(100_000, 0.0, Some(1_000_000), Some(10.0), 0.01).unwrap();
        c.update(100_000, 0.01).unwrap();
        c.update(110_000, 0.02).unwrap();
        let err = c.update(510_000, 0.025).unwrap_err();
        assert!(
            matches!(
                err,
                CounterError::LostCount {
                    why: LostCount::Jumped { .. },
                    ..
                }
            ),
            "{err:?}"
        );
        let e = err.to_string();
        assert!(e.contains("it counted 27 W") && e.contains("jumped"), "{e}");
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
