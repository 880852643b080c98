//! An INA219's settings from its rig table: range, calibration, ADC modes and what they make
//! of a reading's resolution and timing; the shunt correction's checks; ranging arithmetic.

use std::fmt::Debug;
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Result};
use ina219::calibration::{IntCalibration, MicroAmpere};
use ina219::configuration::{
    BusVoltageRange, Configuration, MeasuredSignals, OperatingMode, Reset, Resolution,
    ShuntVoltageRange,
};

use super::*;

/// Full-scale count of the signed current register: current LSB = max current / 2^15.
pub(super) const CURRENT_FULL_SCALE: f64 = 32768.0;

/// The `shunt_correction`s accepted: a chip reading up to 25 % high or 20 % low (the same
/// ratio, 1/0.8 = 1.25, either way). A 1 % shunt, the chip's ±0.5 % gain error and a few
/// milliohms of solder or trace beside a 0.1 Ω shunt add up to a few percent; a current that
/// far off its reference is a fault (a wrong `shunt_ohms`, a reference not in series, a second
/// path around the shunt), which a correction would only hide.
pub const SHUNT_CORRECTION_BAND: std::ops::RangeInclusive<f64> = 0.8..=1.25;

/// Largest `reference_uncertainty_pct`, as for `shunt_tolerance_pct`.
pub(super) const MAX_REFERENCE_UNCERTAINTY_PCT: f64 = 20.0;

impl Ina219Spec {
    /// The checks of a chip's table that serde cannot make: its address, shunt, ranges, bus
    /// speed, correction and injected faults, as one line naming the key.
    pub fn validate(&self) -> Result<(), String> {
        if !(0x40..=0x4F).contains(&self.address) {
            return Err(format!(
                "address {:#04x} is not an INA219 address (0x40 to 0x4f)",
                self.address
            ));
        }
        for (key, value) in [
            ("shunt_ohms", self.shunt_ohms),
            ("max_current_a", self.max_current_a),
        ] {
            if !(value > 0.0 && value.is_finite()) {
                return Err(format!("{key} must be positive, not {value}"));
            }
        }
        if !(0.0..=100.0).contains(&self.shunt_tolerance_pct) {
            return Err(format!(
                "shunt_tolerance_pct must be 0 to 100 percent, not {}",
                self.shunt_tolerance_pct
            ));
        }
        if ![16, 32].contains(&self.bus_range_v) {
            return Err("bus_range_v must be 16 or 32".into());
        }
        if let Some(mv) = self.shunt_range_mv {
            if ![40, 80, 160, 320].contains(&mv) {
                return Err("shunt_range_mv must be 40, 80, 160 or 320".into());
            }
            check_range_holds(self.max_current_a, self.shunt_ohms, mv)?;
        }
        if ![100, 400].contains(&self.bus_khz) {
            return Err(format!(
                "bus_khz must be 100 or 400 (the INA219's I2C standard and fast modes), not {}",
                self.bus_khz
            ));
        }
        if let Some(faults) = &self.faults {
            faults.validate()?;
        }
        check_correction(self)
    }
}

/// The shunt voltage `max_a` makes across `ohms`, in mV, less a slack that keeps 0.4 A ×
/// 0.1 Ω (40.000000000000007 mV in floating point) in 40 mV: what a PGA range must hold.
fn full_scale_mv(max_a: f64, ohms: f64) -> f64 {
    max_a * ohms * 1e3 - 1e-9
}

/// Refuses a `shunt_range_mv` that cannot hold `max_current_a` across `shunt_ohms`: every
/// reading above the range's current would clip at its edge, saturated, and leave the window
/// invalid, so the rig is refused before it measures. The range is sized on the shunt as
/// stated, as [`Ina219Settings::from_spec`] sizes it.
fn check_range_holds(max_a: f64, ohms: f64, mv: u16) -> Result<(), String> {
    let needed = full_scale_mv(max_a, ohms);
    if needed <= f64::from(mv) {
        return Ok(());
    }
    // Figures as a reader writes them: 320, not 320.00000000000006.
    let shown = |x: f64| (x * 1e6).round() / 1e6;
    let fix = match PGA_RANGES.iter().find(|r| needed <= f64::from(r.0)) {
        Some((fits, _)) => {
            format!("set shunt_range_mv = {fits} or leave it out, or use a smaller shunt")
        }
        None => "use a smaller shunt (no range holds more than 320 mV)".into(),
    };
    Err(format!(
        "max_current_a = {max_a} A through shunt_ohms = {ohms} Ω is {} mV, beyond shunt_range_mv \
         = {mv} (a current above {} A would read clipped): {fix}",
        shown(max_a * ohms * 1e3),
        shown(f64::from(mv) / 1e3 / ohms)
    ))
}

/// Checks `shunt_correction` and `reference_uncertainty_pct`; the error is one line naming
/// the key.
pub fn check_correction(spec: &Ina219Spec) -> Result<(), String> {
    if let Some(f) = spec.shunt_correction {
        if !(f.is_finite() && SHUNT_CORRECTION_BAND.contains(&f)) {
            return Err(format!(
                "shunt_correction must be between {} and {}, not {f}: a current that far off \
                 its reference is a wiring fault, not a shunt's tolerance",
                SHUNT_CORRECTION_BAND.start(),
                SHUNT_CORRECTION_BAND.end()
            ));
        }
    }
    match (spec.reference_uncertainty_pct, spec.shunt_correction) {
        (Some(_), None) => Err(
            "reference_uncertainty_pct needs shunt_correction (joulebench \
             calibrate writes both)"
                .into(),
        ),
        (Some(p), Some(_)) if !(p > 0.0 && p <= MAX_REFERENCE_UNCERTAINTY_PCT) => Err(format!(
            "reference_uncertainty_pct must be above 0 and at most \
             {MAX_REFERENCE_UNCERTAINTY_PCT}, not {p}"
        )),
        _ => Ok(()),
    }
}

/// Shunt ranges the PGA offers, smallest first.
pub(super) const PGA_RANGES: [(u16, ShuntVoltageRange); 4] = [
    (40, ShuntVoltageRange::Fsr40mv),
    (80, ShuntVoltageRange::Fsr80mv),
    (160, ShuntVoltageRange::Fsr160mv),
    (320, ShuntVoltageRange::Fsr320mv),
];

/// Register pointers the driver reads itself (the crate has no public read for them).
pub(super) const CONFIG_REGISTER: u8 = 0x00;
pub(super) const CALIBRATION_REGISTER: u8 = 0x05;

/// Clock cycles one register read takes on the wire: the pointer written (START, address,
/// pointer: 1 + 9 + 9 with the ACK bits), two bytes read back (repeated START, address, two
/// bytes: 1 + 9 + 18), STOP (1).
pub const REGISTER_READ_CYCLES: u32 = 48;

/// Register reads per fresh reading: bus voltage (for CNVR and OVF), power, shunt, current.
pub const READS_PER_READING: u32 = 4;

/// A shunt voltage worth at least this many current LSBs, beside a current register reading 0,
/// means the calibration is gone: the chip has reset.
pub(super) const RESET_HINT_LSB: i64 = 4;

/// The share of an update period the shunt must be converting for the chip to count as
/// integrating the current ([`PowerSensor::integrates`]): the default avg64 shunt with a
/// 12-bit bus converts 98.5 % of the time; unaveraged 12-bit conversions fetched over a
/// 100 kHz bus, 28 %.
pub(super) const INTEGRATING_SHARE: f64 = 0.9;

/// Sensor time between checks of the calibration and configuration, which catch a reset that no
/// current would reveal.
pub(super) const CHECK_EVERY_S: f64 = 1.0;

/// The chip settings a rig's `Ina219Spec` asks for, derived as the datasheet's programming
/// section does (SBOS448G 8.5.1): calibration, PGA and bus ranges, ADC mode.
#[derive(Debug, Clone, PartialEq)]
pub struct Ina219Settings {
    /// 7-bit I2C address.
    pub address: u8,
    /// Where the chip sits, as error messages name it ("/dev/i2c-1").
    pub bus: String,
    /// The shunt as the rig states it.
    pub shunt_ohms: f64,
    /// `shunt_correction` (1 when there is none): the shunt really is `shunt_ohms / this`.
    pub shunt_correction: f64,
    /// Current LSB (whole µA) and shunt (µΩ, corrected); the register value is
    /// trunc(0.04096 / (LSB × R)) with bit 0 cleared.
    pub calibration: IntCalibration,
    /// Written after the reset: ranges, ADC mode, shunt and bus continuous.
    pub config: Configuration,
    /// ADC modes of the shunt and the bus channel.
    pub adc: AdcMode,
    pub bus_adc: AdcMode,
    /// The I2C clock: it bounds how often a fresh reading can be fetched.
    pub bus_khz: u32,
    /// The shunt's tolerance, as a fraction.
    pub shunt_tolerance: f64,
    /// The uncertainty of the reference the correction came from, as a fraction; None when
    /// the rig has no correction with a stated reference.
    pub reference_uncertainty: Option<f64>,
    /// INA219s the sampler reads on this bus (1 unless the rig has several on it): they take
    /// turns on the wire, so each gets a share of its time.
    pub chips_on_bus: u32,
}

/// Why no calibration register fits `max_a` on `ohms`, naming the key that is wrong. The
/// register (2..65535) and the ±320 mV range allow a `max_current_a` of about 0.0205 / R to
/// 0.32 / R amps; where that span holds no supply's current (10 mA to 100 A), the shunt is
/// wrong, not the current.
fn range_advice(max_a: f64, ohms: f64, lsb_ua: f64) -> anyhow::Error {
    let (low, high) = (CURRENT_FULL_SCALE * 0.04096 / (65535.0 * ohms), 0.32 / ohms);
    if high < 0.01 || low > 100.0 {
        return anyhow!(
            "INA219: shunt_ohms = {ohms} Ω is no shunt an INA219 measures a supply with (it \
             would need a max_current_a of {low:.3e} to {high:.3e} A): check shunt_ohms (a \
             breakout's shunt is 0.1 Ω; docs/src/guide/raspberry-pi.md, Choosing a shunt)"
        );
    }
    anyhow!(
        "INA219: max_current_a {max_a} A on a {ohms} Ω shunt needs a calibration register \
         outside 2..65535 (current LSB {lsb_ua} µA): on this shunt max_current_a must be between \
         {low:.3} and {high:.3} A"
    )
}

/// The calibration register for `max_a` on a shunt of `ohms` (corrected): the current LSB
/// that puts `max_a` at the register's full scale, rounded to whole µA, or why none fits.
fn calibration_for(max_a: f64, ohms: f64) -> Result<IntCalibration> {
    let lsb_ua = round_lsb_ua(max_a * 1e6 / CURRENT_FULL_SCALE);
    let shunt_uohm = (ohms * 1e6).round();
    (shunt_uohm <= f64::from(u32::MAX))
        .then(|| IntCalibration::new(MicroAmpere(lsb_ua as i64), shunt_uohm as u32))
        .flatten()
        .ok_or_else(|| range_advice(max_a, ohms, lsb_ua))
}

/// The PGA range: the rig's `shunt_range_mv`, else the smallest that holds `max_current_a`.
/// It is sized on the shunt as stated, as the rig's author sized it: a correction of a few
/// percent must not push 3.2 A on 0.1 Ω past ±320 mV and refuse the rig; a current beyond the
/// range is still caught, as saturated readings.
fn shunt_voltage_range(spec: &Ina219Spec) -> Result<ShuntVoltageRange> {
    let (max_a, stated_ohms) = (spec.max_current_a, spec.shunt_ohms);
    let shunt_mv = full_scale_mv(max_a, stated_ohms);
    match spec.shunt_range_mv {
        Some(mv) => PGA_RANGES
            .iter()
            .find(|r| r.0 == mv)
            .map(|r| r.1)
            .ok_or_else(|| anyhow!("INA219: shunt_range_mv must be 40, 80, 160 or 320, not {mv}")),
        None => PGA_RANGES
            .iter()
            .find(|r| shunt_mv <= f64::from(r.0))
            .map(|r| r.1)
            .ok_or_else(|| {
                anyhow!(
                    "INA219: {max_a} A through {stated_ohms} Ω is {shunt_mv:.0} mV, beyond the \
                     ±320 mV shunt range; use a smaller shunt or a lower max_current_a"
                )
            }),
    }
}

impl Ina219Settings {
    /// Derives the settings; `bus` names the bus in error messages.
    ///
    /// A `shunt_correction` f is applied as the datasheet's calibration procedure does
    /// (SBOS448G 8.5.1, Corrected_Full_Scale_Cal = trunc(Cal × MeasShuntCurrent /
    /// INA219_Current)): every figure takes the shunt to be `shunt_ohms / f`, so the
    /// calibration register (about Cal × f), the current and power registers that follow
    /// from it, and the current computed from the raw shunt voltage all agree.
    pub fn from_spec(spec: &Ina219Spec, bus: impl Into<String>) -> Result<Self> {
        check_correction(spec).map_err(|e| anyhow!("INA219: {e}"))?;
        let correction = spec.shunt_correction.unwrap_or(1.0);
        let max_a = spec.max_current_a;
        let ohms = spec.shunt_ohms / correction;
        ensure!(
            max_a > 0.0 && max_a.is_finite() && ohms > 0.0 && ohms.is_finite(),
            "INA219: max_current_a and shunt_ohms must be positive"
        );
        ensure!(
            (0.0..=20.0).contains(&spec.shunt_tolerance_pct),
            "INA219: shunt_tolerance_pct must be between 0 and 20, not {}",
            spec.shunt_tolerance_pct
        );
        ensure!(
            [100, 400].contains(&spec.bus_khz),
            "INA219: bus_khz must be 100 or 400, not {}",
            spec.bus_khz
        );
        let calibration = calibration_for(max_a, ohms)?;
        let shunt_voltage_range = shunt_voltage_range(spec)?;
        let bus_voltage_range = match spec.bus_range_v {
            16 => BusVoltageRange::Fsr16v,
            32 => BusVoltageRange::Fsr32v,
            v => bail!("INA219: bus_range_v must be 16 or 32, not {v}"),
        };

        Ok(Self {
            address: spec.address,
            bus: bus.into(),
            shunt_ohms: spec.shunt_ohms,
            shunt_correction: correction,
            calibration,
            config: Configuration {
                reset: Reset::Run,
                bus_voltage_range,
                shunt_voltage_range,
                bus_resolution: resolution(spec.bus_adc),
                shunt_resolution: resolution(spec.adc),
                operating_mode: OperatingMode::Continous(MeasuredSignals::ShutAndBusVoltage),
            },
            adc: spec.adc,
            bus_adc: spec.bus_adc,
            bus_khz: spec.bus_khz,
            shunt_tolerance: spec.shunt_tolerance_pct / 100.0,
            reference_uncertainty: spec
                .shunt_correction
                .and(spec.reference_uncertainty_pct)
                .map(|pct| pct / 100.0),
            chips_on_bus: 1,
        })
    }

    /// The shunt the chip really has, as far as the rig knows: `shunt_ohms / shunt_correction`.
    pub fn effective_shunt_ohms(&self) -> f64 {
        self.shunt_ohms / self.shunt_correction
    }

    /// The calibration register without the correction (as `joulebench calibrate` starts);
    /// None where the uncorrected shunt would not fit the register.
    pub fn uncorrected_calibration(&self) -> Option<u16> {
        let uohm = (self.shunt_ohms * 1e6).round();
        (uohm <= f64::from(u32::MAX))
            .then(|| IntCalibration::new(self.calibration.current_lsb(), uohm as u32))
            .flatten()
            .map(IntCalibration::as_bits)
    }

    pub fn current_lsb_a(&self) -> f64 {
        self.calibration.current_lsb().0 as f64 * 1e-6
    }

    /// 20 × the current LSB (datasheet equation 3).
    pub fn power_lsb_w(&self) -> f64 {
        self.calibration.power_lsb().0 as f64 * 1e-6
    }

    /// Time between conversions: a shunt conversion then a bus conversion.
    pub fn conversion_time(&self) -> Duration {
        let c = &self.config;
        let us = c.shunt_resolution.conversion_time_us() + c.bus_resolution.conversion_time_us();
        Duration::from_micros(u64::from(us))
    }

    /// Bus time of one fresh reading's register reads at `bus_khz`: 1.92 ms at 100 kHz,
    /// 0.48 ms at 400 kHz.
    pub fn reading_bus_time(&self) -> Duration {
        let cycles = u64::from(READS_PER_READING * REGISTER_READ_CYCLES);
        Duration::from_nanos(cycles * 1_000_000 / u64::from(self.bus_khz.max(1)))
    }

    /// Time between fresh readings: a conversion, or the bus time to fetch one for every chip
    /// on the bus if that is longer (12-bit at 100 kHz: 1.92 ms, not 1.064 ms; two chips
    /// sharing that bus: 3.84 ms each).
    pub fn update_period(&self) -> Duration {
        self.conversion_time()
            .max(self.reading_bus_time() * self.chips_on_bus.max(1))
    }

    /// Relative uncertainty of energy from this chip: the INA219A's current error (±0.5 %
    /// at 25 °C, datasheet maximum), its bus voltage error (±0.5 %) and the shunt's
    /// tolerance, independent, so added as a root sum of squares (1.22 % with a 1 % shunt).
    /// A calibrated chip uses its reference's uncertainty instead of the shunt's tolerance:
    /// the calibration measured this very shunt, so what is left of its error is how far the
    /// reference can be off. The chip's own terms stay, conservatively: the calibration took
    /// out its gain error at one current and temperature only.
    pub fn energy_uncertainty(&self) -> f64 {
        const CURRENT: f64 = 0.005;
        const BUS_VOLTAGE: f64 = 0.005;
        let shunt = self.reference_uncertainty.unwrap_or(self.shunt_tolerance);
        (CURRENT.powi(2) + BUS_VOLTAGE.powi(2) + shunt.powi(2)).sqrt()
    }

    /// Fresh readings per second at most.
    pub fn readings_per_s(&self) -> f64 {
        1.0 / self.update_period().as_secs_f64()
    }

    /// Seconds from the middle of what a fresh reading averages to when it became readable.
    /// A conversion does the shunt channel, then the bus channel, then sets CNVR. Power is
    /// current × voltage, and the current (from the shunt) is what moves with the load; the
    /// bus voltage barely does. So the value belongs to the middle of the shunt window, which
    /// ended a whole bus conversion before CNVR: bus time + half the shunt time (avg128:
    /// 68.1 + 34.05 ms).
    pub fn centre_offset_s(&self) -> f64 {
        let c = &self.config;
        let us = f64::from(c.bus_resolution.conversion_time_us())
            + f64::from(c.shunt_resolution.conversion_time_us()) / 2.0;
        us * 1e-6
    }

    /// Fresh readings between checks of calibration and configuration: about a second's worth.
    pub(super) fn check_every(&self) -> u32 {
        (CHECK_EVERY_S / self.update_period().as_secs_f64())
            .ceil()
            .max(1.0) as u32
    }

    /// One line, e.g. "R=0.1 Ω, I_LSB=100 µA, cal=4096, PGA ±320 mV, 32 V, 12bit"; with a
    /// correction, "cal=4054 (4096 corrected ×0.990099)".
    pub fn summary(&self) -> String {
        let calibration = match self.uncorrected_calibration() {
            _ if self.shunt_correction == 1.0 => self.calibration.as_bits().to_string(),
            Some(plain) => format!(
                "{} ({plain} corrected ×{})",
                self.calibration.as_bits(),
                self.shunt_correction
            ),
            None => format!(
                "{} (corrected ×{})",
                self.calibration.as_bits(),
                self.shunt_correction
            ),
        };
        format!(
            "R={} Ω, I_LSB={}, cal={calibration}, PGA ±{} mV, {} V, {}",
            self.shunt_ohms,
            self.calibration.current_lsb(),
            self.config.shunt_voltage_range.range_mv().end(),
            self.config.bus_voltage_range.range_v().end,
            adc_summary(self.adc, self.bus_adc),
        )
    }

    /// The PGA range in mV.
    pub fn shunt_range_mv(&self) -> u16 {
        self.config
            .shunt_voltage_range
            .range_mv()
            .end()
            .unsigned_abs()
    }

    /// The shunt voltage's nominal full scale in 10 µV units (4000 at ±40 mV).
    pub(super) fn shunt_full_scale_10uv(&self) -> i16 {
        self.config.shunt_voltage_range.range_mv().end() * 100
    }
}

pub(super) fn resolution(adc: AdcMode) -> Resolution {
    match adc {
        AdcMode::Bits9 => Resolution::Res9Bit,
        AdcMode::Bits10 => Resolution::Res10Bit,
        AdcMode::Bits11 => Resolution::Res11Bit,
        AdcMode::Bits12 => Resolution::Res12Bit,
        AdcMode::Avg2 => Resolution::Avg2,
        AdcMode::Avg4 => Resolution::Avg4,
        AdcMode::Avg8 => Resolution::Avg8,
        AdcMode::Avg16 => Resolution::Avg16,
        AdcMode::Avg32 => Resolution::Avg32,
        AdcMode::Avg64 => Resolution::Avg64,
        AdcMode::Avg128 => Resolution::Avg128,
    }
}

/// "12bit" where both channels share a mode, else "avg64, bus 12bit".
pub(super) fn adc_summary(shunt: AdcMode, bus: AdcMode) -> String {
    if shunt == bus {
        adc_label(shunt).to_string()
    } else {
        format!("{}, bus {}", adc_label(shunt), adc_label(bus))
    }
}

/// The rig file's spelling of an ADC mode.
pub(super) fn adc_label(adc: AdcMode) -> &'static str {
    match adc {
        AdcMode::Bits9 => "9bit",
        AdcMode::Bits10 => "10bit",
        AdcMode::Bits11 => "11bit",
        AdcMode::Bits12 => "12bit",
        AdcMode::Avg2 => "avg2",
        AdcMode::Avg4 => "avg4",
        AdcMode::Avg8 => "avg8",
        AdcMode::Avg16 => "avg16",
        AdcMode::Avg32 => "avg32",
        AdcMode::Avg64 => "avg64",
        AdcMode::Avg128 => "avg128",
    }
}

/// The current LSB for a minimum LSB in µA: the next step of the 1-2-5 series at or above it,
/// as the datasheet's worked examples do. A round LSB keeps the calibration register and every
/// reading easy to check by hand (3.2 A on 0.1 Ω: 100 µA, calibration 4096), and costs at most
/// a factor 2.5 of resolution, which the 15-bit register has to spare. The 1e-9 slack keeps an
/// exact quotient such as 3.2768 A / 2^15 = 100 µA from moving up a step.
/// `max_current_a` for a measured peak of `amps`, or the least a calibration register can
/// express on this shunt if that is more: the register holds at most 65534 (bit 0 is 0),
/// which bounds the current LSB from below at 0.04096 / (65534 × R), and the LSB is then
/// rounded up to a 1-2-5 step (0.1 Ω: 6.25 µA, so 10 µA, so 0.3277 A).
pub fn ranged_max_current(amps: f64, shunt_ohms: f64) -> f64 {
    let least_lsb_ua = round_lsb_ua(0.04096 / (65534.0 * shunt_ohms) * 1e6);
    amps.max(least_lsb_ua * 1e-6 * CURRENT_FULL_SCALE)
}

pub(super) fn round_lsb_ua(min_ua: f64) -> f64 {
    let decade = 10f64.powf((min_ua - 1e-9).max(1.0).log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|step| step * decade)
        .find(|lsb| *lsb >= min_ua - 1e-9)
        .unwrap_or(10.0 * decade)
}
