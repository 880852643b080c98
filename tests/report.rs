//! `joulebench report`: the report and its charts from the committed example run folder,
//! each chart rendered to PNG and checked not to be blank.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn report(args: &[&Path], out: &Path) -> Output {
    let mut cmd = Command::new(crate::common::joulebench_bin());
    cmd.current_dir(root())
        .arg("report")
        .args(args)
        .arg("--out")
        .arg(out);
    cmd.output().unwrap()
}

/// Renders `svg` to PNG beside it (the font given to the SVG's `sans-serif`) and returns the
/// fraction of pixels that differ from the top-left one (the background).
fn render(svg: &Path, font: &Path) -> f64 {
    let mut options = resvg::usvg::Options::default();
    options
        .fontdb_mut()
        .load_font_data(std::fs::read(font).unwrap());
    options.fontdb_mut().set_sans_serif_family("DejaVu Sans");
    let tree = resvg::usvg::Tree::from_data(&std::fs::read(svg).unwrap(), &options)
        .unwrap_or_else(|e| panic!("{}: {e}", svg.display()));
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height()).unwrap();
    pixmap.fill(resvg::tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::default(),
        &mut pixmap.as_mut(),
    );
    pixmap.save_png(svg.with_extension("png")).unwrap();
    let pixels = pixmap.pixels();
    let background = pixels[0];
    pixels.iter().filter(|p| **p != background).count() as f64 / pixels.len() as f64
}

fn check(name: &str, runs: &[&Path], want_entries: usize) {
    let font = joulebench::report::font_path();
    assert!(
        font.exists(),
        "no font at {} (scripts/setup.sh installs fonts-dejavu-core)",
        font.display()
    );
    // JOULEBENCH_REPORT_TEST_OUT keeps the report and its PNGs for a person to look at.
    let tmp = tempfile::tempdir().unwrap();
    let out = std::env::var_os("JOULEBENCH_REPORT_TEST_OUT")
        .map(|d| PathBuf::from(d).join(name))
        .unwrap_or_else(|| tmp.path().join("report"));
    let _ = std::fs::remove_dir_all(&out);
    let output = report(runs, &out);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("simulated"), "{md}");
    if name == "report_repeated" {
        assert!(md.contains("(14.78 to 15.55)"), "{md}");
    }
    assert_eq!(
        md.lines()
            .filter(|l| l.starts_with("| ") && l.contains("ina219-sim"))
            .count(),
        want_entries,
        "{md}"
    );
    let mut svgs: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .collect();
    svgs.sort();
    assert!(svgs.len() >= 5, "{svgs:?}");
    for svg in &svgs {
        let file = svg.file_name().unwrap().to_str().unwrap();
        assert!(
            md.contains(&format!("]({file})")),
            "{file} not in report.md"
        );
        let text = std::fs::read_to_string(svg).unwrap();
        assert!(text.contains("<text"), "{file} has no text");
        let inked = render(svg, &font);
        assert!(
            inked > 0.03,
            "{file}: only {:.1} % of pixels drawn",
            inked * 100.0
        );
    }
}

#[test]
fn report_of_the_example_run_has_charts_that_are_not_blank() {
    let run = root().join("results/examples/sim-cpu");
    check("report_one", &[&run], 1);
}

/// A copy of the example run folder in `into`, its summary rows changed by `change`.
fn example_copy(into: &Path, change: impl Fn(&mut joulebench::results::SummaryRow)) -> PathBuf {
    let example = root().join("results/examples/sim-cpu");
    let copy = into.join("sim-cpu-copy");
    std::fs::create_dir(&copy).unwrap();
    for file in std::fs::read_dir(&example).unwrap() {
        let file = file.unwrap().path();
        std::fs::copy(&file, copy.join(file.file_name().unwrap())).unwrap();
    }
    let mut rows = joulebench::output::folder::read_run_dir(&copy)
        .unwrap()
        .rows;
    rows.iter_mut().for_each(change);
    let mut w = csv::Writer::from_path(copy.join("summary.csv")).unwrap();
    rows.iter().for_each(|r| w.serialize(r).unwrap());
    w.flush().unwrap();
    copy
}

#[test]
fn report_of_the_example_run_and_its_copy_has_two_entries() {
    let run = root().join("results/examples/sim-cpu");
    let tmp = tempfile::tempdir().unwrap();
    let copy = example_copy(tmp.path(), |_| {});
    check("report_twice", &[&run, &copy], 2);
}

/// One folder named twice, however spelled, would be two entries of one run.
#[test]
fn a_folder_named_twice_is_refused() {
    let run = root().join("results/examples/sim-cpu");
    let tmp = tempfile::tempdir().unwrap();
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&run, &link).unwrap();
    for other in [&run, &link] {
        let out = tmp.path().join("report");
        let output = report(&[&run, other], &out);
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("are the same run folder: name each run folder once"),
            "{stderr}"
        );
        assert!(!out.exists());
    }
}

/// A backend run without a sensor is labelled so, not "none on" a blank rail as if measured.
#[test]
fn a_run_without_sensors_is_labelled_fps_only() {
    let tmp = tempfile::tempdir().unwrap();
    let bare = example_copy(tmp.path(), |r| {
        r.sensor_index = None;
        r.sensor = "none".into();
        r.rail = String::new();
        r.origin = None;
        r.simulated = false;
        r.inferences_per_joule = None;
    });
    let out = tmp.path().join("report");
    let output = report(&[&bare], &out);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let row = md
        .lines()
        .find(|l| l.starts_with("| 1 |"))
        .unwrap_or_else(|| panic!("{md}"));
    assert!(row.contains("| no sensor | FPS only |"), "{row}");
    assert!(!md.contains("none on"), "{md}");
}

#[test]
fn report_of_repeated_runs_has_two_entries_with_intervals() {
    let quant = root().join("results/examples/repeat-quant");
    let tf2 = root().join("results/examples/repeat-tf2");
    check("report_repeated", &[&quant, &tf2], 2);
}

#[test]
fn report_of_a_missing_folder_is_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let output = report(&[&tmp.path().join("nope")], &tmp.path().join("out"));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("is not a folder"), "{stderr}");
}

/// A report folder is new, or a previous report replaced whole (no chart of the old one
/// left behind); a folder of other files is refused and kept.
#[test]
fn a_report_replaces_a_previous_report_whole_and_nothing_else() {
    let run = root().join("results/examples/sim-cpu");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("report");
    assert!(report(&[&run], &out).status.success());
    std::fs::write(out.join("stale-chart.svg"), "<svg/>").unwrap();
    let again = report(&[&run], &out);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(out.join("report.md").is_file());
    assert!(
        !out.join("stale-chart.svg").exists(),
        "a previous chart lingered"
    );
    // Nothing of the staging folder is left beside it.
    let beside: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert_eq!(beside.len(), 1);

    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    let refused = report(&[&run], &other);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        err.trim_end()
            .lines()
            .last()
            .unwrap()
            .contains("holds files that are not a joulebench report"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(other.join("notes.txt")).unwrap(),
        "mine"
    );
    assert!(!other.join("report.md").exists());
}
