//! A register-level model of the TI INA219 (datasheet SBOS448G) on a Linux I2C bus, behind
//! `embedded_hal::i2c::I2c`.
//!
//! The `ina219-sim` sensor is the real [`Ina219Sensor`] driver talking to this model instead of
//! `/dev/i2c-N`, so tests exercise the exact code a board runs: addressing, the register
//! pointer, reset, calibration, the current/power arithmetic and its overflow flag, and the
//! conversion timing that makes fast reads return the same sample again. The analog inputs come
//! from a [`Load`]; time comes from a [`TimeSource`], so tests can step a
//! [`crate::clock::ManualClock`].
//!
//! The bus follows linux-embedded-hal's `I2cdev`: one `transaction` is one I2C_RDWR ioctl with
//! one message per operation, refused as i2c-dev and the chosen adapter driver refuse it
//! ([`I2cAdapter`]), with the errno Linux returns. A timed bus ([`SimBus::timed`]) turns the
//! clock cycles on the wire into time: each message is sampled by the chip at the moment it
//! happens, and the call blocks until the transfer's end. The model is never more forgiving
//! than a board on purpose: a driver bug that only a board would show is the kind this model
//! exists to catch.
//!
//! Not modelled: ADC resolution below 12 bits changes only the conversion time (register LSBs
//! stay 10 µV and 4 mV), there is no ADC noise beyond what the load supplies, and the chip never
//! stretches the clock.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Result;
use embedded_hal::i2c::{ErrorKind, ErrorType, I2c, NoAcknowledgeSource, Operation};

use super::ina219::{BusFault, Ina219Sensor, Ina219Settings};
use super::ina219::{I2cAdapter, Ina219Spec, SimFaultSpec, SimLoadSpec};
use super::load::{Load, SimulatedBoard};
use super::{Origin, SensorContext, SensorInfo};
use crate::clock::{PhaseLog, TimeSource};

/// Register addresses (the pointer register's values).
pub mod reg {
    pub const CONFIG: u8 = 0x00;
    pub const SHUNT: u8 = 0x01;
    pub const BUS: u8 = 0x02;
    pub const POWER: u8 = 0x03;
    pub const CURRENT: u8 = 0x04;
    pub const CALIBRATION: u8 = 0x05;
}

/// Configuration register fields.
pub mod cfg {
    /// Power-on value: 32 V, ±320 mV, 12-bit both channels, shunt and bus continuous.
    pub const RESET_VALUE: u16 = 0x399F;
    /// Writing 1 resets every register; the bit reads back 0.
    pub const RST: u16 = 1 << 15;
    /// Bus range: 0 = 16 V, 1 = 32 V.
    pub const BRNG: u16 = 1 << 13;
    pub const PG_SHIFT: u16 = 11;
    pub const BADC_SHIFT: u16 = 7;
    pub const SADC_SHIFT: u16 = 3;
    pub const ADC_MASK: u16 = 0b1111;
    pub const MODE_MASK: u16 = 0b111;
    /// MODE bit 2: continuous; bits 1 and 0: convert bus, convert shunt. 0b000 is power-down
    /// and 0b100 ADC off.
    pub const MODE_CONTINUOUS: u16 = 0b100;
    pub const MODE_BUS: u16 = 0b010;
    pub const MODE_SHUNT: u16 = 0b001;
}

/// Bus voltage register flags.
pub mod bus_flags {
    /// Conversion ready: set when a conversion completes; cleared by reading the power register
    /// or writing a converting mode to the configuration register.
    pub const CNVR: u16 = 1 << 1;
    /// Math overflow: the last current or power calculation was out of range.
    pub const OVF: u16 = 1 << 0;
}

/// The Linux error numbers an I2C transfer fails with, from `libc`: EINVAL (i2c-dev: no
/// messages, more than 42, or one longer than 8192 bytes), EOPNOTSUPP (the adapter driver
/// cannot do this transfer's shape: a quirk, or i2c-bcm2835's rule), ETIMEDOUT (the adapter
/// gave up waiting), EREMOTEIO (a NACK, as i2c-bcm2835 and i2c-tegra report it).
pub mod errno {
    pub use libc::{EINVAL, EOPNOTSUPP, EREMOTEIO, ETIMEDOUT};
}

/// Most load samples averaged per conversion window: all of them, as the chip does (up to
/// 128), each taken at the middle of its own 12-bit sample's time. Fewer points would make the
/// model alias a load that changes near the conversion rate, which the chip does not.
const MAX_WINDOW_SAMPLES: u32 = 128;

/// i2c-dev's I2C_RDWR_IOCTL_MAX_MSGS: more messages in one I2C_RDWR is EINVAL.
pub const RDWR_MAX_MSGS: usize = 42;
/// i2c-dev refuses a message longer than this (EINVAL).
const RDWR_MAX_LEN: usize = 8192;
/// i2c-tegra's quirks: reads of at most 4 KiB, writes of 4 KiB less its 12-byte packet header.
const TEGRA_MAX_READ: usize = 4096;
const TEGRA_MAX_WRITE: usize = 4096 - 12;

/// How long a hung transfer takes to fail by default: the i2c core gives an adapter that sets
/// no timeout of its own HZ (1 s), which i2c-bcm2835 then waits for.
pub const DEFAULT_TIMEOUT_S: f64 = 1.0;

/// A transfer that begins less than this after the previous one ended starts exactly at that
/// end. This absorbs the model's own inaccuracy, not bus time: the call sleeps until its
/// transfer's end on the run clock, and a loaded machine's sleep overshoots by tens of
/// microseconds, which back-to-back register reads would otherwise add up into a slower bus
/// than the one modelled.
const BACK_TO_BACK_S: f64 = 0.2e-3;

/// One ADC channel's setting (BADC or SADC): how many 12-bit samples it averages and how long a
/// conversion takes. Lower resolutions only shorten the conversion in this model.
fn adc_setting(bits: u16) -> (u32, f64) {
    const SINGLE_US: [f64; 4] = [84.0, 148.0, 276.0, 532.0];
    const AVERAGED_US: [f64; 7] = [
        1_060.0, 2_130.0, 4_260.0, 8_510.0, 17_020.0, 34_050.0, 68_100.0,
    ];
    match bits & cfg::ADC_MASK {
        // 0b0X00..0b0X11: one sample at 9..12 bits (bit 2 is ignored); 0b1000 is 12 bits too.
        b if b & 0b1000 == 0 => (1, SINGLE_US[usize::from(b & 0b11)] / 1e6),
        0b1000 => (1, SINGLE_US[3] / 1e6),
        b => (
            1 << (b & 0b111),
            AVERAGED_US[usize::from(b & 0b111) - 1] / 1e6,
        ),
    }
}

/// The bus a simulated chip sits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimBus {
    /// Which Linux adapter driver decides what reaches the wire.
    pub adapter: I2cAdapter,
    /// SCL in kHz; `None`: transfers take no time (register-level tests only; an
    /// `ina219-sim` rig always has a timed bus).
    pub khz: Option<u32>,
}

impl SimBus {
    /// A bus whose transfers take their time on the wire at `khz`.
    pub fn timed(adapter: I2cAdapter, khz: u32) -> Self {
        Self {
            adapter,
            khz: Some(khz),
        }
    }

    /// Permissive and timeless: for tests of the registers alone.
    pub const INSTANT: SimBus = SimBus {
        adapter: I2cAdapter::Permissive,
        khz: None,
    };

    /// Whether consecutive operations in one direction go out as one message (I2C_M_NOSTART,
    /// which i2cdev sets on them, as embedded-hal's contract asks). i2c-bcm2835 ignores the
    /// flag and starts every message again with its address.
    fn joins_messages(self) -> bool {
        self.adapter != I2cAdapter::Bcm2835
    }

    /// What the kernel refuses before anything reaches the bus: i2c-dev's limits, then the
    /// adapter's quirks (checked by the i2c core) and its driver's own rules.
    fn check_shape(self, ops: &[Operation<'_>]) -> Result<(), SimI2cError> {
        let len = |op: &Operation<'_>| match op {
            Operation::Write(bytes) => bytes.len(),
            Operation::Read(buf) => buf.len(),
        };
        let is_read = |op: &Operation<'_>| matches!(op, Operation::Read(_));
        if ops.is_empty()
            || ops.len() > RDWR_MAX_MSGS
            || ops.iter().any(|op| len(op) > RDWR_MAX_LEN)
        {
            return Err(SimI2cError::new(errno::EINVAL));
        }
        let refused = match self.adapter {
            // i2c-bcm2835: "only one read message supported, has to be last".
            I2cAdapter::Bcm2835 => ops[..ops.len() - 1].iter().any(is_read),
            // I2C_AQ_NO_ZERO_LEN, max_read_len, max_write_len.
            I2cAdapter::Tegra => ops.iter().any(|op| {
                let max = if is_read(op) {
                    TEGRA_MAX_READ
                } else {
                    TEGRA_MAX_WRITE
                };
                len(op) == 0 || len(op) > max
            }),
            I2cAdapter::Permissive => false,
        };
        if refused {
            return Err(SimI2cError::new(errno::EOPNOTSUPP));
        }
        Ok(())
    }

    /// Seconds per SCL cycle (0 on an instant bus).
    fn cycle_s(self) -> f64 {
        self.khz.map_or(0.0, |khz| 1e-3 / f64::from(khz))
    }
}

/// The wire that the chips on one simulated bus share: one transfer at a time, as the adapter
/// lock does on Linux. A transfer that arrives while another is on the wire starts when it
/// ends, so two sensors on one bus slow each other down exactly as on a board.
#[derive(Debug, Clone)]
pub struct SimWire(Arc<Mutex<f64>>);

impl SimWire {
    /// A new, idle wire.
    pub fn new() -> Self {
        Self(Arc::new(Mutex::new(f64::NEG_INFINITY)))
    }

    fn lock(&self) -> MutexGuard<'_, f64> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for SimWire {
    fn default() -> Self {
        Self::new()
    }
}

/// The simulated buses of a run, by name (an `ina219-sim` sensor's `i2c_bus`): chips that name
/// the same bus share its wire.
#[derive(Debug, Clone, Default)]
pub struct SimBuses(Arc<Mutex<std::collections::HashMap<String, SimWire>>>);

impl SimBuses {
    /// The wire of the bus called `name`, created on first use.
    pub fn wire(&self, name: &str) -> SimWire {
        let mut buses = self.0.lock().unwrap_or_else(|e| e.into_inner());
        buses.entry(name.to_string()).or_default().clone()
    }
}

/// What an `ina219-sim` sensor's bus is called when its table names none.
pub const DEFAULT_SIM_BUS: &str = "sim-i2c";

impl fmt::Display for SimBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.khz {
            Some(khz) => write!(f, "a {} bus at {khz} kHz", self.adapter.as_str()),
            None => write!(f, "an untimed {} bus", self.adapter.as_str()),
        }
    }
}

/// A fault the simulated chip injects, to exercise the driver's and sampler's error paths.
/// Times are on the chip's clock (the run clock in a run).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum SimFault {
    /// Once this many transactions have been answered, every further one is NACKed (a chip
    /// that browns out or a wire that comes loose mid-run).
    NackAfterTransactions(u64),
    /// No chip answers at any address (unplugged, or wrong A0/A1).
    Absent,
    /// A brown-out at this time: every register returns to its power-on value (configuration
    /// 0x399F, calibration 0) and conversions restart, so current and power read 0.
    ResetAt(f64),
    /// CNVR never sets, though the registers go on updating: no read is ever fresh.
    CnvrStuck,
    /// The first `transactions` transfers from `at_s` on are NACKed.
    NackBurst { at_s: f64, transactions: u64 },
    /// The first transfer from `at_s` on hangs and fails with ETIMEDOUT after `secs`.
    Timeout { at_s: f64, secs: f64 },
    /// Off the bus during `[from_s, until_s)`, then back power-cycled (in its reset state).
    Vanish { from_s: f64, until_s: f64 },
}

impl SimFault {
    /// The faults a rig's `faults` table asks for.
    pub fn from_spec(spec: &SimFaultSpec) -> Vec<SimFault> {
        let mut faults = Vec::new();
        if let Some(n) = spec.nack_after_transactions {
            faults.push(SimFault::NackAfterTransactions(n));
        }
        if spec.absent {
            faults.push(SimFault::Absent);
        }
        if let Some(t) = spec.reset_at_s {
            faults.push(SimFault::ResetAt(t));
        }
        if spec.cnvr_stuck {
            faults.push(SimFault::CnvrStuck);
        }
        if let Some(b) = spec.nack_burst {
            faults.push(SimFault::NackBurst {
                at_s: b.at_s,
                transactions: b.transactions,
            });
        }
        if let Some(at_s) = spec.timeout_at_s {
            let secs = spec.timeout_ms.map_or(DEFAULT_TIMEOUT_S, |ms| ms * 1e-3);
            faults.push(SimFault::Timeout { at_s, secs });
        }
        if let Some(v) = spec.vanish {
            faults.push(SimFault::Vanish {
                from_s: v.from_s,
                until_s: v.until_s,
            });
        }
        faults
    }
}

/// A failed transfer, as Linux reports it: the errno, and the `embedded_hal` kind the driver
/// sees for it (what linux-embedded-hal gives, with EREMOTEIO read as a NACK, as the driver's
/// `describe_linux` does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimI2cError {
    kind: ErrorKind,
    errno: i32,
}

impl SimI2cError {
    pub fn new(errno: i32) -> Self {
        let kind = match errno {
            errno::EREMOTEIO => ErrorKind::NoAcknowledge(NoAcknowledgeSource::Unknown),
            errno::EINVAL => ErrorKind::Bus,
            _ => ErrorKind::Other,
        };
        Self { kind, errno }
    }

    pub fn errno(&self) -> i32 {
        self.errno
    }
}

/// As linux-embedded-hal prints an errno (nix's `Errno`): "EREMOTEIO: Remote I/O error".
impl fmt::Display for SimI2cError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, text) = match self.errno {
            errno::EINVAL => ("EINVAL", "Invalid argument"),
            errno::EOPNOTSUPP => (
                "EOPNOTSUPP",
                "Operation not supported on transport endpoint",
            ),
            errno::ETIMEDOUT => ("ETIMEDOUT", "Connection timed out"),
            errno::EREMOTEIO => ("EREMOTEIO", "Remote I/O error"),
            n => return write!(f, "errno {n}"),
        };
        write!(f, "{name}: {text}")
    }
}

impl std::error::Error for SimI2cError {}

impl embedded_hal::i2c::Error for SimI2cError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// How the driver describes the simulated bus's errors: as it describes Linux's.
pub fn describe_sim(e: &SimI2cError) -> BusFault {
    BusFault {
        kind: e.kind,
        errno: Some(e.errno),
        text: e.to_string(),
    }
}

/// A simulated INA219 on its own I2C bus.
///
/// A cheap handle: clones share one chip, so a test can keep a clone to inject faults or peek
/// at registers while the driver owns another.
#[derive(Clone)]
pub struct SimulatedIna219 {
    chip: Arc<Mutex<Chip>>,
}

struct Chip {
    address: u8,
    shunt_ohms: f64,
    load: Box<dyn Load>,
    clock: Arc<dyn TimeSource>,
    bus: SimBus,
    /// When the bus is free again: the end of the last transfer of any chip on it.
    wire: SimWire,
    /// Start and end of the last transfer that reached the bus.
    last_transfer: Option<(f64, f64)>,
    faults: Vec<SimFault>,
    /// Power-on resets still to come (brown-outs, returns from a vanish), earliest first.
    pending_resets: Vec<f64>,
    /// Transactions answered so far (for [`SimFault::NackAfterTransactions`]).
    answered: u64,
    /// Where the current message stands, byte by byte.
    message: Message,
    pointer: u8,
    config: u16,
    calibration: u16,
    shunt: i16,
    /// Bus voltage in 4 mV units (bits 15..3 of the bus register).
    bus_4mv: u16,
    current: i16,
    power: u16,
    cnvr: bool,
    ovf: bool,
    /// When the current conversion sequence started (reset or last configuration write).
    started_at: f64,
    /// Conversions completed since `started_at`.
    converted: u64,
}

/// The chip's side of the message in progress.
#[derive(Debug, Clone, Copy)]
enum Message {
    /// Bytes written so far in this message, and the first data byte.
    Write { count: usize, msb: u8 },
    /// The register latched when the read began, and bytes sent so far.
    Read { value: [u8; 2], count: usize },
}

impl SimulatedIna219 {
    /// A chip at 7-bit `address` measuring across `shunt_ohms`, powered on at `clock.now()`, on
    /// a permissive bus that takes no time: for tests of the registers alone.
    pub fn new(
        address: u8,
        shunt_ohms: f64,
        load: Box<dyn Load>,
        clock: Arc<dyn TimeSource>,
    ) -> Self {
        Self::on_bus(address, shunt_ohms, load, clock, SimBus::INSTANT)
    }

    /// A chip alone on `bus`, powered on at `clock.now()`.
    pub fn on_bus(
        address: u8,
        shunt_ohms: f64,
        load: Box<dyn Load>,
        clock: Arc<dyn TimeSource>,
        bus: SimBus,
    ) -> Self {
        Self::on_wire(address, shunt_ohms, load, clock, bus, SimWire::new())
    }

    /// A chip on `bus`, sharing its `wire` with the other chips on it.
    pub fn on_wire(
        address: u8,
        shunt_ohms: f64,
        load: Box<dyn Load>,
        clock: Arc<dyn TimeSource>,
        bus: SimBus,
        wire: SimWire,
    ) -> Self {
        let now = clock.now();
        let mut chip = Chip {
            address,
            shunt_ohms,
            load,
            clock,
            bus,
            wire,
            last_transfer: None,
            faults: Vec::new(),
            pending_resets: Vec::new(),
            answered: 0,
            message: Message::Write { count: 0, msb: 0 },
            pointer: 0,
            config: 0,
            calibration: 0,
            shunt: 0,
            bus_4mv: 0,
            current: 0,
            power: 0,
            cnvr: false,
            ovf: false,
            started_at: now,
            converted: 0,
        };
        chip.reset(now);
        Self {
            chip: Arc::new(Mutex::new(chip)),
        }
    }

    /// Adds a fault; it applies from the next transaction on.
    pub fn inject(&self, fault: SimFault) {
        let mut chip = self.lock();
        match fault {
            SimFault::ResetAt(t) => chip.schedule_reset(t),
            SimFault::Vanish { until_s, .. } => chip.schedule_reset(until_s),
            _ => {}
        }
        chip.faults.push(fault);
    }

    /// Removes every injected fault, and any reset still to come.
    pub fn clear_faults(&self) {
        let mut chip = self.lock();
        chip.faults.clear();
        chip.pending_resets.clear();
    }

    /// Transactions the chip has answered so far.
    pub fn transactions(&self) -> u64 {
        self.lock().answered
    }

    /// The bus the chip is on.
    pub fn bus(&self) -> SimBus {
        self.lock().bus
    }

    /// Start and end (clock seconds) of the last transfer that reached the bus.
    pub fn last_transfer(&self) -> Option<(f64, f64)> {
        self.lock().last_transfer
    }

    /// When the running conversion sequence started (the last reset or configuration write);
    /// conversions complete every conversion time after it.
    pub fn sequence_start(&self) -> f64 {
        self.lock().started_at
    }

    /// A register's current contents, as the next read would return them (conversions and
    /// resets due by now included), without the side effects of a bus read. `None` for an
    /// invalid address.
    pub fn peek(&self, register: u8) -> Option<u16> {
        let mut chip = self.lock();
        let now = chip.clock.now();
        chip.advance(now);
        chip.register(register)
    }

    fn lock(&self) -> MutexGuard<'_, Chip> {
        // A panic elsewhere while holding the lock leaves the registers consistent enough.
        self.chip.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ErrorType for SimulatedIna219 {
    type Error = SimI2cError;
}

impl I2c for SimulatedIna219 {
    /// One I2C_RDWR: the chip sees it as it happens on the wire, then the call blocks until the
    /// transfer's end (outside the lock, so a test's clone can peek meanwhile).
    fn transaction(
        &mut self,
        address: u8,
        operations: &mut [Operation<'_>],
    ) -> Result<(), SimI2cError> {
        let (clock, end, result) = {
            let mut chip = self.lock();
            let (end, result) = chip.transfer(address, operations);
            (chip.clock.clone(), end, result)
        };
        if let Some(end) = end {
            clock.sleep_until(end);
        }
        result
    }
}

/// Clock cycles on the wire since a transfer's start, and the time they take.
struct Wire {
    start: f64,
    cycle_s: f64,
    cycles: u64,
}

impl Wire {
    /// A START or repeated START and the address byte with its ACK bit.
    const START_AND_ADDRESS: u64 = 1 + 9;
    /// Eight bits and the ACK bit.
    const BYTE: u64 = 9;
    const STOP: u64 = 1;

    fn add(&mut self, cycles: u64) -> f64 {
        self.cycles += cycles;
        self.now()
    }

    fn now(&self) -> f64 {
        self.start + self.cycles as f64 * self.cycle_s
    }
}

impl Chip {
    /// Runs one I2C_RDWR. Returns when the transfer ends on the clock (`None`: it never reached
    /// the bus) and how it went.
    fn transfer(
        &mut self,
        address: u8,
        ops: &mut [Operation<'_>],
    ) -> (Option<f64>, Result<(), SimI2cError>) {
        if let Err(e) = self.bus.check_shape(ops) {
            return (None, Err(e)); // Refused in the kernel: nothing happens on the bus.
        }
        // The wire stays locked for the whole transfer, so another chip's transfer cannot start
        // inside this one's time on it.
        let wire_lock = self.wire.clone();
        let mut bus_free_at = wire_lock.lock();
        let now = self.clock.now();
        let start = if self.bus.khz.is_some() && now < *bus_free_at + BACK_TO_BACK_S {
            *bus_free_at
        } else {
            now
        };
        let mut wire = Wire {
            start,
            cycle_s: self.bus.cycle_s(),
            cycles: 0,
        };
        let result = self.run(address, ops, &mut wire);
        let end = match result {
            Err(TransferEnd::TimedOut(secs)) => start + secs,
            _ => wire.add(Wire::STOP),
        };
        *bus_free_at = end;
        self.last_transfer = Some((start, end));
        let result = result.map_err(|e| match e {
            TransferEnd::Nack => SimI2cError::new(errno::EREMOTEIO),
            TransferEnd::TimedOut(_) => SimI2cError::new(errno::ETIMEDOUT),
        });
        (Some(end), result)
    }

    /// The transfer on the wire, message by message, until it completes, is NACKed or hangs.
    fn run(
        &mut self,
        address: u8,
        ops: &mut [Operation<'_>],
        wire: &mut Wire,
    ) -> Result<(), TransferEnd> {
        if let Some(secs) = self.take_timeout(wire.start) {
            return Err(TransferEnd::TimedOut(secs));
        }
        self.advance(wire.start);
        // Whether the chip is there is decided once per transfer: it does not come and go
        // between one message and the next.
        let answering = self.answers(address, wire.start);
        let mut previous_read = None;
        for op in ops.iter_mut() {
            let read = matches!(op, Operation::Read(_));
            if previous_read != Some(read) || !self.bus.joins_messages() {
                // A new message: (repeated) START and the address, which the chip must ACK.
                let t = wire.add(Wire::START_AND_ADDRESS);
                if !answering {
                    return Err(TransferEnd::Nack);
                }
                if previous_read.is_none() {
                    self.answered += 1;
                }
                // Every event on the wire happens after whatever the chip did before it (a
                // conversion, a brown-out): bring the chip to its time first.
                self.advance(t);
                self.begin_message(read);
            }
            previous_read = Some(read);
            match op {
                Operation::Write(bytes) => {
                    for &byte in bytes.iter() {
                        let t = wire.add(Wire::BYTE);
                        self.advance(t);
                        self.write_byte(byte, t)?;
                    }
                }
                Operation::Read(buf) => {
                    for b in buf.iter_mut() {
                        wire.add(Wire::BYTE);
                        *b = self.read_byte();
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether the chip ACKs its address at transfer time `t`; a NACK burst counts down here.
    fn answers(&mut self, address: u8, t: f64) -> bool {
        let answered = self.answered;
        let gone = address != self.address
            || self.faults.iter().any(|f| match *f {
                SimFault::NackAfterTransactions(n) => answered >= n,
                SimFault::Absent => true,
                SimFault::Vanish { from_s, until_s } => from_s <= t && t < until_s,
                _ => false,
            });
        if gone {
            return false;
        }
        for f in &mut self.faults {
            if let SimFault::NackBurst { at_s, transactions } = f {
                if *at_s <= t && *transactions > 0 {
                    *transactions -= 1;
                    return false;
                }
            }
        }
        true
    }

    /// A pending bus hang due by `t`: it is used up by this transfer.
    fn take_timeout(&mut self, t: f64) -> Option<f64> {
        let i = self
            .faults
            .iter()
            .position(|f| matches!(*f, SimFault::Timeout { at_s, .. } if at_s <= t))?;
        match self.faults.remove(i) {
            SimFault::Timeout { secs, .. } => Some(secs),
            _ => None,
        }
    }

    fn schedule_reset(&mut self, t: f64) {
        self.pending_resets.push(t);
        self.pending_resets.sort_by(f64::total_cmp);
    }

    /// Brings the chip to time `t`: resets due by then, then the conversions.
    fn advance(&mut self, t: f64) {
        while let Some(&at) = self.pending_resets.first() {
            if at > t {
                break;
            }
            self.pending_resets.remove(0);
            self.reset(at);
        }
        self.catch_up(t);
    }

    /// The address was ACKed: a read latches the pointed register now (reading the power
    /// register clears CNVR); a write starts with the pointer byte.
    fn begin_message(&mut self, read: bool) {
        self.message = if read {
            let value = self.register(self.pointer).unwrap_or(0).to_be_bytes();
            if self.pointer == reg::POWER {
                self.cnvr = false;
            }
            Message::Read { value, count: 0 }
        } else {
            Message::Write { count: 0, msb: 0 }
        };
    }

    /// One written byte, ACKed at `t` (the chip brought to that time): the pointer, then a
    /// register's MSB and LSB; the register takes the value once its LSB is in. Anything else
    /// is NACKed.
    fn write_byte(&mut self, byte: u8, t: f64) -> Result<(), TransferEnd> {
        let Message::Write { count, msb } = &mut self.message else {
            return Err(TransferEnd::Nack);
        };
        *count += 1;
        match *count {
            // No such register: the chip NACKs the pointer byte.
            1 if byte > reg::CALIBRATION => return Err(TransferEnd::Nack),
            1 => self.pointer = byte,
            2 => *msb = byte,
            3 => {
                let value = u16::from_be_bytes([*msb, byte]);
                match self.pointer {
                    reg::CONFIG => self.write_config(value, t),
                    // Figure 27: bit 0 of the calibration register is not used and reads 0.
                    reg::CALIBRATION => self.calibration = value & !1,
                    _ => {} // Read-only registers ignore writes.
                }
            }
            // More data than one register holds.
            _ => return Err(TransferEnd::Nack),
        }
        Ok(())
    }

    /// Reads return the latched register MSB first; past its two bytes the bus floats high.
    fn read_byte(&mut self) -> u8 {
        let Message::Read { value, count } = &mut self.message else {
            return 0xFF;
        };
        let byte = value.get(*count).copied().unwrap_or(0xFF);
        *count += 1;
        byte
    }

    fn register(&self, register: u8) -> Option<u16> {
        Some(match register {
            reg::CONFIG => self.config,
            reg::SHUNT => self.shunt as u16,
            reg::BUS => {
                let flag = |on, bit| if on { bit } else { 0 };
                (self.bus_4mv << 3)
                    | flag(self.cnvr, bus_flags::CNVR)
                    | flag(self.ovf, bus_flags::OVF)
            }
            reg::POWER => self.power,
            reg::CURRENT => self.current as u16,
            reg::CALIBRATION => self.calibration,
            _ => return None,
        })
    }

    /// Power-on reset: every register to its default, conversions restart.
    fn reset(&mut self, now: f64) {
        self.pointer = 0;
        self.config = cfg::RESET_VALUE;
        self.calibration = 0;
        self.shunt = 0;
        self.bus_4mv = 0;
        self.current = 0;
        self.power = 0;
        self.cnvr = false;
        self.ovf = false;
        self.started_at = now;
        self.converted = 0;
    }

    fn write_config(&mut self, value: u16, now: f64) {
        if value & cfg::RST != 0 {
            return self.reset(now);
        }
        self.config = value;
        if self.mode() & (cfg::MODE_SHUNT | cfg::MODE_BUS) != 0 {
            self.cnvr = false;
        }
        // A configuration write aborts the running conversion and starts a new sequence (and
        // in triggered mode, is the trigger).
        self.started_at = now;
        self.converted = 0;
    }

    fn mode(&self) -> u16 {
        self.config & cfg::MODE_MASK
    }

    /// (samples, seconds) of the shunt and bus channels this mode converts.
    fn channels(&self) -> [Option<(u32, f64)>; 2] {
        let adc = |shift| adc_setting(self.config >> shift);
        let mode = self.mode();
        [
            (mode & cfg::MODE_SHUNT != 0).then(|| adc(cfg::SADC_SHIFT)),
            (mode & cfg::MODE_BUS != 0).then(|| adc(cfg::BADC_SHIFT)),
        ]
    }

    /// Runs the conversions that completed by `now`. Only the latest one is visible in the
    /// registers, so only it is computed.
    fn catch_up(&mut self, now: f64) {
        let period: f64 = self.channels().iter().flatten().map(|c| c.1).sum();
        if period == 0.0 {
            return; // Power-down or ADC off: nothing converts.
        }
        // The tiny slack makes a read exactly at a completion time see that conversion
        // despite rounding; a negative elapsed time saturates to 0 conversions.
        let mut due = ((now - self.started_at) / period + 1e-9).floor() as u64;
        if self.mode() & cfg::MODE_CONTINUOUS == 0 {
            due = due.min(1); // Triggered: one conversion per configuration write.
        }
        if due > self.converted {
            self.converted = due;
            self.convert(self.started_at + (due - 1) as f64 * period);
        }
    }

    /// One conversion starting at `t`: the shunt channel first, then the bus, each the mean
    /// of the load over its window, then the current and power calculation.
    fn convert(&mut self, mut t: f64) {
        let [shunt, bus] = self.channels();
        if let Some((samples, secs)) = shunt {
            let amps = self.window_mean(t, secs, samples, |load, t| load.current_at(t));
            // Beyond the PGA's nominal range the register clips where its data field ends
            // (SBOS448G, shunt voltage register formats: sign bits above SD11..SD0 at ±40 mV
            // up to SD14..SD0 at ±320 mV): 40.95 mV at ±40 mV, 327.67 mV at ±320 mV.
            let pg = (self.config >> cfg::PG_SHIFT) & 0b11;
            let limit = f64::from(4096_u16 << pg);
            let counts = (amps * self.shunt_ohms / 10e-6).round();
            self.shunt = counts.clamp(-limit, limit - 1.0) as i16;
            t += secs;
        }
        if let Some((samples, secs)) = bus {
            let volts = self.window_mean(t, secs, samples, |load, t| {
                let amps = load.current_at(t);
                load.bus_volts_at(t, amps)
            });
            // The bus register's data field: BD12..BD0 at 32 V, BD11..BD0 at 16 V.
            let limit = if self.config & cfg::BRNG != 0 {
                8191
            } else {
                4095
            };
            self.bus_4mv = (volts / 4e-3).round().clamp(0.0, f64::from(limit)) as u16;
        }
        // Datasheet equations 4 and 5; both registers read 0 while the calibration is 0.
        let current = i64::from(self.shunt) * i64::from(self.calibration) / 4096;
        let power = current.abs() * i64::from(self.bus_4mv) / 5000;
        self.ovf = i16::try_from(current).is_err() || u16::try_from(power).is_err();
        self.current = current.clamp(i16::MIN.into(), i16::MAX.into()) as i16;
        self.power = power.min(u16::MAX.into()) as u16;
        self.cnvr = !self.faults.contains(&SimFault::CnvrStuck);
    }

    /// Mean of `f(load, t)` over `[start, start + secs)`, at up to [`MAX_WINDOW_SAMPLES`] window
    /// midpoints.
    fn window_mean(
        &mut self,
        start: f64,
        secs: f64,
        samples: u32,
        mut f: impl FnMut(&mut dyn Load, f64) -> f64,
    ) -> f64 {
        let n = samples.min(MAX_WINDOW_SAMPLES);
        let sum: f64 = (0..n)
            .map(|i| {
                f(
                    self.load.as_mut(),
                    start + secs * (f64::from(i) + 0.5) / f64::from(n),
                )
            })
            .sum();
        sum / f64::from(n)
    }
}

/// Why a transfer stopped early.
#[derive(Debug, Clone, Copy)]
enum TransferEnd {
    /// The chip did not ACK an address or data byte: the adapter sent STOP.
    Nack,
    /// The bus hung; the adapter gave up after this many seconds.
    TimedOut(f64),
}

/// The driver on a simulated chip, describing bus errors as on Linux.
pub fn sensor(
    chip: SimulatedIna219,
    settings: Ina219Settings,
    info: SensorInfo,
) -> Result<Ina219Sensor<SimulatedIna219>> {
    Ina219Sensor::with_describe(chip, settings, info, describe_sim)
}

/// Checks `[sensors.load]` keys that the chip, not the board, uses; one line naming the key.
pub fn check_load(load: &SimLoadSpec) -> Result<(), String> {
    for (key, value, least) in [
        ("supply_volts", load.supply_volts, f64::MIN_POSITIVE),
        ("source_ohms", load.source_ohms, 0.0),
        ("idle_amps", load.idle_amps, 0.0),
        ("active_amps", load.active_amps, 0.0),
        ("noise_amps", load.noise_amps, 0.0),
    ] {
        if !(value >= least && value.is_finite()) {
            let what = if least > 0.0 { "positive" } else { "0 or more" };
            return Err(format!("load.{key} must be {what}, not {value}"));
        }
    }
    match load.actual_shunt_ohms {
        Some(ohms) if !(ohms > 0.0 && ohms.is_finite()) => Err(format!(
            "load.actual_shunt_ohms must be positive, not {ohms}"
        )),
        _ => Ok(()),
    }
}

/// Opens an `ina219-sim` sensor: the real driver on a simulated chip on a timed bus, whose load
/// is a [`SimulatedBoard`] following the run's phases on the run's clock.
pub fn open(
    spec: &Ina219Spec,
    ctx: &SensorContext,
    chips_on_bus: u32,
) -> Result<Ina219Sensor<SimulatedIna219>> {
    open_on(
        spec,
        Arc::new(ctx.clock),
        ctx.phases.clone(),
        ctx.sim_buses.wire(&bus_name(spec)),
        chips_on_bus,
    )
}

/// The simulated bus a sensor names (chips naming the same one share its time).
fn bus_name(spec: &Ina219Spec) -> String {
    spec.i2c_bus
        .as_deref()
        .map_or(DEFAULT_SIM_BUS.into(), |p| p.to_string_lossy().into_owned())
}

/// As [`open`], on any clock (a [`crate::clock::ManualClock`] in tests) and `wire`.
pub fn open_on(
    spec: &Ina219Spec,
    clock: Arc<dyn TimeSource>,
    phases: PhaseLog,
    wire: SimWire,
    chips_on_bus: u32,
) -> Result<Ina219Sensor<SimulatedIna219>> {
    let load_spec = spec.load.clone().unwrap_or_default();
    check_load(&load_spec).map_err(anyhow::Error::msg)?;
    let board = SimulatedBoard::new(&load_spec, phases)?;
    let settings = Ina219Settings {
        chips_on_bus,
        ..Ina219Settings::from_spec(spec, "simulated I2C bus")?
    };
    let bus = SimBus::timed(spec.bus_adapter.unwrap_or_default(), settings.bus_khz);
    let bus_name = bus_name(spec);
    // The chip measures across the board's real shunt; the driver assumes `shunt_ohms`.
    let actual_ohms = load_spec.actual_shunt_ohms.unwrap_or(spec.shunt_ohms);
    let chip =
        SimulatedIna219::on_wire(spec.address, actual_ohms, Box::new(board), clock, bus, wire);
    let real_shunt = if actual_ohms == spec.shunt_ohms {
        String::new()
    } else {
        format!("; its shunt really {actual_ohms} Ω")
    };
    for fault in spec.faults.iter().flat_map(SimFault::from_spec) {
        chip.inject(fault);
    }
    let info = SensorInfo {
        kind: "ina219-sim".into(),
        rail: spec.rail.clone(),
        origin: Origin::Simulated,
        detail: format!(
            "simulated INA219 ({}) at {:#04x} on {bus} ({bus_name}), up to {:.0} readings/s; board {:.2} A idle + \
             {:.2} A busy, σ {} A, {} V{real_shunt}",
            settings.summary(),
            spec.address,
            settings.readings_per_s(),
            load_spec.idle_amps,
            load_spec.active_amps,
            load_spec.noise_amps,
            load_spec.supply_volts
        ),
    };
    sensor(chip, settings, info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::sensor::load::{ConstantLoad, SquareWave};

    const ADDR: u8 = 0x40;

    fn chip(load: impl Load + 'static) -> (SimulatedIna219, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(0.0));
        let sim = SimulatedIna219::new(ADDR, 0.1, Box::new(load), clock.clone());
        (sim, clock)
    }

    /// A chip on a timed bus, powered on at t = 1 s.
    fn chip_on(adapter: I2cAdapter, khz: u32, amps: f64) -> (SimulatedIna219, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(1.0));
        let load = ConstantLoad { amps, volts: 5.0 };
        let bus = SimBus::timed(adapter, khz);
        let sim = SimulatedIna219::on_bus(ADDR, 0.1, Box::new(load), clock.clone(), bus);
        (sim, clock)
    }

    fn one_amp() -> ConstantLoad {
        ConstantLoad {
            amps: 1.0,
            volts: 5.0,
        }
    }

    fn read(sim: &mut SimulatedIna219, register: u8) -> u16 {
        let mut buf = [0; 2];
        sim.write_read(ADDR, &[register], &mut buf).unwrap();
        u16::from_be_bytes(buf)
    }

    fn write(sim: &mut SimulatedIna219, register: u8, value: u16) {
        let [msb, lsb] = value.to_be_bytes();
        sim.write(ADDR, &[register, msb, lsb]).unwrap();
    }

    fn cnvr(sim: &mut SimulatedIna219) -> bool {
        read(sim, reg::BUS) & bus_flags::CNVR != 0
    }

    /// A configuration with the given BADC/SADC field and MODE at 32 V, ±320 mV.
    fn config(adc: u16, mode: u16) -> u16 {
        cfg::BRNG | 0b11 << cfg::PG_SHIFT | adc << cfg::BADC_SHIFT | adc << cfg::SADC_SHIFT | mode
    }

    fn assert_close(what: &str, got: f64, want: f64) {
        assert!((got - want).abs() < 1e-12, "{what}: got {got}, want {want}");
    }

    /// The `ina219` crate's transaction without `no_transaction`: four register reads in one
    /// I2C_RDWR (write, read, write, read, ...).
    fn four_reads_in_one_transaction(sim: &mut SimulatedIna219) -> Result<[u16; 4], SimI2cError> {
        let mut bufs = [[0u8; 2]; 4];
        let [b0, b1, b2, b3] = &mut bufs;
        let mut ops = [
            Operation::Write(&[reg::BUS]),
            Operation::Read(b0),
            Operation::Write(&[reg::POWER]),
            Operation::Read(b1),
            Operation::Write(&[reg::SHUNT]),
            Operation::Read(b2),
            Operation::Write(&[reg::CURRENT]),
            Operation::Read(b3),
        ];
        sim.transaction(ADDR, &mut ops)?;
        Ok(bufs.map(u16::from_be_bytes))
    }

    #[test]
    fn reset_restores_defaults_and_self_clears() {
        let (mut sim, _) = chip(one_amp());
        assert_eq!(read(&mut sim, reg::CONFIG), 0x399F);
        assert_eq!(read(&mut sim, reg::CALIBRATION), 0);
        write(&mut sim, reg::CONFIG, 0x0007);
        write(&mut sim, reg::CALIBRATION, 0x1001);
        assert_eq!(read(&mut sim, reg::CONFIG), 0x0007);
        assert_eq!(read(&mut sim, reg::CALIBRATION), 0x1000, "bit 0 reads 0");
        write(&mut sim, reg::CONFIG, cfg::RST);
        assert_eq!(read(&mut sim, reg::CONFIG), 0x399F, "RST reads back 0");
        assert_eq!(read(&mut sim, reg::CALIBRATION), 0);
    }

    #[test]
    fn addressing_pointer_and_read_only_registers() {
        let (mut sim, _) = chip(one_amp());
        // Linux reports any NACK, address or data, as EREMOTEIO.
        let nack = Err(SimI2cError::new(errno::EREMOTEIO));
        assert_eq!(sim.write(0x41, &[0]), nack);
        assert_eq!(sim.write(ADDR, &[6]), nack, "no register 6: pointer NACKed");
        assert_eq!(
            sim.write(ADDR, &[reg::CALIBRATION, 0x10, 0x00, 0x55]),
            nack,
            "a fourth byte is NACKed"
        );
        assert_eq!(
            read(&mut sim, reg::CALIBRATION),
            0x1000,
            "after the third byte"
        );
        write(&mut sim, reg::SHUNT, 0x1234); // ignored
        assert_eq!(read(&mut sim, reg::SHUNT), 0);
        // A 1-byte write sets the pointer for later plain reads.
        sim.write(ADDR, &[reg::CONFIG]).unwrap();
        let mut buf = [0; 3];
        sim.read(ADDR, &mut buf).unwrap();
        assert_eq!(buf, [0x39, 0x9F, 0xFF]);
    }

    #[test]
    fn twelve_bit_both_channels_convert_every_1064_us() {
        let (mut sim, clock) = chip(one_amp());
        write(&mut sim, reg::CALIBRATION, 4096);
        clock.set(1.063e-3);
        assert!(!cnvr(&mut sim));
        assert_eq!(read(&mut sim, reg::SHUNT), 0, "no sample yet");
        clock.set(1.065e-3);
        assert!(cnvr(&mut sim));
        assert_eq!(read(&mut sim, reg::SHUNT), 10_000, "1 A × 0.1 Ω = 100 mV");
        assert_eq!(read(&mut sim, reg::BUS) >> 3, 1250, "5 V in 4 mV units");
        assert_eq!(read(&mut sim, reg::CURRENT), 10_000);
        assert_eq!(read(&mut sim, reg::POWER), 2_500);
        assert!(!cnvr(&mut sim), "reading power clears CNVR");
        clock.set(2.0e-3);
        assert!(!cnvr(&mut sim), "the next conversion ends at 2.128 ms");
        clock.set(2.2e-3);
        assert!(cnvr(&mut sim));
    }

    #[test]
    fn averaging_128_takes_68_1_ms_per_channel_and_averages_the_load() {
        // 2 A for the first half of the 68.1 ms window, 0 A for the second: mean 1 A.
        let wave = SquareWave {
            period_s: 68.1e-3,
            duty: 0.5,
            high_amps: 2.0,
            low_amps: 0.0,
            volts: 5.0,
        };
        let (mut sim, clock) = chip(wave);
        let shunt_continuous = cfg::MODE_CONTINUOUS | cfg::MODE_SHUNT;
        write(&mut sim, reg::CONFIG, config(0b1111, shunt_continuous));
        clock.set(68.09e-3);
        assert!(!cnvr(&mut sim));
        clock.set(68.11e-3);
        assert!(cnvr(&mut sim));
        assert_eq!(read(&mut sim, reg::SHUNT), 10_000);
        // Both channels: 2 × 68.1 ms.
        let both_continuous = shunt_continuous | cfg::MODE_BUS;
        write(&mut sim, reg::CONFIG, config(0b1111, both_continuous));
        clock.set(68.11e-3 + 136.19e-3);
        assert!(!cnvr(&mut sim));
        clock.set(68.11e-3 + 136.21e-3);
        assert!(cnvr(&mut sim));
    }

    #[test]
    fn triggered_converts_once_and_power_down_never() {
        let (mut sim, clock) = chip(one_amp());
        let triggered_both = cfg::MODE_SHUNT | cfg::MODE_BUS;
        write(&mut sim, reg::CONFIG, config(0b0011, triggered_both));
        clock.set(1.1e-3);
        assert!(cnvr(&mut sim));
        read(&mut sim, reg::POWER);
        clock.set(0.5);
        assert!(
            !cnvr(&mut sim),
            "no second conversion without a new trigger"
        );
        write(&mut sim, reg::CONFIG, config(0b0011, triggered_both));
        clock.set(0.502);
        assert!(cnvr(&mut sim), "a configuration write triggers again");

        let (mut sim, clock) = chip(one_amp());
        write(&mut sim, reg::CONFIG, config(0b0011, 0)); // power-down
        clock.set(1.0);
        assert!(!cnvr(&mut sim));
        assert_eq!(read(&mut sim, reg::SHUNT), 0);
    }

    #[test]
    fn sadc_aliases_decode_like_the_datasheet() {
        assert_eq!(adc_setting(0b0100), adc_setting(0b0000));
        assert_eq!(adc_setting(0b0111), (1, 532e-6));
        assert_eq!(adc_setting(0b1000), (1, 532e-6));
        assert_eq!(adc_setting(0b1001), (2, 1.06e-3));
        assert_eq!(adc_setting(0b1111), (128, 68.1e-3));
    }

    #[test]
    fn current_overflow_sets_ovf() {
        let (mut sim, clock) = chip(one_amp());
        // 10000 × 0xFFFE / 4096 ≈ 160 000: far beyond a signed 16-bit register.
        write(&mut sim, reg::CALIBRATION, 0xFFFE);
        clock.set(2e-3);
        assert_eq!(read(&mut sim, reg::BUS) & bus_flags::OVF, bus_flags::OVF);
        assert_eq!(read(&mut sim, reg::CURRENT), i16::MAX as u16);
    }

    #[test]
    fn shunt_clips_where_the_register_field_ends_not_at_the_nominal_range() {
        // ±40 mV (PG = 00): SIGN bits over SD11..SD0, so 4095 (40.95 mV) and -4096.
        for (amps, pg, want) in [
            (1.0, 0b00, 4095_i16),
            (-1.0, 0b00, -4096),
            (1.0, 0b01, 8191),
            (1.0, 0b10, 10_000), // 100 mV fits ±160 mV
            (4.0, 0b11, 32767),  // 400 mV: 327.67 mV at ±320 mV
            (-4.0, 0b11, -32768),
        ] {
            let (mut sim, clock) = chip(ConstantLoad { amps, volts: 5.0 });
            let value = cfg::BRNG | pg << cfg::PG_SHIFT | 0b0011 << cfg::BADC_SHIFT;
            write(
                &mut sim,
                reg::CONFIG,
                value | 0b0011 << cfg::SADC_SHIFT | 0b111,
            );
            clock.set(2e-3);
            assert_eq!(
                read(&mut sim, reg::SHUNT) as i16,
                want,
                "{amps} A, PG {pg:02b}"
            );
        }
    }

    #[test]
    fn bcm2835_refuses_a_read_before_the_last_message_and_nothing_reaches_the_bus() {
        let (mut sim, clock) = chip_on(I2cAdapter::Bcm2835, 100, 1.0);
        let before = (clock.now(), sim.transactions());
        let err = four_reads_in_one_transaction(&mut sim).unwrap_err();
        assert_eq!(err.errno(), errno::EOPNOTSUPP);
        assert_eq!(
            err.to_string(),
            "EOPNOTSUPP: Operation not supported on transport endpoint"
        );
        assert_eq!(
            (clock.now(), sim.transactions()),
            before,
            "no bus time, no transfer"
        );
        assert_eq!(sim.last_transfer(), None);
        // A write then a read (the read last) is fine; so is a lone read.
        assert_eq!(read(&mut sim, reg::CONFIG), 0x399F);
        let mut buf = [0; 2];
        sim.read(ADDR, &mut buf).unwrap();
        // The permissive and tegra adapters take the crate's old transaction.
        for adapter in [I2cAdapter::Permissive, I2cAdapter::Tegra] {
            let (mut sim, _) = chip_on(adapter, 100, 1.0);
            assert!(
                four_reads_in_one_transaction(&mut sim).is_ok(),
                "{adapter:?}"
            );
        }
    }

    #[test]
    fn tegra_refuses_zero_length_and_over_long_messages() {
        let (mut sim, _) = chip_on(I2cAdapter::Tegra, 400, 1.0);
        let refused = Err(SimI2cError::new(errno::EOPNOTSUPP));
        assert_eq!(sim.write(ADDR, &[]), refused, "I2C_AQ_NO_ZERO_LEN");
        assert_eq!(sim.read(ADDR, &mut []), refused);
        assert_eq!(sim.read(ADDR, &mut [0; 4097]), refused, "max_read_len 4096");
        sim.read(ADDR, &mut [0; 4096]).unwrap();
        // bcm2835 and permissive send the address alone (a bus scan's probe).
        for adapter in [I2cAdapter::Bcm2835, I2cAdapter::Permissive] {
            let (mut sim, _) = chip_on(adapter, 400, 1.0);
            sim.write(ADDR, &[]).unwrap();
        }
    }

    #[test]
    fn i2c_dev_refuses_more_than_42_messages_and_none_on_every_adapter() {
        for adapter in [
            I2cAdapter::Bcm2835,
            I2cAdapter::Tegra,
            I2cAdapter::Permissive,
        ] {
            let (mut sim, _) = chip_on(adapter, 100, 1.0);
            let invalid = Err(SimI2cError::new(errno::EINVAL));
            let mut ops: Vec<Operation<'_>> = (0..43).map(|_| Operation::Write(&[0])).collect();
            assert_eq!(sim.transaction(ADDR, &mut ops), invalid, "{adapter:?}");
            assert_eq!(sim.transaction(ADDR, &mut []), invalid, "{adapter:?}");
            // 42 messages reach the bus (where joined one-byte writes overrun a register).
            ops.truncate(RDWR_MAX_MSGS);
            assert_ne!(
                sim.transaction(ADDR, &mut ops),
                invalid,
                "{adapter:?}: 42 writes"
            );
            assert_eq!(sim.transactions(), 1, "{adapter:?}");
        }
    }

    #[test]
    fn bus_time_is_the_clock_cycles_on_the_wire() {
        for (khz, read_s) in [(100, 0.48e-3), (400, 0.12e-3)] {
            let (mut sim, clock) = chip_on(I2cAdapter::Bcm2835, khz, 1.0);
            // Register read: START, address, pointer (19), Sr, address, 2 bytes (28), STOP (1).
            let t = clock.now();
            read(&mut sim, reg::BUS);
            assert_close("register read", clock.now() - t, read_s);
            assert_eq!(sim.last_transfer(), Some((t, clock.now())));
            // Register write: START, address, 3 bytes, STOP: 38 cycles.
            clock.set(clock.now() + 1.0);
            let t = clock.now();
            write(&mut sim, reg::CALIBRATION, 4096);
            assert_close(
                "register write",
                clock.now() - t,
                38.0 / (f64::from(khz) * 1e3),
            );
            // A NACKed address: START, address, STOP: 11 cycles.
            clock.set(clock.now() + 1.0);
            let t = clock.now();
            assert!(sim.write(0x41, &[0]).is_err());
            assert_close("NACK", clock.now() - t, 11.0 / (f64::from(khz) * 1e3));
        }
        // The crate's old 4-register transaction, where an adapter takes it: 4 × 47 + STOP.
        let (mut sim, clock) = chip_on(I2cAdapter::Permissive, 100, 1.0);
        let t = clock.now();
        four_reads_in_one_transaction(&mut sim).unwrap();
        assert_close("old transaction", clock.now() - t, 1.89e-3);
    }

    #[test]
    fn chips_on_one_bus_take_turns_on_its_wire() {
        let clock = Arc::new(ManualClock::new(1.0));
        let bus = SimBus::timed(I2cAdapter::Bcm2835, 100);
        let wire = SimWire::new();
        let on_wire = |address| {
            let load = Box::new(one_amp());
            SimulatedIna219::on_wire(address, 0.1, load, clock.clone(), bus, wire.clone())
        };
        let (mut supply, mut coral) = (on_wire(0x40), on_wire(0x41));
        // Each chip answers its own address only: the other's transfer is not for it.
        assert!(supply.write(0x41, &[reg::BUS]).is_err());
        clock.set(2.0);
        // The Pi's chip is read; the Coral's read is asked for while that is on the wire
        // (its sampler thread woke at the same moment) and goes out when the wire is free.
        let (start, _) = {
            let mut buf = [0; 2];
            supply.write_read(0x40, &[reg::BUS], &mut buf).unwrap();
            supply.last_transfer().unwrap()
        };
        clock.set(start + 0.1e-3);
        let mut buf = [0; 2];
        coral.write_read(0x41, &[reg::BUS], &mut buf).unwrap();
        let (first, second) = (
            supply.last_transfer().unwrap(),
            coral.last_transfer().unwrap(),
        );
        assert_eq!(second.0, first.1, "the second transfer waits for the first");
        assert_close("second transfer", second.1 - second.0, 0.48e-3);
        // A chip alone on its own wire would have started at once.
        let (mut alone, alone_clock) = chip_on(I2cAdapter::Bcm2835, 100, 1.0);
        alone_clock.set(start + 0.1e-3);
        alone.write_read(0x40, &[reg::BUS], &mut buf).unwrap();
        assert_eq!(alone.last_transfer().unwrap().0, start + 0.1e-3);
    }

    #[test]
    fn a_transfer_within_0_2_ms_of_the_last_end_starts_back_to_back() {
        let (mut sim, clock) = chip_on(I2cAdapter::Bcm2835, 100, 1.0);
        read(&mut sim, reg::BUS);
        let end = clock.now();
        // The caller came back 0.15 ms late (its sleep overshot): the bus did not idle.
        clock.set(end + 0.15e-3);
        read(&mut sim, reg::BUS);
        assert_eq!(sim.last_transfer(), Some((end, end + 0.48e-3)));
        // 0.25 ms late is a real gap.
        let end = clock.now();
        clock.set(end + 0.25e-3);
        read(&mut sim, reg::BUS);
        let (start, _) = sim.last_transfer().unwrap();
        assert_close("start after a gap", start, end + 0.25e-3);
    }

    #[test]
    fn one_transfer_samples_each_message_when_it_happens() {
        // The first conversion ends 1.064 ms after power-on. The crate's old transaction,
        // started at 0.7 ms, latches the bus register 29 cycles in (0.99 ms: before that) and
        // the shunt register 123 cycles in (1.93 ms: after it), as a real chip would.
        let clock = Arc::new(ManualClock::new(0.0));
        let bus = SimBus::timed(I2cAdapter::Permissive, 100);
        let mut sim = SimulatedIna219::on_bus(ADDR, 0.1, Box::new(one_amp()), clock.clone(), bus);
        clock.set(0.7e-3);
        let [bus_reg, power, shunt, _] = four_reads_in_one_transaction(&mut sim).unwrap();
        assert_eq!(
            bus_reg, 0,
            "no conversion yet when the bus register was latched"
        );
        assert_eq!(power, 0, "calibration 0");
        assert_eq!(
            shunt, 10_000,
            "the conversion had ended when the shunt was latched"
        );
    }

    #[test]
    fn consecutive_writes_join_on_tegra_but_not_on_bcm2835() {
        // embedded-hal joins adjacent operations of one direction (i2cdev: I2C_M_NOSTART).
        let split_write = |sim: &mut SimulatedIna219| {
            let mut ops = [
                Operation::Write(&[reg::CALIBRATION, 0x10]),
                Operation::Write(&[0x00]),
            ];
            sim.transaction(ADDR, &mut ops)
        };
        let (mut sim, _) = chip_on(I2cAdapter::Tegra, 100, 1.0);
        split_write(&mut sim).unwrap();
        assert_eq!(read(&mut sim, reg::CALIBRATION), 0x1000);
        // i2c-bcm2835 ignores the flag: the second message starts over, its byte a pointer.
        let (mut sim, _) = chip_on(I2cAdapter::Bcm2835, 100, 1.0);
        split_write(&mut sim).unwrap();
        assert_eq!(sim.peek(reg::CALIBRATION), Some(0));
    }

    #[test]
    fn brown_out_resets_the_registers_while_conversions_go_on() {
        let (mut sim, clock) = chip_on(I2cAdapter::Bcm2835, 400, 1.0);
        write(&mut sim, reg::CALIBRATION, 4096);
        write(&mut sim, reg::CONFIG, 0x199F);
        sim.inject(SimFault::ResetAt(1.01));
        clock.set(1.005);
        assert_eq!(read(&mut sim, reg::CURRENT), 10_000);
        clock.set(1.02);
        assert_eq!(read(&mut sim, reg::CONFIG), 0x399F);
        assert_eq!(read(&mut sim, reg::CALIBRATION), 0);
        assert!(cnvr(&mut sim), "still converting");
        assert_eq!(read(&mut sim, reg::SHUNT), 10_000);
        assert_eq!(read(&mut sim, reg::CURRENT), 0);
        assert_eq!(read(&mut sim, reg::POWER), 0);
    }

    #[test]
    fn cnvr_stuck_never_sets_though_the_registers_update() {
        let (mut sim, clock) = chip_on(I2cAdapter::Bcm2835, 100, 1.0);
        sim.inject(SimFault::CnvrStuck);
        clock.set(1.5);
        assert!(!cnvr(&mut sim));
        assert_eq!(read(&mut sim, reg::SHUNT), 10_000);
    }

    #[test]
    fn nack_bursts_and_timeouts_fail_as_linux_reports_them() {
        let (mut sim, clock) = chip_on(I2cAdapter::Bcm2835, 100, 1.0);
        sim.inject(SimFault::NackBurst {
            at_s: 1.1,
            transactions: 2,
        });
        read(&mut sim, reg::CONFIG); // before the burst
        clock.set(1.1);
        let mut buf = [0; 2];
        for _ in 0..2 {
            let err = sim.write_read(ADDR, &[0], &mut buf).unwrap_err();
            assert_eq!(err.to_string(), "EREMOTEIO: Remote I/O error");
            assert_eq!(
                embedded_hal::i2c::Error::kind(&err),
                ErrorKind::NoAcknowledge(NoAcknowledgeSource::Unknown)
            );
        }
        read(&mut sim, reg::CONFIG);

        sim.inject(SimFault::Timeout {
            at_s: 1.2,
            secs: 1.0,
        });
        clock.set(1.2);
        let err = sim.write_read(ADDR, &[0], &mut buf).unwrap_err();
        assert_eq!(err.errno(), errno::ETIMEDOUT);
        assert_eq!(err.to_string(), "ETIMEDOUT: Connection timed out");
        assert_close("the adapter's timeout", clock.now(), 2.2);
        assert_eq!(read(&mut sim, reg::CONFIG), 0x399F, "one hang only");
    }

    #[test]
    fn vanished_chip_nacks_then_comes_back_power_cycled() {
        let (mut sim, clock) = chip_on(I2cAdapter::Bcm2835, 100, 1.0);
        write(&mut sim, reg::CALIBRATION, 4096);
        sim.inject(SimFault::Vanish {
            from_s: 1.1,
            until_s: 1.2,
        });
        clock.set(1.15);
        let mut buf = [0; 2];
        assert!(sim.write_read(ADDR, &[0], &mut buf).is_err());
        clock.set(1.2);
        assert_eq!(read(&mut sim, reg::CALIBRATION), 0, "reset state");
        assert_eq!(sim.sequence_start(), 1.2, "conversions restart at power-on");
    }

    #[test]
    fn open_builds_a_labelled_simulated_sensor_on_a_timed_bus_and_applies_rig_faults() {
        use crate::clock::{PhaseLog, RunClock};
        use crate::sensor::PowerSensor;

        let ctx = SensorContext::new(RunClock::start(), PhaseLog::new());
        let mut spec = Ina219Spec {
            address: 0x41,
            ..Ina219Spec::new("5V", 0.1, 3.2)
        };
        let mut sensor = open(&spec, &ctx, 1).unwrap();
        let info = sensor.info();
        assert_eq!(
            (info.kind.as_str(), info.origin),
            ("ina219-sim", Origin::Simulated)
        );
        assert!(
            info.detail.starts_with("simulated INA219 (")
                && info.detail.contains(
                    ") at 0x41 on a bcm2835 bus at 100 kHz (sim-i2c), up to 29 readings/s; board"
                ),
            "{}",
            info.detail
        );
        let t = ctx.clock.now();
        assert!(sensor.read().is_ok());
        assert!(
            ctx.clock.now() - t >= 0.48e-3,
            "a read takes its bus time on the run clock"
        );
        spec.bus_adapter = Some(I2cAdapter::Tegra);
        spec.bus_khz = 400;
        let sensor = open(&spec, &ctx, 1).unwrap();
        assert!(
            sensor
                .info()
                .detail
                .contains("at 0x41 on a tegra bus at 400 kHz (sim-i2c), up to 29 readings/s"),
            "{}",
            sensor.info().detail
        );

        // Initialisation alone takes more than 3 transactions.
        spec.faults = Some(SimFaultSpec {
            nack_after_transactions: Some(3),
            ..Default::default()
        });
        let err = open(&spec, &ctx, 1).err().unwrap().to_string();
        assert!(err.contains("no INA219 answers at 0x41"), "{err}");
    }

    #[test]
    fn rig_fault_tables_become_faults() {
        use crate::sensor::ina219::{NackBurstSpec, VanishSpec};
        let spec = SimFaultSpec {
            nack_after_transactions: Some(9),
            absent: true,
            reset_at_s: Some(2.0),
            cnvr_stuck: true,
            nack_burst: Some(NackBurstSpec {
                at_s: 3.0,
                transactions: 4,
            }),
            timeout_at_s: Some(4.0),
            timeout_ms: None,
            vanish: Some(VanishSpec {
                from_s: 5.0,
                until_s: 6.0,
            }),
        };
        assert_eq!(
            SimFault::from_spec(&spec),
            [
                SimFault::NackAfterTransactions(9),
                SimFault::Absent,
                SimFault::ResetAt(2.0),
                SimFault::CnvrStuck,
                SimFault::NackBurst {
                    at_s: 3.0,
                    transactions: 4
                },
                SimFault::Timeout {
                    at_s: 4.0,
                    secs: DEFAULT_TIMEOUT_S
                },
                SimFault::Vanish {
                    from_s: 5.0,
                    until_s: 6.0
                },
            ]
        );
        let faults = SimFault::from_spec(&SimFaultSpec {
            timeout_at_s: Some(1.0),
            timeout_ms: Some(25.0),
            ..Default::default()
        });
        assert_eq!(
            faults,
            [SimFault::Timeout {
                at_s: 1.0,
                secs: 0.025
            }]
        );
    }

    #[test]
    fn faults_nack_after_n_and_absent() {
        let (mut sim, _) = chip(one_amp());
        sim.inject(SimFault::NackAfterTransactions(2));
        read(&mut sim, reg::CONFIG);
        read(&mut sim, reg::CONFIG);
        let mut buf = [0; 2];
        let err = sim.write_read(ADDR, &[0], &mut buf).unwrap_err();
        assert_eq!(err.to_string(), "EREMOTEIO: Remote I/O error");
        sim.clear_faults();
        read(&mut sim, reg::CONFIG);

        let faults = SimFault::from_spec(&SimFaultSpec {
            absent: true,
            ..Default::default()
        });
        assert_eq!(faults, [SimFault::Absent]);
        sim.inject(faults[0]);
        assert!(sim.write(ADDR, &[0]).is_err());
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// A shunt voltage (or bus voltage) `n + frac` register LSBs, |frac| ≤ 0.45, so that
        /// the datasheet's rounding to the nearest LSB is n whatever the order of the
        /// floating-point operations that produced the volts (they err by far less than 0.05
        /// LSB).
        fn counts(range: std::ops::RangeInclusive<i32>) -> impl Strategy<Value = (i32, f64)> {
            (range, -0.45..0.45_f64)
        }

        proptest! {
            #![proptest_config(crate::proptest_config(256))]

            /// SBOS448G, for any shunt current, shunt, bus voltage, PGA range, bus range and
            /// calibration: shunt register = round(V_shunt / 10 µV), clipped where the PGA
            /// range's data field ends (sign bits above SD11 at ±40 mV, ... SD14 at ±320 mV:
            /// -4096·2^PG to 4096·2^PG - 1); bus register bits 15..3 = V_bus / 4 mV (BD11..BD0
            /// at 16 V, BD12..BD0 at 32 V), CNVR (bit 1) set after the conversion; calibration
            /// bit 0 reads 0; current = shunt × cal / 4096 (equation 4), power = current ×
            /// bus / 5000 (equation 5), OVF (bit 0) when either is out of its register's range.
            #[test]
            fn prop_registers_follow_the_datasheet_formulas(
                (shunt_n, shunt_frac) in counts(-40_000..=40_000),
                (bus_n, bus_frac) in counts(-2..=9_000),
                shunt_ohms in 0.001..2.0_f64,
                pg in 0u16..4,
                brng in any::<bool>(),
                cal in any::<u16>(),
            ) {
                let shunt_volts = (f64::from(shunt_n) + shunt_frac) * 10e-6;
                let bus_volts = (f64::from(bus_n) + bus_frac) * 4e-3;
                let load = ConstantLoad { amps: shunt_volts / shunt_ohms, volts: bus_volts };
                let clock = Arc::new(ManualClock::new(0.0));
                let mut sim = SimulatedIna219::new(ADDR, shunt_ohms, Box::new(load), clock.clone());
                write(&mut sim, reg::CALIBRATION, cal);
                let brng_bit = if brng { cfg::BRNG } else { 0 };
                // 12-bit on both channels (0b0011), shunt and bus continuous.
                let config = brng_bit | pg << cfg::PG_SHIFT | 0b0011 << cfg::BADC_SHIFT
                    | 0b0011 << cfg::SADC_SHIFT | 0b111;
                write(&mut sim, reg::CONFIG, config);
                // One conversion: 532 µs shunt + 532 µs bus.
                clock.set(1.1e-3);

                let field = 4096_i32 << pg;
                let shunt = shunt_n.clamp(-field, field - 1);
                let bus_limit = if brng { 8191 } else { 4095 };
                let bus = bus_n.clamp(0, bus_limit);
                let cal_reg = cal & !1;
                // Exact in f64: |shunt × cal| < 2^31.
                let current = (f64::from(shunt) * f64::from(cal_reg) / 4096.0).trunc();
                let power = (current.abs() * f64::from(bus) / 5000.0).trunc();
                let overflow = !(f64::from(i16::MIN)..=f64::from(i16::MAX)).contains(&current)
                    || power > f64::from(u16::MAX);

                prop_assert_eq!(read(&mut sim, reg::CONFIG), config);
                prop_assert_eq!(read(&mut sim, reg::CALIBRATION), cal_reg);
                prop_assert_eq!(read(&mut sim, reg::SHUNT) as i16, shunt as i16);
                let bus_reg = read(&mut sim, reg::BUS);
                prop_assert_eq!(i32::from(bus_reg >> 3), bus);
                prop_assert_eq!(bus_reg & 0b100, 0, "bit 2 is not used");
                prop_assert!(bus_reg & bus_flags::CNVR != 0, "conversion ready");
                prop_assert_eq!(bus_reg & bus_flags::OVF != 0, overflow, "OVF: current {}, power {}", current, power);
                if !overflow {
                    prop_assert_eq!(f64::from(read(&mut sim, reg::CURRENT) as i16), current);
                    prop_assert_eq!(f64::from(read(&mut sim, reg::POWER)), power);
                }
            }
        }
    }
}
