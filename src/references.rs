//! Published and nominal figures to hold measurements against: `analysis/references.csv`,
//! each row with its source (the 2019 comparison's nameplate watts, Coral's published
//! MobileNetV2 latencies, the Edge TPU's TOPS per watt).
//!
//! None of them is a measurement of this rig, and everything derived from them says so.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// What a reference row states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReferenceKind {
    /// A device's nameplate, supply or TDP wattage, in W: the figure the 2019 comparison
    /// argued from.
    NominalWatts,
    /// Time per inference of a model, in ms.
    LatencyMs,
    /// A chip's peak operations per joule, in TOPS/W (not a model's throughput).
    TopsPerWatt,
}

impl ReferenceKind {
    /// The unit a row of this kind must state.
    fn unit(self) -> &'static str {
        match self {
            ReferenceKind::NominalWatts => "W",
            ReferenceKind::LatencyMs => "ms",
            ReferenceKind::TopsPerWatt => "TOPS/W",
        }
    }
}

/// One row of `references.csv`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    /// Short unique name.
    pub id: String,
    pub device: String,
    pub kind: ReferenceKind,
    pub value: f64,
    pub unit: String,
    /// The model a latency is of; empty where the figure is the device's.
    pub model: String,
    /// Under which conditions the figure holds.
    pub conditions: String,
    /// Where it was published: author or publisher, title, address.
    pub source: String,
}

/// The project's `analysis/references.csv`, built in.
const BUILT_IN: &str = include_str!("../analysis/references.csv");

/// Environment variable naming a references file to use instead of the built-in one.
pub const REFERENCES_ENV: &str = crate::environment::REFERENCES;

/// The references: `$JOULEBENCH_REFERENCES` if set, else the project's, built in.
pub fn load_default() -> Result<Vec<Reference>> {
    match std::env::var_os(REFERENCES_ENV) {
        Some(path) => load(Path::new(&path)).map_err(|e| {
            anyhow::anyhow!(
                "{REFERENCES_ENV}={}: {e:#}: fix the file (columns id, device, kind, value, unit, \
                 model, conditions, source, as analysis/references.csv has), or unset \
                 {REFERENCES_ENV} for the built-in references",
                Path::new(&path).display()
            )
        }),
        None => parse(BUILT_IN.as_bytes()).context("built-in analysis/references.csv"),
    }
}

/// Reads and checks a references file: unique ids, a positive value in the kind's unit, and a
/// source on every row.
pub fn load(path: &Path) -> Result<Vec<Reference>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(file).with_context(|| path.display().to_string())
}

/// Reads and checks references CSV text (see [`load`]).
fn parse(text: impl std::io::Read) -> Result<Vec<Reference>> {
    let mut reader = csv::Reader::from_reader(text);
    let mut rows: Vec<Reference> = Vec::new();
    for (i, row) in reader.deserialize().enumerate() {
        let line = i + 2;
        let row: Reference = row.with_context(|| format!("line {line}"))?;
        let problem = if rows.iter().any(|r| r.id == row.id) {
            Some(format!("id {:?} appears twice", row.id))
        } else if !(row.value > 0.0 && row.value.is_finite()) {
            Some(format!("value must be positive, not {}", row.value))
        } else if row.unit != row.kind.unit() {
            Some(format!(
                "unit {:?} does not fit the kind (want {:?})",
                row.unit,
                row.kind.unit()
            ))
        } else if row.source.trim().is_empty() {
            Some("every reference needs its source".into())
        } else {
            None
        };
        if let Some(problem) = problem {
            bail!("line {line}: {problem}");
        }
        rows.push(row);
    }
    Ok(rows)
}

/// The frames per second a device drawing `watts` must reach to match `inferences_per_joule`:
/// inferences per joule × watts.
pub fn fps_to_match(inferences_per_joule: f64, watts: f64) -> f64 {
    inferences_per_joule * watts
}

/// Inferences per joule implied where a device has both a published latency and a nominal
/// wattage: (1000 / latency in ms) / watts. Nominal on both counts (the latency is of model
/// execution alone, the watts a nameplate), so only a yardstick.
pub fn implied_per_joule(references: &[Reference]) -> Vec<(String, String, f64)> {
    let mut out = Vec::new();
    for latency in references
        .iter()
        .filter(|r| r.kind == ReferenceKind::LatencyMs)
    {
        for watts in references
            .iter()
            .filter(|r| r.kind == ReferenceKind::NominalWatts && r.device == latency.device)
        {
            let label = format!(
                "{} {} at nominal {} W ({} + {})",
                latency.device, latency.model, watts.value, latency.id, watts.id
            );
            out.push((
                label,
                latency.device.clone(),
                1000.0 / latency.value / watts.value,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Vec<Reference> {
        load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("analysis/references.csv")).unwrap()
    }

    #[test]
    fn the_shipped_references_are_the_2019_figures_and_coral_s_with_sources() {
        let refs = shipped();
        let value = |id: &str| refs.iter().find(|r| r.id == id).unwrap().value;
        assert_eq!(value("sterckval-2019-coral-usb-watts"), 2.5);
        assert_eq!(value("sterckval-2019-nano-watts"), 12.5);
        assert_eq!(value("sterckval-2019-gtx1080-watts"), 180.0);
        assert_eq!(value("coral-mnv2-usb3"), 2.6);
        assert_eq!(value("coral-mnv2-desktop-cpu"), 51.0);
        assert_eq!(value("coral-edgetpu-efficiency"), 2.0);
        assert!(refs.iter().all(|r| r.source.contains("https://")));
    }

    #[test]
    fn the_coral_usb_at_its_nameplate_implies_154_inferences_per_joule() {
        let implied = implied_per_joule(&shipped());
        assert_eq!(implied.len(), 1, "{implied:?}");
        // 1000 / 2.6 ms = 384.6 FPS at 2.5 W.
        assert!((implied[0].2 - 153.846).abs() < 1e-3, "{implied:?}");
        assert!(implied[0]
            .0
            .starts_with("Coral USB Accelerator MobileNet v2 224x224 at nominal 2.5 W"));
        // A GTX1080 at 180 W matches 20 inferences per joule at 3600 FPS.
        assert_eq!(fps_to_match(20.0, 180.0), 3600.0);
    }

    #[test]
    fn bad_rows_are_refused_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let header = "id,device,kind,value,unit,model,conditions,source\n";
        for (row, want) in [
            (
                "a,D,nominal-watts,2,W,,,\n",
                "line 2: every reference needs its source",
            ),
            (
                "a,D,nominal-watts,-2,W,,,s\n",
                "line 2: value must be positive",
            ),
            (
                "a,D,latency-ms,2,W,,,s\n",
                "line 2: unit \"W\" does not fit the kind",
            ),
            (
                "a,D,nominal-watts,2,W,,,s\na,D,nominal-watts,3,W,,,s\n",
                "line 3: id \"a\" appears twice",
            ),
        ] {
            std::fs::write(&path, format!("{header}{row}")).unwrap();
            let e = format!("{:#}", load(&path).unwrap_err());
            assert!(e.contains(want), "{e}");
        }
        std::fs::write(&path, format!("{header}a,D,guess,2,W,,,s\n")).unwrap();
        assert!(format!("{:#}", load(&path).unwrap_err()).contains("line 2"));
    }
}
