//! `joulebench sensors`: each sensor of a rig read once, or (`--detect`) this machine's
//! meters listed with a rig snippet.

use std::process::ExitCode;

use anyhow::Result;

use crate::output::console::Console;
use crate::sensor;

pub fn read(rig_path: &str, out: &mut Console<impl std::io::Write>) -> Result<ExitCode> {
    // The sensors a run of this rig would use.
    let plan = crate::plan::Plan::resolve(rig_path, &Default::default())?;
    if let Some(choice) = &plan.sensor_choice {
        writeln!(out, "{}", choice.line)?;
    }
    let rig = plan.rig;
    let ctx = sensor::SensorContext::new(
        crate::clock::RunClock::start(),
        crate::clock::PhaseLog::new(),
    );
    let mut failed = false;
    // As a run: an optional sensor that cannot be read fails nothing while another measures.
    let (mut missing, mut measured) = (false, false);
    for spec in &rig.sensors {
        let label = format!("{} ({})", spec.kind(), spec.rail());
        match sensor::open(spec, &ctx).and_then(|mut s| {
            // Give the sensor one conversion so the reading is fresh.
            std::thread::sleep(s.update_period());
            Ok((s.read()?, s.info().clone()))
        }) {
            Ok((r, info)) => {
                measured |= info.origin != sensor::Origin::Nominal;
                let opt = |v: Option<f64>, unit: &str, digits: usize| {
                    v.map_or(String::new(), |v| format!("{v:.digits$} {unit}  "))
                };
                writeln!(
                    out,
                    "{label}: {}{}{:.3} W{}{}  [{}]",
                    opt(r.volts, "V", 3),
                    opt(r.amps, "A", 4),
                    r.watts,
                    if r.overflow { "  OVERFLOW" } else { "" },
                    match info.origin.label() {
                        "" => String::new(),
                        label => format!("  ({label})"),
                    },
                    info.detail
                )?;
            }
            Err(e) => {
                let optional = if spec.optional {
                    missing = true;
                    " (optional: a run goes on without it)"
                } else {
                    failed = true;
                    ""
                };
                writeln!(
                    out,
                    "{label}: error: {}{optional}",
                    format!("{e:#}").replace('\n', " ")
                )?;
            }
        }
    }
    if rig.sensors.is_empty() {
        writeln!(out, "rig {} has no sensors", rig.name)?;
    }
    Ok(if failed || (missing && !measured) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub fn detect(out: &mut Console<impl std::io::Write>) -> Result<ExitCode> {
    use sensor::detect;
    let root = detect::sysfs_root();
    let mut found = detect::detect(&root);
    if found.is_empty() {
        writeln!(
            out,
            "no RAPL zones, hwmon power channels or INA3221 rails under {}",
            root.display()
        )?;
    }
    let gpus = detect::detect_gpus();
    match &gpus {
        Ok(list) if list.is_empty() => writeln!(out, "NVML: no GPUs")?,
        Ok(list) => found.extend(list.iter().cloned()),
        Err(why) => writeln!(out, "NVML: {why}")?,
    }
    for d in &found {
        match &d.readable {
            Ok(detail) => writeln!(out, "{}: readable  [{detail}]", d.what)?,
            Err(why) => writeln!(out, "{}: not readable: {why}", d.what)?,
        }
    }
    let snippet = detect::snippet(&found);
    if snippet.is_empty() {
        writeln!(out, "\nnothing readable to put in a rig")?;
    } else {
        writeln!(
            out,
            "\n# [[sensors]] tables for the readable meters, to paste into a rig:\n{snippet}"
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{console, printed};
    use super::*;

    #[test]
    fn each_sensor_is_read_once_and_labelled() {
        let dir = tempfile::tempdir().unwrap();
        let rig = dir.path().join("nominal.toml");
        std::fs::write(
            &rig,
            "name = \"n\"\n[[backends]]\nkind = \"tflite\"\nmodel = \"m\"\nimage = \"i\"\n\
             [[sensors]]\nkind = \"nominal\"\nrail = \"GTX1080 (TDP)\"\nwatts = 180.0\n\
             source = \"spec sheet\"\n",
        )
        .unwrap();
        let mut out = console();
        let code = read(rig.to_str().unwrap(), &mut out).unwrap();
        assert_eq!(code, ExitCode::SUCCESS);
        let text = printed(out);
        assert!(
            text.starts_with("nominal (GTX1080 (TDP)): 180.000 W  (nominal, not measured)"),
            "{text}"
        );
    }

    /// As a run: an optional sensor that cannot be read is a line that says so, and fails
    /// the command only where no other sensor measures.
    #[test]
    fn an_optional_sensor_that_cannot_be_read_fails_only_alone() {
        let dir = tempfile::tempdir().unwrap();
        let absent = "[[sensors]]\nkind = \"ina219\"\nrail = \"Coral\"\n\
                      i2c_bus = \"/nonexistent/i2c-9\"\naddress = 0x41\nshunt_ohms = 0.1\n\
                      max_current_a = 3.2\noptional = true\n";
        let read_with = |first: &str| {
            let rig = dir.path().join("rig.toml");
            std::fs::write(
                &rig,
                format!(
                    "name = \"n\"\n[[backends]]\nkind = \"tflite\"\nmodel = \"m\"\nimage = \"i\"\n\
                     {first}{absent}"
                ),
            )
            .unwrap();
            let mut out = console();
            let code = read(rig.to_str().unwrap(), &mut out).unwrap();
            (code, printed(out))
        };
        let (code, text) = read_with(
            "[[sensors]]\nkind = \"ina219-sim\"\nrail = \"5V\"\nshunt_ohms = 0.1\n\
             max_current_a = 3.2\n",
        );
        assert_eq!(code, ExitCode::SUCCESS, "{text}");
        let coral = text.lines().nth(1).unwrap();
        assert!(
            coral.starts_with("ina219 (Coral): error: ")
                && coral.ends_with(" (optional: a run goes on without it)"),
            "{text}"
        );
        // Beside a nominal figure alone nothing measures.
        let (code, text) = read_with(
            "[[sensors]]\nkind = \"nominal\"\nrail = \"TDP\"\nwatts = 5.0\nsource = \"s\"\n",
        );
        assert_eq!(code, ExitCode::FAILURE, "{text}");
    }
}
