//! The chip: its registers, conversions over time and the current, power and overflow
//! arithmetic, answering the messages its bus delivers.

use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Result;
use embedded_hal::i2c::{ErrorType, I2c, Operation};

use super::super::ina219::{Functionality, SmbusWord};
use super::super::load::Load;
use super::*;
use crate::clock::TimeSource;

/// Most load samples averaged per conversion window: all of them, as the chip does (up to
/// 128), each taken at the middle of its own 12-bit sample's time. Fewer points would make the
/// model alias a load that changes near the conversion rate, which the chip does not.
pub(super) const MAX_WINDOW_SAMPLES: u32 = 128;

/// One ADC channel's setting (BADC or SADC): how many 12-bit samples it averages and how long a
/// conversion takes. Lower resolutions only shorten the conversion in this model.
pub(super) fn adc_setting(bits: u16) -> (u32, f64) {
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

/// A simulated INA219 on its own I2C bus.
///
/// A cheap handle: clones share one chip, so a test can keep a clone to inject faults or peek
/// at registers while the driver owns another.
#[derive(Clone)]
pub struct SimulatedIna219 {
    chip: Arc<Mutex<Chip>>,
}

pub(super) struct Chip {
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
pub(super) enum Message {
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

    pub(super) fn lock(&self) -> MutexGuard<'_, Chip> {
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
        self.run_transfer(|chip| chip.transfer(address, operations))
    }
}

impl SimulatedIna219 {
    /// Runs one transfer on the chip, then blocks until its end (outside the lock).
    fn run_transfer(
        &self,
        transfer: impl FnOnce(&mut Chip) -> (Option<f64>, Result<(), SimI2cError>),
    ) -> Result<(), SimI2cError> {
        let (clock, end, result) = {
            let mut chip = self.lock();
            let (end, result) = transfer(&mut chip);
            (chip.clock.clone(), end, result)
        };
        if let Some(end) = end {
            clock.sleep_until(end);
        }
        result
    }
}

/// SMBus transfers (the I2C_SMBUS ioctl), on the wire as the I2C messages they are: a read
/// word is the pointer write and a 2-byte read with a repeated START between them, 48 clock
/// cycles as the register read it replaces.
impl SmbusWord for SimulatedIna219 {
    fn functionality(&mut self) -> Result<Functionality, SimI2cError> {
        Ok(self.bus().functionality())
    }

    fn smbus_read_word(&mut self, address: u8, command: u8) -> Result<u16, SimI2cError> {
        let (pointer, mut buf) = ([command], [0; 2]);
        let mut ops = [Operation::Write(&pointer), Operation::Read(&mut buf)];
        self.run_transfer(|chip| chip.smbus_transfer(address, &mut ops))?;
        // The first byte on the wire is the word's low byte.
        Ok(u16::from_le_bytes(buf))
    }

    fn smbus_write_word(&mut self, address: u8, command: u8, word: u16) -> Result<(), SimI2cError> {
        let [low, high] = word.to_le_bytes();
        let bytes = [command, low, high];
        let mut ops = [Operation::Write(&bytes)];
        self.run_transfer(|chip| chip.smbus_transfer(address, &mut ops))
    }

    fn unsupported_shape() -> SimI2cError {
        SimI2cError::unsupported_shape()
    }
}

/// Clock cycles on the wire since a transfer's start, and the time they take.
pub(super) struct Wire {
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

    pub(super) fn add(&mut self, cycles: u64) -> f64 {
        self.cycles += cycles;
        self.now()
    }

    pub(super) fn now(&self) -> f64 {
        self.start + self.cycles as f64 * self.cycle_s
    }
}

impl Chip {
    /// Runs one I2C_RDWR. Returns when the transfer ends on the clock (`None`: it never reached
    /// the bus) and how it went.
    pub(super) fn transfer(
        &mut self,
        address: u8,
        ops: &mut [Operation<'_>],
    ) -> (Option<f64>, Result<(), SimI2cError>) {
        if let Err(e) = self.bus.check_shape(ops) {
            return (None, Err(e)); // Refused in the kernel: nothing happens on the bus.
        }
        self.on_wire(address, ops)
    }

    /// Runs one SMBus transfer, given as the I2C messages it is on the wire: an SMBus
    /// controller sends them itself; on an I2C adapter the i2c core sends them as an I2C
    /// transfer, which the adapter's rules apply to.
    pub(super) fn smbus_transfer(
        &mut self,
        address: u8,
        ops: &mut [Operation<'_>],
    ) -> (Option<f64>, Result<(), SimI2cError>) {
        if self.bus.native_smbus() {
            self.on_wire(address, ops)
        } else {
            self.transfer(address, ops)
        }
    }

    /// A transfer the kernel let through, on the wire.
    pub(super) fn on_wire(
        &mut self,
        address: u8,
        ops: &mut [Operation<'_>],
    ) -> (Option<f64>, Result<(), SimI2cError>) {
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
            TransferEnd::Nack => SimI2cError::new(self.bus.nack_errno()),
            TransferEnd::TimedOut(_) => SimI2cError::new(errno::ETIMEDOUT),
        });
        (Some(end), result)
    }

    /// The transfer on the wire, message by message, until it completes, is NACKed or hangs.
    pub(super) fn run(
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
    pub(super) fn answers(&mut self, address: u8, t: f64) -> bool {
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
    pub(super) fn take_timeout(&mut self, t: f64) -> Option<f64> {
        let i = self
            .faults
            .iter()
            .position(|f| matches!(*f, SimFault::Timeout { at_s, .. } if at_s <= t))?;
        match self.faults.remove(i) {
            SimFault::Timeout { secs, .. } => Some(secs),
            _ => None,
        }
    }

    pub(super) fn schedule_reset(&mut self, t: f64) {
        self.pending_resets.push(t);
        self.pending_resets.sort_by(f64::total_cmp);
    }

    /// Brings the chip to time `t`: resets due by then, then the conversions.
    pub(super) fn advance(&mut self, t: f64) {
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
    pub(super) fn begin_message(&mut self, read: bool) {
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
    pub(super) fn write_byte(&mut self, byte: u8, t: f64) -> Result<(), TransferEnd> {
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
    pub(super) fn read_byte(&mut self) -> u8 {
        let Message::Read { value, count } = &mut self.message else {
            return 0xFF;
        };
        let byte = value.get(*count).copied().unwrap_or(0xFF);
        *count += 1;
        byte
    }

    pub(super) fn register(&self, register: u8) -> Option<u16> {
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
    pub(super) fn reset(&mut self, now: f64) {
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

    pub(super) fn write_config(&mut self, value: u16, now: f64) {
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

    pub(super) fn mode(&self) -> u16 {
        self.config & cfg::MODE_MASK
    }

    /// (samples, seconds) of the shunt and bus channels this mode converts.
    pub(super) fn channels(&self) -> [Option<(u32, f64)>; 2] {
        let adc = |shift| adc_setting(self.config >> shift);
        let mode = self.mode();
        [
            (mode & cfg::MODE_SHUNT != 0).then(|| adc(cfg::SADC_SHIFT)),
            (mode & cfg::MODE_BUS != 0).then(|| adc(cfg::BADC_SHIFT)),
        ]
    }

    /// Runs the conversions that completed by `now`. Only the latest one is visible in the
    /// registers, so only it is computed.
    pub(super) fn catch_up(&mut self, now: f64) {
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
    pub(super) fn convert(&mut self, mut t: f64) {
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
    pub(super) fn window_mean(
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
pub(super) enum TransferEnd {
    /// The chip did not ACK an address or data byte: the adapter sent STOP.
    Nack,
    /// The bus hung; the adapter gave up after this many seconds.
    TimedOut(f64),
}
