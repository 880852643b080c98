//! The machine state that moves the numbers: CPU governor and clocks, temperatures, a Jetson's
//! power mode, a Raspberry Pi's firmware throttle flags — read from sysfs and a few files just
//! before a timed window opens and just after it closes, and whether the CPU throttled between.
//!
//! Paths are read under a root ([`root`]: `/`, or `$JOULEBENCH_ROOT`), the directory that
//! holds `sys/`, `var/` and `etc/`, so tests (and a copy of another machine's files) can stand
//! in for the real ones. A file that does not exist is not recorded (a laptop has no nvpmodel);
//! one that exists but cannot be read or parsed is recorded as unknown (`null` in JSON, and a
//! line in `unreadable`), never guessed.

pub mod system;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The environment variable that moves the root the machine's files are read under (the
/// machine state, and the meters `detect_sensors` looks for under its `sys/`): the directory
/// standing for `/`, holding `sys/`, `var/` and `etc/`.
pub const ROOT_ENV: &str = crate::environment::ROOT;

/// Where the machine's files are read: `$JOULEBENCH_ROOT`, else `/`.
pub fn root() -> PathBuf {
    std::env::var_os(ROOT_ENV)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

/// Refuses a `$JOULEBENCH_ROOT` that is not a folder, in one line: read anyway, it would look
/// like a machine without meters, and a run would fall back to its simulated board.
pub fn check_root() -> anyhow::Result<()> {
    let root = root();
    if root.is_dir() {
        return Ok(());
    }
    anyhow::bail!(
        "{ROOT_ENV}={} is not a folder: unset it to read this machine's own files, or point it \
         at a copy of a machine's (a folder holding sys/)",
        root.display()
    )
}

/// One value read from a file: absent (no such file: not recorded), unknown (the file is there
/// but could not be read or parsed: `null`), or known.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Reading<T> {
    #[default]
    Absent,
    Unknown,
    Known(T),
}

impl<T> Reading<T> {
    pub fn is_absent(&self) -> bool {
        matches!(self, Reading::Absent)
    }

    pub fn known(&self) -> Option<&T> {
        match self {
            Reading::Known(v) => Some(v),
            _ => None,
        }
    }
}

// An absent reading is skipped by the fields that hold one; what is left is a value or null.
impl<T: Serialize> Serialize for Reading<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.known().serialize(s)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Reading<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Option::<T>::deserialize(d)?.map_or(Reading::Unknown, Reading::Known))
    }
}

/// One cpufreq policy (a group of CPUs that share a clock). Frequencies in kHz, as the kernel
/// gives them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuPolicy {
    /// `policy0`, ...
    pub policy: String,
    #[serde(default, skip_serializing_if = "Reading::is_absent")]
    pub affected_cpus: Reading<String>,
    #[serde(default, skip_serializing_if = "Reading::is_absent")]
    pub governor: Reading<String>,
    #[serde(default, skip_serializing_if = "Reading::is_absent")]
    pub cur_khz: Reading<u64>,
    /// `scaling_max_freq`: the ceiling the governor may use now (lowered by a thermal or power
    /// cap, or by hand).
    #[serde(default, skip_serializing_if = "Reading::is_absent")]
    pub max_khz: Reading<u64>,
    /// `cpuinfo_max_freq`: the hardware's ceiling.
    #[serde(default, skip_serializing_if = "Reading::is_absent")]
    pub hw_max_khz: Reading<u64>,
}

/// One thermal zone (`/sys/class/thermal/thermal_zoneN`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThermalZone {
    pub zone: String,
    #[serde(default, skip_serializing_if = "Reading::is_absent")]
    pub kind: Reading<String>,
    #[serde(default, skip_serializing_if = "Reading::is_absent")]
    pub temp_c: Reading<f64>,
}

/// One hwmon temperature input (`/sys/class/hwmon/hwmonN/tempM_input`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HwmonTemp {
    /// `hwmon0/temp1`.
    pub input: String,
    /// The chip's `name`.
    #[serde(default, skip_serializing_if = "Reading::is_absent")]
    pub name: Reading<String>,
    #[serde(default, skip_serializing_if = "Reading::is_absent")]
    pub label: Reading<String>,
    #[serde(default, skip_serializing_if = "Reading::is_absent")]
    pub temp_c: Reading<f64>,
}

/// One cooling device (`/sys/class/thermal/cooling_deviceN`): a fan, or a CPU clock limiter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoolingDevice {
    pub device: String,
    #[serde(default, skip_serializing_if = "Reading::is_absent")]
    pub kind: Reading<String>,
    #[serde(default, skip_serializing_if = "Reading::is_absent")]
    pub cur_state: Reading<u64>,
}

impl CoolingDevice {
    /// Whether it limits the CPU: ACPI's `Processor` (x86) or a device tree's `cpufreq-*`
    /// (Arm boards). A state above 0 means it is holding the CPU's clock down.
    pub fn limits_cpu(&self) -> bool {
        self.kind
            .known()
            .is_some_and(|k| k == "Processor" || k.starts_with("cpufreq-"))
    }
}

/// Intel's thermal throttle event counters (`cpuN/thermal_throttle/*_throttle_count`), summed
/// over the CPUs that have them: the counters only grow, so a larger sum means some CPU or
/// package throttled in between.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThrottleCounts {
    /// CPUs with a `thermal_throttle` folder.
    pub cpus: usize,
    #[serde(default, skip_serializing_if = "Reading::is_absent")]
    pub core: Reading<u64>,
    #[serde(default, skip_serializing_if = "Reading::is_absent")]
    pub package: Reading<u64>,
}

/// A Jetson's nvpmodel power mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PowerMode {
    /// From `/var/lib/nvpmodel/status` (`pmode:0000`).
    #[serde(default, skip_serializing_if = "Reading::is_absent")]
    pub id: Reading<u32>,
    /// From the mode's `< POWER_MODEL ID=0 NAME=MAXN >` line in `/etc/nvpmodel.conf`.
    #[serde(default, skip_serializing_if = "Reading::is_absent")]
    pub name: Reading<String>,
}

/// The machine at one instant.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MachineState {
    /// How long this capture took, microseconds (it runs outside the timed window).
    pub capture_us: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpufreq: Vec<CpuPolicy>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thermal_zones: Vec<ThermalZone>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hwmon_temps: Vec<HwmonTemp>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cooling_devices: Vec<CoolingDevice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle_counts: Option<ThrottleCounts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvpmodel: Option<PowerMode>,
    /// A Raspberry Pi's firmware flags (`get_throttled`, a hex bitmask; see [`PI_BITS`]).
    #[serde(default, skip_serializing_if = "Reading::is_absent")]
    pub rpi_throttled: Reading<u32>,
    /// Files that exist but could not be read or parsed, with why: their values are unknown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
}

const CPUFREQ: &str = "sys/devices/system/cpu/cpufreq";
const CPUS: &str = "sys/devices/system/cpu";
const THERMAL: &str = "sys/class/thermal";
const HWMON: &str = "sys/class/hwmon";
const RPI_THROTTLED: &str = "sys/devices/platform/soc/soc:firmware/get_throttled";
const NVPMODEL_STATUS: &str = "var/lib/nvpmodel/status";
const NVPMODEL_CONF: &str = "etc/nvpmodel.conf";

/// The Pi firmware's flags: bits 0-3 are the state now, bits 16-19 the same four "has occurred
/// since boot" (Raspberry Pi documentation, `vcgencmd get_throttled`).
pub const PI_BITS: [(u32, &str); 8] = [
    (0, "under-voltage"),
    (1, "ARM frequency capped"),
    (2, "throttled"),
    (3, "soft temperature limit active"),
    (16, "under-voltage occurred"),
    (17, "ARM frequency capping occurred"),
    (18, "throttling occurred"),
    (19, "soft temperature limit occurred"),
];

/// Reads files under one root, noting the ones that exist but fail.
struct Reader<'a> {
    root: &'a Path,
    unreadable: Vec<String>,
}

impl Reader<'_> {
    /// A file's text: `None` when it does not exist; `Some(Err)` when it exists but fails.
    fn text(&mut self, rel: &str) -> Option<Result<String, ()>> {
        match std::fs::read_to_string(self.root.join(rel)) {
            Ok(t) => Some(Ok(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                self.unreadable.push(format!("{rel}: {e}"));
                Some(Err(()))
            }
        }
    }

    /// A file's trimmed text parsed as `T`.
    fn value<T: FromStr>(&mut self, rel: &str) -> Reading<T> {
        self.parsed(rel, |t| t.parse().ok())
    }

    fn parsed<T>(&mut self, rel: &str, parse: impl FnOnce(&str) -> Option<T>) -> Reading<T> {
        match self.text(rel) {
            None => Reading::Absent,
            Some(Err(())) => Reading::Unknown,
            Some(Ok(text)) => match parse(text.trim()) {
                Some(v) => Reading::Known(v),
                None => {
                    self.unreadable
                        .push(format!("{rel}: cannot parse {:?}", text.trim()));
                    Reading::Unknown
                }
            },
        }
    }

    /// Millidegrees Celsius, as thermal zones and hwmon give them, in degrees.
    fn celsius(&mut self, rel: &str) -> Reading<f64> {
        self.parsed(rel, |t| t.parse::<i64>().ok().map(|m| m as f64 / 1000.0))
    }

    /// The entries `<prefix><n>` of a folder, by n.
    fn numbered(&mut self, dir: &str, prefix: &str) -> Vec<(u32, String)> {
        self.numbered_with(dir, prefix, "")
    }

    /// The entries `<prefix><n><suffix>` of a folder, by n.
    fn numbered_with(&mut self, dir: &str, prefix: &str, suffix: &str) -> Vec<(u32, String)> {
        let entries = match std::fs::read_dir(self.root.join(dir)) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => {
                self.unreadable.push(format!("{dir}: {e}"));
                return Vec::new();
            }
        };
        let mut out: Vec<(u32, String)> = entries
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                let n = name
                    .strip_prefix(prefix)?
                    .strip_suffix(suffix)?
                    .parse()
                    .ok()?;
                Some((n, name))
            })
            .collect();
        out.sort();
        out
    }
}

impl MachineState {
    /// Reads the machine's state under `root` (see [`root`]). Never fails: what is missing is
    /// left out, what fails is unknown.
    pub fn capture(root: &Path) -> Self {
        let began = Instant::now();
        let mut r = Reader {
            root,
            unreadable: Vec::new(),
        };
        let cpufreq = r
            .numbered(CPUFREQ, "policy")
            .into_iter()
            .map(|(_, policy)| {
                let f = |file: &str| format!("{CPUFREQ}/{policy}/{file}");
                CpuPolicy {
                    affected_cpus: r.value(&f("affected_cpus")),
                    governor: r.value(&f("scaling_governor")),
                    cur_khz: r.value(&f("scaling_cur_freq")),
                    max_khz: r.value(&f("scaling_max_freq")),
                    hw_max_khz: r.value(&f("cpuinfo_max_freq")),
                    policy,
                }
            })
            .collect();
        let thermal_zones = r
            .numbered(THERMAL, "thermal_zone")
            .into_iter()
            .map(|(_, zone)| ThermalZone {
                kind: r.value(&format!("{THERMAL}/{zone}/type")),
                temp_c: r.celsius(&format!("{THERMAL}/{zone}/temp")),
                zone,
            })
            .collect();
        let cooling_devices = r
            .numbered(THERMAL, "cooling_device")
            .into_iter()
            .map(|(_, device)| CoolingDevice {
                kind: r.value(&format!("{THERMAL}/{device}/type")),
                cur_state: r.value(&format!("{THERMAL}/{device}/cur_state")),
                device,
            })
            .collect();
        let mut hwmon_temps = Vec::new();
        for (_, chip) in r.numbered(HWMON, "hwmon") {
            let dir = format!("{HWMON}/{chip}");
            let name: Reading<String> = r.value(&format!("{dir}/name"));
            for (m, _) in r.numbered_with(&dir, "temp", "_input") {
                hwmon_temps.push(HwmonTemp {
                    input: format!("{chip}/temp{m}"),
                    name: name.clone(),
                    label: r.value(&format!("{dir}/temp{m}_label")),
                    temp_c: r.celsius(&format!("{dir}/temp{m}_input")),
                });
            }
        }
        let throttle_counts = throttle_counts(&mut r);
        let nvpmodel = power_mode(&mut r);
        // Newer Pi kernels log a one-time "deprecated" warning on the first read of this file;
        // it is still the one place that has all of the firmware's flags.
        let rpi_throttled = r.parsed(RPI_THROTTLED, |t| {
            u32::from_str_radix(t.trim_start_matches("0x"), 16).ok()
        });
        MachineState {
            cpufreq,
            thermal_zones,
            hwmon_temps,
            cooling_devices,
            throttle_counts,
            nvpmodel,
            rpi_throttled,
            unreadable: r.unreadable,
            capture_us: began.elapsed().as_secs_f64() * 1e6,
        }
    }
}

/// Sums Intel's throttle counters over the CPUs that have them; a sum with one unreadable
/// counter in it is unknown.
fn throttle_counts(r: &mut Reader) -> Option<ThrottleCounts> {
    let cpus: Vec<String> = r
        .numbered(CPUS, "cpu")
        .into_iter()
        .map(|(_, cpu)| cpu)
        .filter(|cpu| {
            r.root
                .join(CPUS)
                .join(cpu)
                .join("thermal_throttle")
                .is_dir()
        })
        .collect();
    if cpus.is_empty() {
        return None;
    }
    let mut sum = |counter: &str| -> Reading<u64> {
        let mut total = Reading::Absent;
        for cpu in &cpus {
            let v: Reading<u64> = r.value(&format!("{CPUS}/{cpu}/thermal_throttle/{counter}"));
            total = match (total, v) {
                (Reading::Unknown, _) | (_, Reading::Unknown) => Reading::Unknown,
                (t, Reading::Absent) => t,
                (Reading::Absent, Reading::Known(v)) => Reading::Known(v),
                (Reading::Known(t), Reading::Known(v)) => Reading::Known(t + v),
            };
        }
        total
    };
    Some(ThrottleCounts {
        core: sum("core_throttle_count"),
        package: sum("package_throttle_count"),
        cpus: cpus.len(),
    })
}

/// The nvpmodel mode in force, where the status file exists.
fn power_mode(r: &mut Reader) -> Option<PowerMode> {
    let id: Reading<u32> = r.parsed(NVPMODEL_STATUS, |t| {
        t.lines()
            .find_map(|l| l.trim().strip_prefix("pmode:"))
            .and_then(|n| n.trim().parse().ok())
    });
    if id.is_absent() {
        return None;
    }
    let name = match &id {
        Reading::Known(id) => {
            let id = *id;
            r.parsed(NVPMODEL_CONF, |t| mode_name(t, id))
        }
        _ => Reading::Unknown,
    };
    Some(PowerMode { id, name })
}

/// The NAME of `< POWER_MODEL ID=<id> NAME=<name> >` in an nvpmodel.conf.
fn mode_name(conf: &str, id: u32) -> Option<String> {
    conf.lines().find_map(|line| {
        let inner = line
            .trim()
            .strip_prefix('<')?
            .strip_suffix('>')?
            .trim()
            .strip_prefix("POWER_MODEL")?;
        let mut found_id = None;
        let mut name = None;
        for (k, v) in inner.split_whitespace().filter_map(|f| f.split_once('=')) {
            match k {
                "ID" => found_id = v.parse::<u32>().ok(),
                "NAME" => name = Some(v.to_string()),
                _ => {}
            }
        }
        (found_id == Some(id)).then_some(name).flatten()
    })
}

/// Whether a timed window ran on a throttled CPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Throttle {
    /// None of the signals that could be checked showed throttling.
    No,
    /// At least one did; the reasons.
    Yes(String),
}

impl fmt::Display for Throttle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Throttle::No => f.write_str("no"),
            Throttle::Yes(why) => write!(f, "yes: {why}"),
        }
    }
}

impl FromStr for Throttle {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "no" => Ok(Throttle::No),
            _ => s
                .strip_prefix("yes: ")
                .map(|why| Throttle::Yes(why.into()))
                .ok_or_else(|| format!("throttled must be \"no\" or \"yes: <reason>\", not {s:?}")),
        }
    }
}

impl Serialize for Throttle {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Throttle {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The throttle verdict on a window: the signals that could be checked, and the outcome —
/// `None` when no signal exists (a virtual machine without these files: nothing can be said).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub throttled: Option<Throttle>,
    pub signals: Vec<String>,
}

/// What the four throttle signals say about a window, from the states at its two ends.
pub fn verdict(start: &MachineState, end: &MachineState) -> Verdict {
    let mut signals = Vec::new();
    let mut reasons = Vec::new();
    check_throttle_counts(start, end, &mut signals, &mut reasons);
    check_pi_flags(start, end, &mut signals, &mut reasons);
    check_cooling_devices(start, end, &mut signals, &mut reasons);
    check_cpufreq_ceilings(start, end, &mut signals, &mut reasons);
    let throttled = if !reasons.is_empty() {
        Some(Throttle::Yes(reasons.join("; ")))
    } else if signals.is_empty() {
        None
    } else {
        Some(Throttle::No)
    };
    Verdict { throttled, signals }
}

/// Intel: a throttle event counter grew. Each `check_*` adds its signal to `signals` where
/// it could be read at both ends, and what it shows to `reasons`.
fn check_throttle_counts(
    start: &MachineState,
    end: &MachineState,
    signals: &mut Vec<String>,
    reasons: &mut Vec<String>,
) {
    if let (Some(a), Some(b)) = (&start.throttle_counts, &end.throttle_counts) {
        if a.cpus == b.cpus {
            for (what, a, b) in [
                ("core", &a.core, &b.core),
                ("package", &a.package, &b.package),
            ] {
                if let (Some(a), Some(b)) = (a.known(), b.known()) {
                    if !signals.iter().any(|s| s == "thermal_throttle counts") {
                        signals.push("thermal_throttle counts".into());
                    }
                    if b > a {
                        reasons.push(format!("{what} throttle count +{}", b - a));
                    }
                }
            }
        }
    }
}

/// Raspberry Pi: a "now" flag at either end, or a "since boot" flag newly set.
fn check_pi_flags(
    start: &MachineState,
    end: &MachineState,
    signals: &mut Vec<String>,
    reasons: &mut Vec<String>,
) {
    let (pi_a, pi_b) = (start.rpi_throttled.known(), end.rpi_throttled.known());
    if pi_a.is_some() && pi_b.is_some() {
        signals.push("get_throttled".into());
    }
    for (bit, name) in PI_BITS.iter().filter(|(bit, _)| *bit < 16) {
        let set = |flags: Option<&u32>| flags.is_some_and(|f| f & (1 << bit) != 0);
        if let Some(when) = at_edges(set(pi_a), set(pi_b)) {
            reasons.push(format!("Pi {name} {when}"));
        }
    }
    if let (Some(a), Some(b)) = (pi_a, pi_b) {
        for (bit, name) in PI_BITS.iter().filter(|(bit, _)| *bit >= 16) {
            if b & !a & (1 << bit) != 0 {
                reasons.push(format!("Pi {name}"));
            }
        }
    }
}

/// A CPU cooling device holding the clock down at either end.
fn check_cooling_devices(
    start: &MachineState,
    end: &MachineState,
    signals: &mut Vec<String>,
    reasons: &mut Vec<String>,
) {
    let cpu_cooling = |s: &MachineState| -> Vec<(String, String, u64)> {
        s.cooling_devices
            .iter()
            .filter(|d| d.limits_cpu())
            .filter_map(|d| {
                let kind = d.kind.known()?.clone();
                Some((d.device.clone(), kind, *d.cur_state.known()?))
            })
            .collect()
    };
    let (cool_a, cool_b) = (cpu_cooling(start), cpu_cooling(end));
    if !cool_a.is_empty() && !cool_b.is_empty() {
        signals.push("cpu cooling devices".into());
    }
    let mut holding: Vec<&(String, String, u64)> = Vec::new();
    for d in cool_a.iter().chain(&cool_b).filter(|d| d.2 > 0) {
        if !holding.contains(&d) {
            holding.push(d);
        }
    }
    for d in holding {
        let (device, kind, state) = d;
        let at = |devices: &[(String, String, u64)]| devices.contains(d);
        if let Some(when) = at_edges(at(&cool_a), at(&cool_b)) {
            reasons.push(format!("{device} ({kind}) at state {state} {when}"));
        }
    }
}

/// cpufreq: the ceiling dropped below the hardware's during the window.
fn check_cpufreq_ceilings(
    start: &MachineState,
    end: &MachineState,
    signals: &mut Vec<String>,
    reasons: &mut Vec<String>,
) {
    let capped = |p: &CpuPolicy| -> Option<(u64, u64, bool)> {
        let (max, hw) = (*p.max_khz.known()?, *p.hw_max_khz.known()?);
        Some((max, hw, max < hw))
    };
    for b in &end.cpufreq {
        let Some(a) = start.cpufreq.iter().find(|a| a.policy == b.policy) else {
            continue;
        };
        let (Some((_, _, was)), Some((max, hw, now))) = (capped(a), capped(b)) else {
            continue;
        };
        if !signals.iter().any(|s| s == "cpufreq ceilings") {
            signals.push("cpufreq ceilings".into());
        }
        if now && !was {
            reasons.push(format!(
                "{} capped to {} of {} MHz",
                b.policy,
                max / 1000,
                hw / 1000
            ));
        }
    }
}

/// Where a sign was seen: at the window's start, its end, or both.
fn at_edges(start: bool, end: bool) -> Option<&'static str> {
    match (start, end) {
        (true, true) => Some("at start and end"),
        (true, false) => Some("at start"),
        (false, true) => Some("at end"),
        (false, false) => None,
    }
}

/// Why the CPU throttled during the window from `start` to `end`, or `None` if no signal
/// shows it (which, where [`verdict`] finds no signal at all, says nothing).
pub fn throttled(start: &MachineState, end: &MachineState) -> Option<String> {
    match verdict(start, end).throttled {
        Some(Throttle::Yes(why)) => Some(why),
        _ => None,
    }
}

/// The verdict on a backend's repetitions taken together: throttled if any was (naming which),
/// not throttled if every one was known not to be, else unknown.
pub fn combine<'a>(
    repetitions: impl IntoIterator<Item = (usize, Option<&'a Throttle>)>,
) -> Option<Throttle> {
    let all: Vec<(usize, Option<&Throttle>)> = repetitions.into_iter().collect();
    let yes: Vec<String> = all
        .iter()
        .filter_map(|(n, t)| match t {
            Some(Throttle::Yes(why)) => Some(format!("repetition {n}: {why}")),
            _ => None,
        })
        .collect();
    if !yes.is_empty() {
        return Some(Throttle::Yes(format!(
            "{} of {} repetitions ({})",
            yes.len(),
            all.len(),
            yes.join("; ")
        )));
    }
    (!all.is_empty() && all.iter().all(|(_, t)| *t == Some(&Throttle::No))).then_some(Throttle::No)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake root: files written under a temporary folder.
    struct Tree(tempfile::TempDir);

    impl Tree {
        fn new() -> Self {
            Tree(tempfile::tempdir().unwrap())
        }

        fn put(&self, rel: &str, text: &str) -> &Self {
            let path = self.0.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
            self
        }

        fn capture(&self) -> MachineState {
            MachineState::capture(self.0.path())
        }
    }

    fn policy(t: &Tree, n: u32, max: u64, hw: u64) {
        let p = format!("{CPUFREQ}/policy{n}");
        t.put(&format!("{p}/scaling_governor"), "schedutil\n")
            .put(&format!("{p}/scaling_cur_freq"), "1500000\n")
            .put(&format!("{p}/scaling_max_freq"), &format!("{max}\n"))
            .put(&format!("{p}/cpuinfo_max_freq"), &format!("{hw}\n"))
            .put(&format!("{p}/affected_cpus"), "0 1 2 3\n");
    }

    #[test]
    fn an_empty_root_records_nothing_and_says_nothing() {
        let t = Tree::new();
        let s = t.capture();
        assert_eq!(
            MachineState {
                capture_us: s.capture_us,
                ..MachineState::default()
            },
            s
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json.as_object().unwrap().len(), 1, "{json}");
        assert_eq!(
            verdict(&s, &s),
            Verdict {
                throttled: None,
                signals: vec![]
            }
        );
        assert_eq!(throttled(&s, &s), None);
    }

    #[test]
    fn reads_cpufreq_policies() {
        let t = Tree::new();
        policy(&t, 0, 1800000, 1800000);
        policy(&t, 4, 2400000, 2400000);
        // A second-digit policy sorts by number, not text.
        policy(&t, 10, 2400000, 2400000);
        let s = t.capture();
        let names: Vec<&str> = s.cpufreq.iter().map(|p| p.policy.as_str()).collect();
        assert_eq!(names, ["policy0", "policy4", "policy10"]);
        let p = &s.cpufreq[0];
        assert_eq!(p.governor, Reading::Known("schedutil".into()));
        assert_eq!(p.cur_khz, Reading::Known(1500000));
        assert_eq!(p.max_khz, Reading::Known(1800000));
        assert_eq!(p.hw_max_khz, Reading::Known(1800000));
        assert_eq!(p.affected_cpus, Reading::Known("0 1 2 3".into()));
        assert!(s.unreadable.is_empty(), "{:?}", s.unreadable);
    }

    #[test]
    fn reads_thermal_zones_and_hwmon_temperatures_in_degrees() {
        let t = Tree::new();
        t.put(&format!("{THERMAL}/thermal_zone0/type"), "cpu-thermal\n")
            .put(&format!("{THERMAL}/thermal_zone0/temp"), "48312\n")
            .put(&format!("{THERMAL}/thermal_zone1/type"), "acpitz\n")
            .put(&format!("{THERMAL}/thermal_zone1/temp"), "-1500\n")
            .put(&format!("{HWMON}/hwmon2/name"), "coretemp\n")
            .put(&format!("{HWMON}/hwmon2/temp1_input"), "61000\n")
            .put(&format!("{HWMON}/hwmon2/temp1_label"), "Package id 0\n")
            .put(&format!("{HWMON}/hwmon2/temp2_input"), "59000\n")
            .put(&format!("{HWMON}/hwmon2/temp2_crit"), "100000\n");
        let s = t.capture();
        assert_eq!(s.thermal_zones.len(), 2);
        assert_eq!(
            s.thermal_zones[0].kind,
            Reading::Known("cpu-thermal".into())
        );
        assert_eq!(s.thermal_zones[0].temp_c, Reading::Known(48.312));
        assert_eq!(s.thermal_zones[1].temp_c, Reading::Known(-1.5));
        assert_eq!(s.hwmon_temps.len(), 2, "{:?}", s.hwmon_temps);
        let h = &s.hwmon_temps[0];
        assert_eq!(h.input, "hwmon2/temp1");
        assert_eq!(h.name, Reading::Known("coretemp".into()));
        assert_eq!(h.label, Reading::Known("Package id 0".into()));
        assert_eq!(h.temp_c, Reading::Known(61.0));
        // No label file: not recorded.
        assert_eq!(s.hwmon_temps[1].label, Reading::Absent);
        let json = serde_json::to_value(&s.hwmon_temps[1]).unwrap();
        assert!(json.get("label").is_none(), "{json}");
    }

    #[test]
    fn a_malformed_or_unreadable_file_is_unknown_not_guessed() {
        let t = Tree::new();
        t.put(&format!("{THERMAL}/thermal_zone0/type"), "x86_pkg_temp\n")
            .put(&format!("{THERMAL}/thermal_zone0/temp"), "hot\n");
        // A folder where a file should be: it exists but cannot be read.
        std::fs::create_dir_all(
            t.0.path()
                .join(format!("{CPUFREQ}/policy0/scaling_cur_freq")),
        )
        .unwrap();
        let s = t.capture();
        assert_eq!(s.thermal_zones[0].temp_c, Reading::Unknown);
        assert_eq!(s.cpufreq[0].cur_khz, Reading::Unknown);
        assert_eq!(s.cpufreq[0].governor, Reading::Absent);
        assert_eq!(s.unreadable.len(), 2, "{:?}", s.unreadable);
        assert!(
            s.unreadable[1].contains("cannot parse \"hot\""),
            "{:?}",
            s.unreadable
        );
        // Unknown is null in JSON, absent is left out, and both read back as they were.
        let json = serde_json::to_value(&s).unwrap();
        assert!(json["thermal_zones"][0]["temp_c"].is_null(), "{json}");
        assert!(json["cpufreq"][0].get("governor").is_none(), "{json}");
        let back: MachineState = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn reads_the_jetson_power_mode_and_its_name() {
        let t = Tree::new();
        t.put(NVPMODEL_STATUS, "pmode:0002\nfmode:quiet\n").put(
            NVPMODEL_CONF,
            "# a comment < POWER_MODEL ID=2 NAME=WRONG >\n\
             < PARAM TYPE=FILE NAME=CPU_ONLINE >\nCORE_0 /sys/devices/system/cpu/cpu0/online\n\
             < POWER_MODEL ID=0 NAME=15W >\nCPU_ONLINE CORE_0 1\n\
             < POWER_MODEL ID=2 NAME=MAXN_SUPER >\nCPU_ONLINE CORE_0 1\n\
             < PM_CONFIG DEFAULT=2 >\n",
        );
        let m = t.capture().nvpmodel.unwrap();
        assert_eq!(m.id, Reading::Known(2));
        assert_eq!(m.name, Reading::Known("MAXN_SUPER".into()));

        // A mode the file does not name is unknown; no file at all, not recorded.
        t.put(NVPMODEL_STATUS, "pmode:0007\n");
        assert_eq!(t.capture().nvpmodel.unwrap().name, Reading::Unknown);
        std::fs::remove_file(t.0.path().join(NVPMODEL_CONF)).unwrap();
        assert_eq!(t.capture().nvpmodel.unwrap().name, Reading::Absent);
        t.put(NVPMODEL_STATUS, "garbage\n");
        assert_eq!(t.capture().nvpmodel.unwrap().id, Reading::Unknown);
    }

    #[test]
    fn reads_the_pi_firmware_flags_as_hex() {
        let t = Tree::new();
        t.put(RPI_THROTTLED, "50005\n");
        assert_eq!(t.capture().rpi_throttled, Reading::Known(0x50005));
        t.put(RPI_THROTTLED, "0\n");
        assert_eq!(t.capture().rpi_throttled, Reading::Known(0));
        t.put(RPI_THROTTLED, "zz\n");
        assert_eq!(t.capture().rpi_throttled, Reading::Unknown);
    }

    fn with_counts(core: u64, package: u64) -> Tree {
        let t = Tree::new();
        for cpu in 0..2 {
            let d = format!("{CPUS}/cpu{cpu}/thermal_throttle");
            t.put(&format!("{d}/core_throttle_count"), &format!("{core}\n"))
                .put(
                    &format!("{d}/package_throttle_count"),
                    &format!("{package}\n"),
                );
        }
        // A folder that is not a CPU is not counted.
        t.put(&format!("{CPUS}/cpufreq/boost"), "1\n");
        t
    }

    #[test]
    fn intel_throttle_counts_that_grow_flag_the_window() {
        let start = with_counts(3, 10).capture();
        let counts = start.throttle_counts.as_ref().unwrap();
        assert_eq!(
            (counts.cpus, &counts.core, &counts.package),
            (2, &Reading::Known(6), &Reading::Known(20))
        );
        assert_eq!(
            verdict(&start, &start),
            Verdict {
                throttled: Some(Throttle::No),
                signals: vec!["thermal_throttle counts".into()]
            }
        );
        let end = with_counts(3, 11).capture();
        assert_eq!(
            throttled(&start, &end).as_deref(),
            Some("package throttle count +2")
        );
    }

    #[test]
    fn pi_flags_now_at_either_end_or_newly_set_since_boot_flag_the_window() {
        let pi = |flags: &str| {
            let t = Tree::new();
            t.put(RPI_THROTTLED, flags);
            t.capture()
        };
        let (clean, old_history) = (pi("0"), pi("50000"));
        assert_eq!(verdict(&clean, &clean).throttled, Some(Throttle::No));
        // Sticky bits set before the window say nothing about it.
        assert_eq!(
            verdict(&old_history, &old_history).throttled,
            Some(Throttle::No)
        );
        assert_eq!(
            throttled(&clean, &pi("40000")).as_deref(),
            Some("Pi throttling occurred")
        );
        assert_eq!(
            throttled(&pi("4"), &clean).as_deref(),
            Some("Pi throttled at start")
        );
        assert_eq!(
            throttled(&old_history, &pi("50003")).as_deref(),
            Some("Pi under-voltage at end; Pi ARM frequency capped at end")
        );
        assert_eq!(
            throttled(&pi("8"), &pi("80008")).as_deref(),
            Some("Pi soft temperature limit active at start and end; Pi soft temperature limit occurred")
        );
    }

    fn cooling(kind: &str, state: u64) -> MachineState {
        let t = Tree::new();
        t.put(&format!("{THERMAL}/cooling_device0/type"), "Fan\n")
            .put(&format!("{THERMAL}/cooling_device0/cur_state"), "3\n")
            .put(
                &format!("{THERMAL}/cooling_device1/type"),
                &format!("{kind}\n"),
            )
            .put(
                &format!("{THERMAL}/cooling_device1/cur_state"),
                &format!("{state}\n"),
            );
        t.capture()
    }

    #[test]
    fn a_cpu_cooling_device_above_state_0_flags_the_window() {
        for kind in ["Processor", "cpufreq-cpu0"] {
            let (idle, holding) = (cooling(kind, 0), cooling(kind, 2));
            // A fan at any speed is not throttling.
            assert_eq!(verdict(&idle, &idle).throttled, Some(Throttle::No));
            assert_eq!(
                throttled(&idle, &holding),
                Some(format!("cooling_device1 ({kind}) at state 2 at end"))
            );
            assert_eq!(
                throttled(&holding, &holding),
                Some(format!(
                    "cooling_device1 ({kind}) at state 2 at start and end"
                ))
            );
            assert_eq!(
                throttled(&holding, &cooling(kind, 1)),
                Some(format!(
                    "cooling_device1 ({kind}) at state 2 at start; \
                     cooling_device1 ({kind}) at state 1 at end"
                ))
            );
        }
        // Fans alone are no signal.
        let fan = cooling("Fan", 0);
        assert_eq!(verdict(&fan, &fan).throttled, None);
    }

    #[test]
    fn a_cpufreq_ceiling_that_drops_during_the_window_flags_it() {
        let state = |max: u64| {
            let t = Tree::new();
            policy(&t, 0, max, 2400000);
            t.capture()
        };
        let (full, capped) = (state(2400000), state(1200000));
        assert_eq!(
            verdict(&full, &full),
            Verdict {
                throttled: Some(Throttle::No),
                signals: vec!["cpufreq ceilings".into()]
            }
        );
        assert_eq!(
            throttled(&full, &capped).as_deref(),
            Some("policy0 capped to 1200 of 2400 MHz")
        );
        // A ceiling set low before the window (by hand, or a power profile) is not a throttle.
        assert_eq!(verdict(&capped, &capped).throttled, Some(Throttle::No));
    }

    #[test]
    fn throttle_verdicts_read_back_and_combine_over_repetitions() {
        for t in [Throttle::No, Throttle::Yes("Pi throttled at end".into())] {
            assert_eq!(t.to_string().parse::<Throttle>(), Ok(t));
        }
        assert!("maybe".parse::<Throttle>().is_err());
        let yes = Throttle::Yes("x".into());
        assert_eq!(
            combine([(1, Some(&Throttle::No)), (2, Some(&yes))]),
            Some(Throttle::Yes("1 of 2 repetitions (repetition 2: x)".into()))
        );
        assert_eq!(
            combine([(1, Some(&Throttle::No)), (2, Some(&Throttle::No))]),
            Some(Throttle::No)
        );
        assert_eq!(combine([(1, Some(&Throttle::No)), (2, None)]), None);
    }

    /// Mean time of one capture under `root`, microseconds, and the last state.
    fn timed_capture(root: &Path) -> (f64, MachineState) {
        let _ = MachineState::capture(root);
        let n = 50;
        let began = Instant::now();
        let mut s = MachineState::default();
        for _ in 0..n {
            s = MachineState::capture(root);
        }
        (began.elapsed().as_secs_f64() * 1e6 / n as f64, s)
    }

    /// What one capture costs, on the machine running the tests and on a tree shaped like an
    /// 8-core Intel desktop's (`--nocapture` prints both).
    #[test]
    fn capture_is_cheap() {
        let desktop = Tree::new();
        for n in 0..8 {
            policy(&desktop, n, 4700000, 4700000);
            let d = format!("{CPUS}/cpu{n}/thermal_throttle");
            desktop
                .put(&format!("{d}/core_throttle_count"), "0\n")
                .put(&format!("{d}/package_throttle_count"), "0\n")
                .put(&format!("{THERMAL}/cooling_device{n}/type"), "Processor\n")
                .put(&format!("{THERMAL}/cooling_device{n}/cur_state"), "0\n")
                .put(&format!("{HWMON}/hwmon3/temp{}_input", n + 1), "55000\n")
                .put(&format!("{HWMON}/hwmon3/temp{}_label", n + 1), "Core\n");
        }
        desktop.put(&format!("{HWMON}/hwmon3/name"), "coretemp\n");
        for z in 0..3 {
            desktop
                .put(&format!("{THERMAL}/thermal_zone{z}/type"), "acpitz\n")
                .put(&format!("{THERMAL}/thermal_zone{z}/temp"), "40000\n");
        }
        for (what, root) in [
            ("this machine", root()),
            ("an 8-core desktop's tree", desktop.0.path().into()),
        ] {
            let (each_us, s) = timed_capture(&root);
            eprintln!(
                "machine state capture of {what} ({}): {each_us:.0} µs ({} policies, {} zones, \
                 {} hwmon inputs, {} cooling devices, throttle counters: {})",
                root.display(),
                s.cpufreq.len(),
                s.thermal_zones.len(),
                s.hwmon_temps.len(),
                s.cooling_devices.len(),
                s.throttle_counts.is_some()
            );
            // Well under a settle period, even on a slow board.
            assert!(each_us < 50_000.0, "{each_us} µs");
        }
    }
}
