//! `joulebench calibrate`: an INA219's shunt correction from a reference reading, or a
//! reference point for a Pi 5's PMIC total (a gain and an offset from two or more).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;

use crate::calibrate::{Calibration, Reference};
use crate::output::console::Console;

/// The reference and its uncertainty are checked in `calibrate`, not by clap, so a missing one
/// is the usual one-line error.
#[derive(clap::Args)]
pub struct CalibrateArgs {
    /// Rig file, or a rig's name (see `run --rig`); a built-in rig must be copied first.
    #[arg(long)]
    pub rig: String,
    /// The rail of the INA219 (or Pi 5 PMIC table) to calibrate.
    #[arg(long)]
    pub rail: String,
    /// The current a trusted ammeter in series reads, in A.
    #[arg(long)]
    pub amps: Option<f64>,
    /// The power a trusted meter in the line reads, in W (for a Pi 5's PMIC: a USB-C meter at
    /// its 5 V input, one load per run).
    #[arg(long)]
    pub watts: Option<f64>,
    /// A known resistance across VIN− and ground, in Ω: the current is the bus voltage over it.
    #[arg(long)]
    pub load_ohms: Option<f64>,
    /// What the reference is good to, in percent (e.g. 0.1 for a 0.1 % resistor); required.
    #[arg(long)]
    pub reference_uncertainty_pct: Option<f64>,
    /// Seconds to read the chip for.
    #[arg(long, default_value_t = crate::calibrate::DEFAULT_SECONDS)]
    pub seconds: f64,
    /// Print the result without writing the rig file.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(args: &CalibrateArgs, out: &mut Console<impl std::io::Write>) -> Result<ExitCode> {
    use crate::calibrate::{self, Request};
    let reference = reference(args)?;
    let Some(uncertainty_pct) = args.reference_uncertainty_pct else {
        anyhow::bail!(
            "calibrate needs --reference-uncertainty-pct: what the reference is good to, in \
             percent (0.1 for a 0.1 % resistor or a meter's stated accuracy)"
        );
    };
    let request = Request {
        rail: args.rail.clone(),
        reference,
        reference_uncertainty_pct: uncertainty_pct,
        seconds: args.seconds,
        dry_run: args.dry_run,
    };
    let (rig, source) = crate::rig::Rig::find(&args.rig)?;
    if let Some(target) = calibrate::pmic::target_in(&rig, &source, &args.rail) {
        return run_pmic(args, &rig, target, &request, out);
    }
    // Everything a read is not needed for is refused before the note below announces one.
    let prepared = calibrate::prepare(&rig, source, &request)?;
    eprintln!(
        "joulebench: reading rail {:?} for {} s, its correction (if any) ignored",
        args.rail, args.seconds
    );
    let clock = Arc::new(crate::clock::RunClock::start());
    let (target, cal) = prepared.run(clock, chrono::Utc::now())?;
    print_calibration(out, &cal, reference, uncertainty_pct)?;
    match (&target.path, args.dry_run) {
        (Some(path), false) => writeln!(
            out,
            "wrote shunt_correction = {} and reference_uncertainty_pct = {} into sensors[{}] of {}",
            cal.factor,
            uncertainty_pct,
            target.index,
            path.display()
        )?,
        _ => writeln!(out, "dry run: {} left as it was", target.origin)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// A Pi 5's PMIC total: one more reference point, and the fit of them all.
fn run_pmic(
    args: &CalibrateArgs,
    rig: &crate::rig::Rig,
    target: crate::calibrate::pmic::PmicTarget,
    request: &crate::calibrate::Request,
    out: &mut Console<impl std::io::Write>,
) -> Result<ExitCode> {
    let prepared = crate::calibrate::pmic::prepare(rig, target, request)?;
    eprintln!(
        "joulebench: reading rail {:?} for {} s, its calibration (if any) ignored",
        args.rail, args.seconds
    );
    let clock = Arc::new(crate::clock::RunClock::start());
    let (target, cal) = prepared.run(clock, chrono::Utc::now())?;
    let m = &cal.measurement;
    writeln!(
        out,
        "measured   {:.5} W of PMIC rails (mean of {} readings in {} s; σ {:.5} W)",
        m.mean_w, m.readings, m.seconds, m.sd_w
    )?;
    writeln!(
        out,
        "reference  {:.5} W at the 5 V input ({}, good to {} %)",
        cal.point.reference_w,
        request.reference.describe(),
        cal.point.reference_uncertainty_pct
    )?;
    let points: Vec<String> = cal
        .points
        .iter()
        .map(|p| format!("{:.3} → {:.3} W", p.pmic_w, p.reference_w))
        .collect();
    writeln!(
        out,
        "points     {} ({})",
        cal.points.len(),
        points.join(", ")
    )?;
    match &cal.fit {
        Some(fit) => writeln!(out, "fit        {}", fit.describe())?,
        None => writeln!(
            out,
            "fit        none yet: a gain and an offset need a second point at another load              (idle, then under load: stress-ng --cpu 4); until then the rail reads the PMIC              alone, partial"
        )?,
    }
    // The mean's own scatter adds to the reference's uncertainty; say so when it is not small.
    let standard_error_pct = m.sd_w / (m.readings as f64).sqrt() / m.mean_w * 100.0;
    if standard_error_pct > cal.point.reference_uncertainty_pct / 3.0 {
        writeln!(
            out,
            "note: the mean's standard error ({standard_error_pct:.3} %) is not small beside the              reference's {} %: a steadier load or a longer read (--seconds) helps",
            cal.point.reference_uncertainty_pct
        )?;
    }
    match (&target.path, args.dry_run) {
        (Some(path), false) => writeln!(
            out,
            "wrote calibration point {} into sensors[{}] of {}",
            cal.points.len(),
            target.index,
            path.display()
        )?,
        _ => writeln!(out, "dry run: {} left as it was", target.origin)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The one reference the command line gives.
fn reference(args: &CalibrateArgs) -> Result<Reference> {
    Ok(match (args.amps, args.watts, args.load_ohms) {
        (Some(a), None, None) => Reference::Amps(a),
        (None, Some(w), None) => Reference::Watts(w),
        (None, None, Some(r)) => Reference::LoadOhms(r),
        (None, None, None) => anyhow::bail!(
            "calibrate needs a reference: --amps A (a trusted ammeter in series), --watts W (a \
             trusted power meter) or --load-ohms R (a known resistance as the load)"
        ),
        _ => anyhow::bail!("give one reference: --amps, --watts or --load-ohms, not several"),
    })
}

/// What the read measured against the reference, and the factor and uncertainty it gives.
fn print_calibration(
    out: &mut Console<impl std::io::Write>,
    cal: &Calibration,
    reference: Reference,
    uncertainty_pct: f64,
) -> Result<()> {
    let m = &cal.measurement;
    let unit = cal.unit;
    writeln!(
        out,
        "measured   {:.5} {unit} (mean of {} fresh readings in {} s; {:.5} V, {:.5} W; current σ {:.5} A)",
        cal.measured, m.fresh, m.seconds, m.mean_volts, m.mean_watts, m.sd_amps
    )?;
    writeln!(
        out,
        "reference  {:.5} {unit} ({}, good to {} %)",
        cal.reference,
        reference.describe(),
        uncertainty_pct
    )?;
    writeln!(
        out,
        "factor     {} (the chip read {:+.3} %){}",
        cal.factor,
        (1.0 / cal.factor - 1.0) * 100.0,
        cal.previous_factor
            .map_or(String::new(), |f| format!("; the rig had {f}"))
    )?;
    writeln!(
        out,
        "calibration register {} → {}; energy uncertainty {:.2} % → {:.2} %",
        cal.uncorrected_register,
        cal.corrected_register,
        cal.uncertainty_before * 100.0,
        cal.uncertainty_after * 100.0
    )?;
    // The mean's own scatter adds to the reference's uncertainty; say so when it is not small.
    let standard_error_pct = m.sd_amps / (m.fresh as f64).sqrt() / m.mean_amps * 100.0;
    if standard_error_pct > uncertainty_pct / 3.0 {
        writeln!(
            out,
            "note: the mean's standard error ({standard_error_pct:.3} %) is not small beside the \
             reference's {uncertainty_pct} %: a quieter load or a longer read (--seconds) helps"
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{console, parse};
    use super::super::Command;
    use super::*;

    fn refusal(line: &[&str]) -> String {
        let Command::Calibrate(args) = parse(&[&["calibrate"], line].concat()).unwrap().command
        else {
            unreachable!("a calibrate command line")
        };
        run(&args, &mut console()).unwrap_err().to_string()
    }

    #[test]
    fn one_reference_and_its_uncertainty_are_required_before_any_read() {
        let rig = ["--rig", "sim-cpu", "--rail", "5V supply"];
        assert!(refusal(&rig).starts_with("calibrate needs a reference: --amps A"));
        assert_eq!(
            refusal(&[&rig[..], &["--amps", "1", "--watts", "5"]].concat()),
            "give one reference: --amps, --watts or --load-ohms, not several"
        );
        assert!(refusal(&[&rig[..], &["--amps", "1"]].concat())
            .starts_with("calibrate needs --reference-uncertainty-pct"));
    }
}
