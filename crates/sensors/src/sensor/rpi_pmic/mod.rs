//! A Raspberry Pi 5's PMIC (Renesas DA9091) through `vcgencmd pmic_read_adc`: each rail's
//! current × voltage, summed over the rails a rig names (all of them by default).
//!
//! The PMIC measures the SoC-side rails only. The 5 V input (`EXT5V_V`) has a voltage and no
//! current, so what the board draws at its USB-C input is not here: the sum is a part of
//! the board's power, and every output labels it [`Origin::Partial`]. A rig can fit the sum to
//! a meter at the input (`calibration`, written by `joulebench calibrate`): the figure is then
//! that fit's estimate of the input, with the references' uncertainty ([`fit`]).
//!
//! Each read runs vcgencmd once ([`command`]); tables of one rig that name the same program
//! share a run made within half a read period ([`shared_read`]), so per-rail tables beside a
//! total cost one process per period, not one each.

pub mod adc;
pub mod command;
pub mod fit;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use self::adc::Adc;
use self::fit::{CalibrationPoint, Fit};
use super::{HelperCpu, Origin, PowerSensor, Reading, SensorInfo};

/// Read every half second unless `period_ms` says otherwise. One read costs a process:
/// measured on this project's 2-core x86-64 VM (not a Pi) over 500 reads, 2.25 ms of CPU with
/// the tests' shell-script stand-in for vcgencmd (2.12 ms in the child, 0.13 ms in the
/// sampler thread) and 0.99 ms for a small C program (`true`) through the same spawn and wait
/// (`rpi_pmic::read_cost` in tests/, figures in docs/src/measurements.md). Every 500 ms that
/// is 0.45 % and 0.20 % of a core: under 1 %, with room for a Pi's cores being slower.
pub const DEFAULT_PERIOD: Duration = Duration::from_millis(500);

/// A window shorter than this many read periods holds too few readings for its mean.
const MIN_WINDOW_PERIODS: u32 = 10;

/// The default program: vcgencmd found on PATH.
pub const DEFAULT_PROGRAM: &str = "vcgencmd";

fn default_program() -> PathBuf {
    PathBuf::from(DEFAULT_PROGRAM)
}

fn is_default_program(p: &Path) -> bool {
    p == Path::new(DEFAULT_PROGRAM)
}

/// A `kind = "rpi-pmic"` table.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RpiPmicSpec {
    /// What is measured, e.g. "Pi 5 PMIC rails".
    pub rail: String,
    /// The PMIC rails to add up, by the name vcgencmd prints without `_A`/`_V` (e.g.
    /// "VDD_CORE"); empty (the default): every rail with a current and a voltage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rails: Vec<String>,
    /// The vcgencmd program: a path, or a name looked up on PATH (default "vcgencmd").
    #[serde(
        default = "default_program",
        skip_serializing_if = "is_default_program"
    )]
    pub vcgencmd: PathBuf,
    /// Read every this many milliseconds instead of every 500 (each read runs vcgencmd once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_ms: Option<u32>,
    /// Points that fit the sum to a meter at the 5 V input (`joulebench calibrate` adds one
    /// per load); from two on, the sensor reports the fit's estimate of the input.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calibration: Vec<CalibrationPoint>,
}

impl RpiPmicSpec {
    /// A table for `program` with the defaults.
    pub fn new(rail: &str, program: &Path) -> Self {
        Self {
            rail: rail.into(),
            rails: Vec::new(),
            vcgencmd: program.to_path_buf(),
            period_ms: None,
            calibration: Vec::new(),
        }
    }

    /// Checks what serde cannot; the error is one line naming the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.vcgencmd.as_os_str().is_empty() {
            return Err("vcgencmd must name the program (default \"vcgencmd\")".into());
        }
        if self.period_ms == Some(0) {
            return Err("period_ms must be at least 1".into());
        }
        for (n, rail) in self.rails.iter().enumerate() {
            if rail.is_empty() || rail.ends_with("_A") || rail.ends_with("_V") {
                return Err(format!(
                    "rails names a PMIC rail as vcgencmd prints it without _A or _V (e.g. \
                     \"VDD_CORE\"), not {rail:?}"
                ));
            }
            if self.rails[..n].contains(rail) {
                return Err(format!("rails names {rail:?} twice"));
            }
        }
        Fit::of(&self.calibration).map(|_| ())
    }

    /// How often the sensor reads.
    pub fn period(&self) -> Duration {
        self.period_ms
            .map_or(DEFAULT_PERIOD, |ms| Duration::from_millis(ms.into()))
    }

    /// Whether the two tables add up a rail in common (a table of every rail shares all).
    pub fn overlaps(&self, other: &RpiPmicSpec) -> bool {
        self.vcgencmd == other.vcgencmd
            && (self.rails.is_empty()
                || other.rails.is_empty()
                || self.rails.iter().any(|r| other.rails.contains(r)))
    }
}

/// The latest run of each program, shared by the tables that name it.
struct Latest {
    program: PathBuf,
    adc: Arc<Adc>,
    /// The middle of the run that read it.
    at: Instant,
}

static LATEST: Mutex<Vec<Latest>> = Mutex::new(Vec::new());

/// The PMIC's values: another table's run of `program` if made within `fresh_for`, else a run
/// of its own, whose CPU time goes to `cpu`. Also how old the values are.
///
/// The lock is held across a run, so tables read at the same moment wait for one run rather
/// than start one each.
pub fn shared_read(
    program: &Path,
    fresh_for: Duration,
    cpu: &AtomicU64,
) -> Result<(Arc<Adc>, Duration)> {
    let mut latest = LATEST.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(l) = latest.iter().find(|l| l.program == program) {
        let age = l.at.elapsed();
        if age < fresh_for {
            return Ok((Arc::clone(&l.adc), age));
        }
    }
    let before = Instant::now();
    let out = command::run(program);
    let after = Instant::now();
    cpu.fetch_add(out.cpu.as_nanos() as u64, Ordering::Relaxed);
    let adc = Arc::new(adc::parse(&out.stdout?)?);
    let at = before + (after - before) / 2;
    latest.retain(|l| l.program != program);
    latest.push(Latest {
        program: program.to_path_buf(),
        adc: Arc::clone(&adc),
        at,
    });
    Ok((adc, at.elapsed()))
}

/// The rails of a table, read.
#[derive(Debug)]
pub struct RpiPmicSensor {
    info: SensorInfo,
    program: PathBuf,
    /// Empty: every rail.
    rails: Vec<String>,
    period: Duration,
    fit: Option<Fit>,
    /// Nanoseconds of CPU its vcgencmd runs used.
    child_cpu: HelperCpu,
}

/// Opens the table's sensor and reads it once: a missing program, a failing one, output in
/// no known format or a rail the PMIC does not report fail here, before a run.
pub fn open(spec: &RpiPmicSpec) -> Result<RpiPmicSensor> {
    if let Err(why) = spec.validate() {
        bail!("{why}");
    }
    let fit = Fit::of(&spec.calibration).map_err(anyhow::Error::msg)?;
    let period = spec.period();
    let child_cpu = HelperCpu::default();
    let (adc, _) = shared_read(&spec.vcgencmd, period / 2, &child_cpu)?;
    let available = adc.rails();
    for rail in &spec.rails {
        if !available.iter().any(|r| r.name == *rail) {
            bail!(
                "the PMIC has no rail {rail:?} (it reports: {})",
                available
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let which = if spec.rails.is_empty() {
        format!("all {} rails", available.len())
    } else {
        spec.rails.join(" + ")
    };
    let what = match &fit {
        Some(fit) => format!("{which}, fitted to the 5 V input: {}", fit.describe()),
        None if spec.calibration.len() == 1 => format!(
            "{which}: SoC side only, not the 5 V input (1 calibration point; a fit needs a \
             second at another load)"
        ),
        None => format!("{which}: SoC side only, not the 5 V input"),
    };
    Ok(RpiPmicSensor {
        info: SensorInfo {
            kind: "rpi-pmic".into(),
            rail: spec.rail.clone(),
            // A fit maps the rails onto the input, measured against a meter there.
            origin: if fit.is_some() {
                Origin::Measured
            } else {
                Origin::Partial
            },
            detail: format!(
                "{} {}, {what}, read every {} ms",
                spec.vcgencmd.display(),
                command::COMMAND,
                period.as_millis()
            ),
        },
        program: spec.vcgencmd.clone(),
        rails: spec.rails.clone(),
        period,
        fit,
        child_cpu,
    })
}

impl RpiPmicSensor {
    /// The rails this table adds, from one read.
    fn chosen(&self, adc: &Adc) -> Result<Vec<adc::Rail>> {
        let all = adc.rails();
        if self.rails.is_empty() {
            return Ok(all);
        }
        self.rails
            .iter()
            .map(|name| {
                all.iter()
                    .find(|r| r.name == *name)
                    .cloned()
                    .ok_or_else(|| {
                        anyhow::anyhow!("vcgencmd pmic_read_adc no longer reports rail {name:?}")
                    })
            })
            .collect()
    }
}

impl PowerSensor for RpiPmicSensor {
    fn info(&self) -> &SensorInfo {
        &self.info
    }

    fn update_period(&self) -> Duration {
        self.period
    }

    /// Never stale: a value another table's run read is as new as its run, and is stamped
    /// there (`centre_offset_s`, its age).
    fn read(&mut self) -> Result<Reading> {
        let (adc, age) = shared_read(&self.program, self.period / 2, &self.child_cpu)?;
        let rails = self.chosen(&adc)?;
        let pmic_w: f64 = rails.iter().map(adc::Rail::watts).sum();
        // One rail's own volts and amps; a sum of rails has neither.
        let (volts, amps) = match rails.as_slice() {
            [one] if self.fit.is_none() => (Some(one.volts), Some(one.amps)),
            _ => (None, None),
        };
        Ok(Reading {
            volts,
            amps,
            watts: self.fit.as_ref().map_or(pmic_w, |f| f.apply(pmic_w)),
            centre_offset_s: age.as_secs_f64(),
            ..Reading::default()
        })
    }

    /// The fit's bound where there is one; none for the rails alone (the DA9091's ADC
    /// accuracy is not published).
    fn uncertainty(&self) -> Option<f64> {
        self.fit.as_ref().map(|f| f.uncertainty)
    }

    fn min_window(&self) -> Option<Duration> {
        Some(self.period * MIN_WINDOW_PERIODS)
    }

    fn helper_cpu(&self) -> Option<HelperCpu> {
        Some(self.child_cpu.clone())
    }
}

/// The PMIC total of a table without its calibration: what `joulebench calibrate` measures.
pub fn open_uncalibrated(spec: &RpiPmicSpec) -> Result<RpiPmicSensor> {
    open(&RpiPmicSpec {
        calibration: Vec::new(),
        ..spec.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A stand-in vcgencmd printing `text` for `pmic_read_adc`.
    fn stand_in(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!("#!/bin/sh\n[ \"$1\" = pmic_read_adc ] || exit 2\ncat <<'EOF'\n{text}EOF\n"),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    const PI5: &str = "   VDD_CORE_A current(7)=2.00000000A
   3V3_SYS_A current(1)=0.10000000A
   VDD_CORE_V volt(15)=0.80000000V
   3V3_SYS_V volt(9)=3.30000000V
   EXT5V_V volt(24)=5.10000000V
";

    #[test]
    fn sums_the_rails_as_a_partial_figure_or_one_rail_with_its_volts_and_amps() {
        let dir = tempfile::tempdir().unwrap();
        let program = stand_in(dir.path(), "vc-sum", PI5);
        let mut all = open(&RpiPmicSpec::new("pmic", &program)).unwrap();
        assert_eq!(all.info().origin, Origin::Partial);
        assert!(
            all.info()
                .detail
                .contains("all 2 rails: SoC side only, not the 5 V input"),
            "{}",
            all.info().detail
        );
        let r = all.read().unwrap();
        assert!((r.watts - (1.6 + 0.33)).abs() < 1e-12, "{r:?}");
        assert_eq!((r.volts, r.amps, r.stale), (None, None, false));
        assert_eq!(all.uncertainty(), None);
        assert_eq!(all.min_window(), Some(DEFAULT_PERIOD * 10));

        let mut core = open(&RpiPmicSpec {
            rails: vec!["VDD_CORE".into()],
            ..RpiPmicSpec::new("core", &program)
        })
        .unwrap();
        let r = core.read().unwrap();
        assert_eq!((r.volts, r.amps), (Some(0.8), Some(2.0)));
        assert!((r.watts - 1.6).abs() < 1e-12);

        let e = open(&RpiPmicSpec {
            rails: vec!["DDR_VDD2".into()],
            ..RpiPmicSpec::new("ddr", &program)
        })
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "the PMIC has no rail \"DDR_VDD2\" (it reports: VDD_CORE, 3V3_SYS)"
        );
    }

    #[test]
    fn a_calibrated_table_reports_the_fit_as_measured_with_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let program = stand_in(dir.path(), "vc-fit", PI5);
        let point = |pmic_w, reference_w| CalibrationPoint {
            pmic_w,
            reference_w,
            reference_uncertainty_pct: 1.0,
        };
        let spec = RpiPmicSpec {
            calibration: vec![point(1.0, 2.7), point(3.0, 5.1)],
            ..RpiPmicSpec::new("board in", &program)
        };
        let mut s = open(&spec).unwrap();
        assert_eq!(s.info().origin, Origin::Measured);
        // input = 1.2 × PMIC + 1.5 W.
        assert!((s.read().unwrap().watts - (1.2 * 1.93 + 1.5)).abs() < 1e-9);
        assert!((s.uncertainty().unwrap() - 0.01).abs() < 1e-9);
        let mut plain = open_uncalibrated(&spec).unwrap();
        assert!((plain.read().unwrap().watts - 1.93).abs() < 1e-12);
        let one = RpiPmicSpec {
            calibration: vec![point(1.0, 2.7)],
            ..spec
        };
        let s = open(&one).unwrap();
        assert_eq!(s.info().origin, Origin::Partial);
        assert!(s.info().detail.contains("1 calibration point"));
    }

    #[test]
    fn tables_of_one_program_share_a_run_and_count_its_cpu_once() {
        let dir = tempfile::tempdir().unwrap();
        let program = stand_in(dir.path(), "vc-shared", PI5);
        let a = HelperCpu::default();
        let b = HelperCpu::default();
        let long = Duration::from_secs(3600);
        let (first, _) = shared_read(&program, Duration::ZERO, &a).unwrap();
        let (again, age) = shared_read(&program, long, &b).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert!(age < long);
        assert!(a.load(Ordering::Relaxed) > 0);
        assert_eq!(
            b.load(Ordering::Relaxed),
            0,
            "the second table started no run"
        );
    }

    #[test]
    fn validation_names_the_key() {
        let p = Path::new("vcgencmd");
        let check = |f: &dyn Fn(&mut RpiPmicSpec)| {
            let mut s = RpiPmicSpec::new("r", p);
            f(&mut s);
            s.validate()
        };
        assert_eq!(check(&|_| {}), Ok(()));
        assert!(check(&|s| s.period_ms = Some(0))
            .unwrap_err()
            .contains("period_ms"));
        assert!(check(&|s| s.rails = vec!["VDD_CORE_A".into()])
            .unwrap_err()
            .contains("without _A or _V"));
        assert!(check(&|s| s.rails = vec!["X".into(), "X".into()])
            .unwrap_err()
            .contains("twice"));
        assert!(check(&|s| s.vcgencmd = PathBuf::new()).is_err());
        let a = RpiPmicSpec::new("a", p);
        let core = RpiPmicSpec {
            rails: vec!["VDD_CORE".into()],
            ..RpiPmicSpec::new("c", p)
        };
        let sys = RpiPmicSpec {
            rails: vec!["3V3_SYS".into()],
            ..RpiPmicSpec::new("s", p)
        };
        assert!(a.overlaps(&core) && core.overlaps(&core) && !core.overlaps(&sys));
    }
}
