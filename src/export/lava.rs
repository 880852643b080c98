//! LAVA test-case lines, so a board farm running LAVA collects a run's figures: one
//! `lava-test-case NAME --result pass|fail|skip --measurement X --units Y` per figure of every
//! summary row, to be run by the LAVA test definition on the device (the `lava-test-case`
//! helper is LAVA's).

use crate::results::SummaryRow;

/// A figure of a summary row: its name in the test case, its units, how to read it.
type Figure = (&'static str, &'static str, fn(&SummaryRow) -> Option<f64>);

/// The figures each row reports.
const FIGURES: [Figure; 4] = [
    ("fps", "fps", |r| r.fps),
    ("mean_watts", "W", |r| r.mean_watts),
    ("inferences_per_joule", "inf/J", |r| r.inferences_per_joule),
    ("net_inferences_per_joule", "inf/J", |r| {
        r.net_inferences_per_joule
    }),
];

/// The lines for `rows`. A test case passes when its row's status is `ok` and the figure
/// exists; an `ok` row without the figure skips it (a figure off by design: net without an
/// idle baseline, or of a nominal figure); a row that is not `ok` fails, without a
/// measurement. LAVA allows letters, digits, `_`, `-` and `.` in a test case's name, so
/// everything else in the rig name becomes `_`.
pub fn lines(rows: &[SummaryRow]) -> String {
    let mut out = String::new();
    for r in rows {
        let sensor = r.sensor_index.map_or("none".into(), |i| format!("s{i}"));
        let rig: String = r
            .rig
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "_-.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        for (name, units, figure) in FIGURES {
            if r.sensor_index.is_none() && name != "fps" {
                continue;
            }
            let case = format!(
                "{rig}_b{}_r{}_{sensor}_{name}",
                r.backend_index, r.repetition
            );
            out += &match (r.status.is_ok(), figure(r)) {
                (true, Some(v)) => format!(
                    "lava-test-case {case} --result pass --measurement {v:.6} --units {units}\n"
                ),
                (true, None) => format!("lava-test-case {case} --result skip\n"),
                (false, _) => format!("lava-test-case {case} --result fail\n"),
            };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::folder::read_run_dir;
    use crate::results::Status;

    #[test]
    fn one_line_per_figure_pass_skip_or_fail() {
        let example =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results/examples/sim-cpu");
        let mut rows = read_run_dir(&example).unwrap().rows;
        let text = lines(&rows);
        let all: Vec<&str> = text.lines().collect();
        assert_eq!(all.len(), 4);
        let fps = rows[0].fps.unwrap();
        assert_eq!(
            all[0],
            format!("lava-test-case sim-cpu_b0_r1_s0_fps --result pass --measurement {fps:.6} --units fps")
        );
        assert!(all[2]
            .starts_with("lava-test-case sim-cpu_b0_r1_s0_inferences_per_joule --result pass"));
        // Net off by design on an ok row (no idle baseline): skipped, not failed.
        rows[0].net_inferences_per_joule = None;
        assert_eq!(
            lines(&rows).lines().nth(3).unwrap(),
            "lava-test-case sim-cpu_b0_r1_s0_net_inferences_per_joule --result skip"
        );
        rows[0].status = Status::Invalid("coverage 0.5 below 0.95".into());
        rows[0].rig = "my rig/1".into();
        assert!(lines(&rows)
            .lines()
            .all(|l| l.starts_with("lava-test-case my_rig_1_b0_r1_s0_")
                && l.ends_with("--result fail")));
    }
}
