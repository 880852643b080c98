//! The faults a simulated chip injects, to exercise the error paths a real bus produces.

use super::super::ina219::SimFaultSpec;
use super::*;

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
