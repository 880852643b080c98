//! `compare`'s statistics against an independent implementation: scipy's Welch test of the
//! logarithms (`scipy.stats.ttest_ind(log x, log y, equal_var=False)` and its confidence
//! interval), computed in Python from the same `summary.csv` rows that `compare` read.

use std::path::Path;

use crate::common::*;

/// Prints, for the `ok` repetitions' inferences per joule of the folders `argv[1]` (the
/// baseline) and `argv[2]`, the figures `compare` gives the second entry.
const SCIPY: &str = r#"
import csv, json, sys
import numpy as np, scipy.stats as st

def values(folder):
    with open(folder + "/summary.csv") as f:
        return np.array([float(r["inferences_per_joule"]) for r in csv.DictReader(f)
                         if r["repetition"] != "all" and r["status"] == "ok"])

base, other = np.log(values(sys.argv[1])), np.log(values(sys.argv[2]))
test = st.ttest_ind(other, base, equal_var=False)
ci = test.confidence_interval(0.95)
half = st.t.ppf(0.975, len(other) - 1) * st.sem(other)
print(json.dumps({
    "inferences_per_joule": float(np.exp(other.mean())),
    "ci_low": float(np.exp(other.mean() - half)),
    "ci_high": float(np.exp(other.mean() + half)),
    "ratio": float(np.exp(other.mean() - base.mean())),
    "ratio_low": float(np.exp(ci.low)),
    "ratio_high": float(np.exp(ci.high)),
    "p_value": float(test.pvalue),
}))
"#;

/// A copy of the example folder `repeat-quant` whose three repetitions have the inferences
/// per joule `values`.
fn with_values(values: [f64; 3]) -> tempfile::TempDir {
    let example = repo().join("results/examples/repeat-quant");
    let dir = tempfile::tempdir().unwrap();
    for name in ["run.json", "latency.csv", "power.csv"] {
        std::fs::copy(example.join(name), dir.path().join(name)).unwrap();
    }
    let mut reader = csv::Reader::from_path(example.join("summary.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    let column = headers
        .iter()
        .position(|h| h == "inferences_per_joule")
        .unwrap();
    let mut writer = csv::Writer::from_path(dir.path().join("summary.csv")).unwrap();
    writer.write_record(&headers).unwrap();
    for (i, record) in reader.records().enumerate() {
        let record = record.unwrap();
        let mut fields: Vec<String> = record.iter().map(String::from).collect();
        if let Some(v) = values.get(i) {
            fields[column] = v.to_string();
        }
        writer.write_record(&fields).unwrap();
    }
    writer.flush().unwrap();
    dir
}

#[test]
fn compare_agrees_with_scipys_welch_test_of_the_logarithms() {
    let python = joulebench::project::python_path(None, "JOULEBENCH_PYTHON", "venv");
    let has_scipy = std::process::Command::new(&python)
        .args(["-c", "import scipy"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        has_scipy,
        "{} has no scipy (scripts/setup.sh installs it)",
        python.display()
    );
    let examples = repo().join("results/examples");
    // Two real runs (p well below 0.05), and values spread as widely as the case where an
    // interval of 0.42 to 11.98 stood beside p = 0.035 (interval and p near the boundary).
    let wide = with_values([4.0, 21.0, 70.0]);
    let cases: [(&Path, &Path); 3] = [
        (&examples.join("repeat-quant"), &examples.join("repeat-tf2")),
        (&examples.join("repeat-tf2"), &examples.join("repeat-quant")),
        (&examples.join("repeat-quant"), wide.path()),
    ];
    let out = tempfile::tempdir().unwrap();
    for (base, other) in cases {
        let json = out.path().join("compare.json");
        let run = joulebench()
            .args(["compare", s(base), s(other), "--export-json", s(&json)])
            .output()
            .unwrap();
        assert!(run.status.success(), "{}", stderr(&run));
        let ours: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let entry = &ours["entries"][1];
        let scipy = std::process::Command::new(&python)
            .args(["-c", SCIPY, s(base), s(other)])
            .output()
            .unwrap();
        assert!(
            scipy.status.success(),
            "{}",
            String::from_utf8_lossy(&scipy.stderr)
        );
        let theirs: serde_json::Value = serde_json::from_slice(&scipy.stdout).unwrap();
        // Both sides evaluate closed forms in f64, but quantiles and p-values go through two
        // implementations of the incomplete beta function (statrs, Boost): they agreed to
        // 2.6e-13 relative on the unit tests' known answers; 1e-9 is far below any digit
        // printed.
        for key in [
            "inferences_per_joule",
            "ci_low",
            "ci_high",
            "ratio",
            "ratio_low",
            "ratio_high",
            "p_value",
        ] {
            let (a, b) = (entry[key].as_f64().unwrap(), theirs[key].as_f64().unwrap());
            assert!(
                (a - b).abs() <= 1e-9 * b.abs(),
                "{} against {}: {key} {a} here, {b} in scipy",
                base.display(),
                other.display()
            );
        }
        // One test: the interval holds 1 exactly when p ≥ 0.05.
        let holds_one = entry["ratio_low"].as_f64().unwrap() <= 1.0
            && entry["ratio_high"].as_f64().unwrap() >= 1.0;
        assert_eq!(holds_one, entry["p_value"].as_f64().unwrap() >= 0.05);
    }
}
