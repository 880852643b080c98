//! RAPL energy counters through Linux powercap: `/sys/class/powercap/intel-rapl:N[:M]/` with
//! `name` (the domain: "package-0", "core", "uncore", "dram", "psys"), `energy_uj` (a
//! microjoule counter) and `max_energy_range_uj` (where it wraps to 0).
//!
//! AMD Zen CPUs show up under the same `intel-rapl` names on recent kernels (5.8 and later,
//! package domains only); older kernels expose them through the `amd_energy` hwmon driver,
//! which the `hwmon` sensor reads.
//!
//! Since Linux 5.10 (CVE-2020-8694, "Platypus": power side channel) `energy_uj` is readable
//! by root only on most kernels; opening then fails with the fix, never reads zero.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::sysfs::{self, EnergyCounter, ReadError};
use super::{Limits, Origin, PowerSensor, Reading, SensorInfo};

/// How often the sampler reads the counter. The counter's difference is exact whatever the
/// read rate (it counts every microjoule in between), so reading faster buys only finer
/// time stamps, while every read costs an MSR access and a wake-up on the very CPU whose
/// package power is being measured. 20 reads a second still give every 1 s window 20
/// counter updates (validity needs 3).
pub const READ_PERIOD: Duration = Duration::from_millis(50);

/// The most power a RAPL domain is taken to draw, watts, unless its zone states more
/// (`constraint_N_max_power_uw`, `constraint_N_power_limit_uw`). It bounds the energy between
/// two reads, so that the counter can be unwrapped without doubt. No CPU socket draws near
/// it (the hungriest server parts are rated around 500 W at their short-term limit), and a
/// zone's own limits are averages over a time window that may be exceeded in between, so they
/// only ever raise it.
pub const CEILING_WATTS: f64 = 1000.0;

/// The shortest read period the sampler is asked for: each read is a syscall and a wake-up
/// on the CPU being measured, and the counter itself updates about every millisecond.
pub const MIN_READ_PERIOD: Duration = Duration::from_millis(1);

/// A `kind = "rapl"` table: one powercap RAPL zone.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RaplSpec {
    /// What is measured, e.g. "CPU package 0 (RAPL)".
    pub rail: String,
    /// The zone's `name`, e.g. "package-0", "core", "dram"; it must be unique (with two
    /// sockets there are two "core" zones: name the zone instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The zone's folder under `class/powercap`, e.g. "intel-rapl:0" or "intel-rapl:0:1".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Where sysfs is (default `/sys`).
    #[serde(
        default = "sysfs::default_root",
        skip_serializing_if = "sysfs::is_default_root"
    )]
    pub root: PathBuf,
}

impl RaplSpec {
    /// Checks what serde cannot; the error is one line naming the key.
    pub fn validate(&self) -> Result<(), String> {
        match (&self.domain, &self.zone) {
            (Some(_), Some(_)) => Err("give domain or zone, not both".into()),
            (None, None) => Err(
                "domain (e.g. \"package-0\") or zone (e.g. \"intel-rapl:0\") is required".into(),
            ),
            (None, Some(z)) if !z.starts_with("intel-rapl:") || z.contains('/') => Err(format!(
                "zone {z:?} is not a powercap RAPL zone folder such as \"intel-rapl:0\""
            )),
            _ => Ok(()),
        }
    }
}

/// `root/class/powercap`.
fn powercap(root: &Path) -> PathBuf {
    root.join("class/powercap")
}

/// One RAPL zone found under a sysfs root.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    /// The folder name, e.g. "intel-rapl:0:1".
    pub zone: String,
    /// Its domain name, e.g. "dram" ("?" where `name` cannot be read).
    pub name: String,
    pub dir: PathBuf,
}

impl Zone {
    /// A top-level zone (a package or psys), not a part of one (core, uncore, dram).
    pub fn is_top_level(&self) -> bool {
        self.zone.matches(':').count() == 1
    }
}

/// Every RAPL zone under `root`, in folder order.
pub fn zones(root: &Path) -> Vec<Zone> {
    sysfs::entries(&powercap(root), "intel-rapl:")
        .into_iter()
        .map(|dir| Zone {
            zone: dir.file_name().unwrap_or_default().to_string_lossy().into(),
            name: sysfs::read_text(&dir.join("name")).unwrap_or_else(|_| "?".into()),
            dir,
        })
        .collect()
}

fn list(zones: &[Zone]) -> String {
    zones
        .iter()
        .map(|z| format!("{} ({})", z.name, z.zone))
        .collect::<Vec<_>>()
        .join(", ")
}

fn find_zone(spec: &RaplSpec) -> Result<Zone> {
    let all = zones(&spec.root);
    let dir = powercap(&spec.root);
    if all.is_empty() && !dir.is_dir() && !sysfs::is_default_root(&spec.root) {
        // A root given by hand that is no sysfs tree says nothing about the CPU.
        bail!(
            "{} does not exist: root {} is not a sysfs tree with a powercap class (leave root \
             out for /sys)",
            dir.display(),
            spec.root.display()
        );
    }
    if all.is_empty() {
        bail!(
            "no RAPL zones under {}: this CPU or kernel offers none (Intel: module \
             intel_rapl_msr; AMD Zen: kernel 5.8 or later, or the amd_energy hwmon driver; \
             virtual machines usually have none)",
            dir.display()
        );
    }
    let found: Vec<&Zone> = match (&spec.zone, &spec.domain) {
        (Some(zone), _) => all.iter().filter(|z| &z.zone == zone).collect(),
        (None, Some(domain)) => all.iter().filter(|z| &z.name == domain).collect(),
        (None, None) => bail!("domain or zone is required"),
    };
    let wanted = spec
        .zone
        .as_ref()
        .or(spec.domain.as_ref())
        .map_or("", |s| s);
    match found.as_slice() {
        [one] => Ok((*one).clone()),
        [] => bail!(
            "no RAPL zone {wanted:?} under {} (found: {})",
            dir.display(),
            list(&all)
        ),
        several => bail!(
            "RAPL domain {wanted:?} is in several zones ({}): choose one with zone = \"...\"",
            several
                .iter()
                .map(|z| z.zone.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The one-line explanation for a root-only `energy_uj`, with the two ways to fix it.
pub fn permission_message(path: &Path) -> String {
    format!(
        "cannot read {}: permission denied: since Linux 5.10 (CVE-2020-8694, \"Platypus\") \
         RAPL energy counters are readable by root only. Allow reading until the next \
         reboot: `sudo chmod o+r {}`; for good, put the rule `{}` into \
         /etc/udev/rules.d/70-joulebench-rapl.rules and run `sudo udevadm trigger \
         --subsystem-match=powercap --action=add` (both let every local user read the \
         counters, which is what the CVE fix took away)",
        path.display(),
        path.display(),
        UDEV_RULE
    )
}

/// A udev rule that makes every RAPL zone's counter world-readable when the zone appears.
pub const UDEV_RULE: &str = r#"ACTION=="add", SUBSYSTEM=="powercap", KERNEL=="intel-rapl:*", RUN+="/bin/chmod o+r %S%p/energy_uj""#;

/// Reads `energy_uj`, explaining a permission failure.
fn read_energy(path: &Path) -> Result<u64> {
    sysfs::read_u64(path).map_err(|e| match e {
        ReadError::PermissionDenied(p) => anyhow::anyhow!(permission_message(&p)),
        other => other.into(),
    })
}

/// One RAPL zone's energy counter.
#[derive(Debug)]
pub struct RaplSensor {
    info: SensorInfo,
    energy: PathBuf,
    counter: EnergyCounter,
    period: Duration,
    /// The most the zone draws ([`max_watts`]).
    max_watts: f64,
}

/// The most the zone in `dir` can draw, watts: [`CEILING_WATTS`], or more where one of its
/// constraints states more.
fn max_watts(dir: &Path) -> f64 {
    let stated = ["max_power_uw", "power_limit_uw"].iter().flat_map(|what| {
        sysfs::channels(dir, "constraint_", &format!("_{what}"))
            .into_iter()
            .filter_map(move |n| sysfs::read_u64(&dir.join(format!("constraint_{n}_{what}"))).ok())
    });
    stated
        .map(|uw| uw as f64 / 1e6)
        .fold(CEILING_WATTS, f64::max)
}

/// How often to read a counter that `max_watts` takes round its `range_uj` in the time
/// [`EnergyCounter::max_read_gap_s`]: every [`READ_PERIOD`], or at half that time where it is
/// shorter, so a read late by up to a period still falls before the counter can go round.
fn read_period(range_uj: u64, max_watts: f64) -> Result<Duration, String> {
    let gap =
        EnergyCounter::max_read_gap_s(Some(range_uj), Some(max_watts)).unwrap_or(f64::INFINITY);
    let period = READ_PERIOD.min(Duration::from_secs_f64((gap / 2.0).min(1e9)));
    if period < MIN_READ_PERIOD {
        return Err(format!(
            "its counter wraps at {range_uj} µJ, which {max_watts} W (the most this rig takes a \
             RAPL zone to draw) goes round in {:.3} ms: it cannot be read often enough to \
             unwrap (reads at most every {} ms)",
            gap * 1e3,
            MIN_READ_PERIOD.as_millis()
        ));
    }
    Ok(period)
}

/// Opens the zone a `kind = "rapl"` table names and reads its counter once (so a counter
/// that cannot be read fails here, before the run).
pub fn open(spec: &RaplSpec) -> Result<RaplSensor> {
    let zone = find_zone(spec)?;
    let range = sysfs::in_dir(
        sysfs::read_u64(&zone.dir.join("max_energy_range_uj")),
        "RAPL wrap range",
    )?;
    let energy = zone.dir.join("energy_uj");
    let max_watts = max_watts(&zone.dir);
    let period = read_period(range, max_watts)
        .map_err(|e| anyhow::anyhow!("RAPL {} ({}): {e}", zone.name, zone.zone))?;
    let raw = read_energy(&energy)?;
    let counter = EnergyCounter::new(
        raw,
        sysfs::now_s(),
        Some(range),
        Some(max_watts),
        period.as_secs_f64(),
    )
    .map_err(|e| anyhow::anyhow!("{}: {e}", energy.display()))?;
    Ok(RaplSensor {
        info: SensorInfo {
            kind: "rapl".into(),
            rail: spec.rail.clone(),
            origin: Origin::Measured,
            detail: format!(
                "RAPL {} ({}), energy counter wrapping at {}, read every {} ms",
                zone.name,
                zone.zone,
                // Real ranges are hundreds of kJ; a test's can be a few µJ.
                if range >= 1_000_000 {
                    format!("{:.0} J", range as f64 / 1e6)
                } else {
                    format!("{range} µJ")
                },
                period.as_secs_f64() * 1e3
            ),
        },
        energy,
        counter,
        period,
        max_watts,
    })
}

impl PowerSensor for RaplSensor {
    fn info(&self) -> &SensorInfo {
        &self.info
    }

    fn update_period(&self) -> Duration {
        self.period
    }

    /// None: Intel states no accuracy for RAPL. Since Haswell it is measured rather than
    /// modelled, and studies found it close to external meters for the package, but that is
    /// no figure this rig can stand behind (and core/dram domains are less certain).
    fn uncertainty(&self) -> Option<f64> {
        None
    }

    /// The most the zone draws, as the counter's unwrapping already assumes.
    fn limits(&self) -> Limits {
        Limits {
            max_watts: self.max_watts,
            max_volts: None,
        }
    }

    fn read(&mut self) -> Result<Reading> {
        let raw = read_energy(&self.energy)?;
        self.counter
            .update(raw, sysfs::now_s())
            .map_err(|e| sysfs::counter_error(&self.energy, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A powercap tree with `zones` (folder, name, energy, range).
    fn tree(zones: &[(&str, &str, u64, u64)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for (zone, name, energy, range) in zones {
            let dir = root.path().join("class/powercap").join(zone);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("name"), format!("{name}\n")).unwrap();
            std::fs::write(dir.join("energy_uj"), format!("{energy}\n")).unwrap();
            std::fs::write(dir.join("max_energy_range_uj"), format!("{range}\n")).unwrap();
        }
        root
    }

    fn spec(root: &Path, domain: Option<&str>, zone: Option<&str>) -> RaplSpec {
        RaplSpec {
            rail: "CPU".into(),
            domain: domain.map(Into::into),
            zone: zone.map(Into::into),
            root: root.to_path_buf(),
        }
    }

    fn two_sockets() -> tempfile::TempDir {
        tree(&[
            ("intel-rapl:0", "package-0", 100, 262_143_328_850),
            ("intel-rapl:0:0", "core", 50, 262_143_328_850),
            ("intel-rapl:1", "package-1", 100, 262_143_328_850),
            ("intel-rapl:1:0", "core", 50, 262_143_328_850),
        ])
    }

    #[test]
    fn selects_by_domain_or_zone() {
        let t = two_sockets();
        let s = open(&spec(t.path(), Some("package-1"), None)).unwrap();
        assert!(
            s.info()
                .detail
                .starts_with("RAPL package-1 (intel-rapl:1), energy counter wrapping at 262143 J"),
            "{}",
            s.info().detail
        );
        let s = open(&spec(t.path(), None, Some("intel-rapl:1:0"))).unwrap();
        assert!(s.info().detail.contains("core (intel-rapl:1:0)"));
        let e = open(&spec(t.path(), Some("core"), None))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("in several zones (intel-rapl:0:0, intel-rapl:1:0)"),
            "{e}"
        );
        let e = open(&spec(t.path(), Some("dram"), None))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no RAPL zone \"dram\"") && e.contains("package-0 (intel-rapl:0)"),
            "{e}"
        );
        let empty = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(empty.path().join("class/powercap")).unwrap();
        let e = open(&spec(empty.path(), Some("package-0"), None))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("no RAPL zones under"), "{e}");
        // A root that is no sysfs tree at all: the advice is about the root, not the CPU.
        let nowhere = empty.path().join("nowhere");
        let e = open(&spec(&nowhere, Some("package-0"), None))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("class/powercap does not exist: root ")
                && e.contains("is not a sysfs tree with a powercap class"),
            "{e}"
        );
        assert!(!e.contains("this CPU or kernel"), "{e}");
    }

    #[test]
    fn validation() {
        let p = Path::new("/sys");
        assert!(spec(p, Some("core"), Some("intel-rapl:0"))
            .validate()
            .is_err());
        assert!(spec(p, None, None)
            .validate()
            .unwrap_err()
            .contains("required"));
        assert!(spec(p, None, Some("../x")).validate().is_err());
        assert!(spec(p, None, Some("intel-rapl:0:1")).validate().is_ok());
    }

    #[test]
    fn counts_across_a_wrap() {
        // 100 kJ: 100 s round at the ceiling's 1 kW, read every 50 ms. Each read below comes
        // at least 10 ms after the one before, so its 0.05 to 0.07 J is at most 7 W, far
        // inside the ceiling however fast this machine is.
        let gap = Duration::from_millis(10);
        let t = tree(&[("intel-rapl:0", "package-0", 99_999_900_000, 100_000_000_000)]);
        let mut s = open(&spec(t.path(), Some("package-0"), None)).unwrap();
        assert_eq!(s.update_period(), READ_PERIOD);
        let file = t.path().join("class/powercap/intel-rapl:0/energy_uj");
        std::fs::write(&file, "99999950000\n").unwrap();
        std::thread::sleep(gap);
        let r = s.read().unwrap();
        assert_eq!(r.energy_j, Some(0.05));
        assert!(r.watts > 0.0 && !r.stale);
        // Wrapped: 100 000 000 000 − 99 999 950 000 + 20 000 = 70 000 µJ more.
        std::fs::write(&file, "20000\n").unwrap();
        std::thread::sleep(gap);
        let r = s.read().unwrap();
        assert!(
            (r.energy_j.unwrap() - 0.12).abs() < 1e-12,
            "{:?}",
            r.energy_j
        );
        // Unchanged for a whole read period: the counter stopped.
        std::thread::sleep(READ_PERIOD + Duration::from_millis(5));
        assert!(s.read().unwrap().stale);
        std::fs::write(&file, "garbage\n").unwrap();
        let e = format!("{:#}", s.read().unwrap_err());
        assert!(
            e.contains("energy_uj") && e.contains("not an integer"),
            "{e}"
        );
    }

    #[test]
    fn a_small_range_shortens_the_read_period_or_cannot_be_read() {
        // 60 J: 60 ms round at 1 kW, so read every 30 ms.
        let t = tree(&[("intel-rapl:0", "package-0", 5, 60_000_000)]);
        let s = open(&spec(t.path(), Some("package-0"), None)).unwrap();
        assert_eq!(s.update_period(), Duration::from_millis(30));
        assert!(
            s.info().detail.ends_with("read every 30 ms"),
            "{}",
            s.info().detail
        );
        // A zone that states a higher short-term limit (2 kW) halves it again.
        let dir = t.path().join("class/powercap/intel-rapl:0");
        std::fs::write(dir.join("constraint_1_power_limit_uw"), "2000000000\n").unwrap();
        std::fs::write(dir.join("constraint_0_max_power_uw"), "15000000\n").unwrap();
        assert_eq!(max_watts(&dir), 2000.0);
        let s = open(&spec(t.path(), Some("package-0"), None)).unwrap();
        assert_eq!(s.update_period(), Duration::from_millis(15));
        // 1 J goes round in 0.5 ms at 2 kW: no read period unwraps it.
        std::fs::write(dir.join("max_energy_range_uj"), "1000000\n").unwrap();
        let e = open(&spec(t.path(), Some("package-0"), None))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "RAPL package-0 (intel-rapl:0): its counter wraps at 1000000 µJ, which 2000 W (the \
             most this rig takes a RAPL zone to draw) goes round in 0.500 ms: it cannot be read \
             often enough to unwrap (reads at most every 1 ms)"
        );
    }

    #[test]
    fn root_only_counter_says_how_to_fix_it() {
        let t = tree(&[("intel-rapl:0", "package-0", 1, 262_143_328_850)]);
        let file = t.path().join("class/powercap/intel-rapl:0/energy_uj");
        // The message itself, whoever runs the test.
        let m = permission_message(&file);
        assert!(
            m.contains("CVE-2020-8694")
                && m.contains(&format!("sudo chmod o+r {}", file.display())),
            "{m}"
        );
        assert!(m.contains(UDEV_RULE) && !m.contains('\n'), "{m}");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o000)).unwrap();
        // Unreadable even as root (as CI runs): this thread's file privileges dropped.
        let e = joulebench_test_support::with_file_permissions_binding(|| {
            format!(
                "{:#}",
                open(&spec(t.path(), Some("package-0"), None)).unwrap_err()
            )
        });
        assert!(
            e.starts_with(&format!(
                "cannot read {}: permission denied",
                file.display()
            )),
            "{e}"
        );
        assert!(e.contains("udevadm trigger"), "{e}");
    }
}
