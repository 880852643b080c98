//! Per-file status rows and their tables (`joulebench models list|verify|fetch`).

use std::fmt;
use std::path::PathBuf;

use super::manifest::{Entry, Kind, Manifest};

/// What was found, or done, for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Present with the expected SHA-256 (a fetch left it alone).
    Ok,
    /// No file under the entry's name.
    Missing,
    /// Present with other bytes than the manifest pins; `digest` names the checksum
    /// ("SHA-256" or "git blob id").
    Mismatch {
        digest: &'static str,
        expected: String,
        actual: String,
    },
    /// Present but could not be read (permissions, a folder in its place, ...).
    Unreadable(String),
    /// Fetched from this address and verified.
    Downloaded { url: String },
    /// Copied from this file and verified.
    Copied { from: PathBuf },
    /// A fetch failed; the one-line reason. No new file was left under the entry's name.
    Failed(String),
    /// An optional file that was missing and could not be fetched (the one-line reason): it
    /// stays missing, which `verify` allows too.
    NotFetched(String),
}

impl Outcome {
    /// Whether the file is now present and verified.
    pub fn is_ok(&self) -> bool {
        matches!(
            self,
            Outcome::Ok | Outcome::Downloaded { .. } | Outcome::Copied { .. }
        )
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok => f.write_str("ok"),
            Outcome::Missing => f.write_str("missing"),
            Outcome::Mismatch {
                digest,
                expected,
                actual,
            } => write!(f, "mismatch: {digest} {actual}, expected {expected}"),
            Outcome::Unreadable(reason) => write!(f, "unreadable: {reason}"),
            Outcome::Downloaded { url } => write!(f, "downloaded from {url}"),
            Outcome::Copied { from } => write!(f, "copied from {}", from.display()),
            Outcome::Failed(reason) => write!(f, "failed: {reason}"),
            Outcome::NotFetched(reason) => write!(f, "not fetched: {reason}"),
        }
    }
}

/// One row of `verify` or `fetch`: which file, and its [`Outcome`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    /// The manifest name.
    pub name: String,
    pub kind: Kind,
    /// Where the file is (or belongs) in the models folder.
    pub path: PathBuf,
    pub outcome: Outcome,
    /// The entry is `optional`: its absence is reported, not a failure.
    pub optional: bool,
}

impl FileReport {
    /// Present and verified, or an optional file that is simply absent (a fetch that could
    /// not get it included: `fetch` judges optional files as `verify` does).
    pub fn is_ok(&self) -> bool {
        self.outcome.is_ok()
            || (self.optional && matches!(self.outcome, Outcome::Missing | Outcome::NotFetched(_)))
    }

    /// The STATUS cell: the outcome, marked where an optional file is missing.
    fn status(&self) -> String {
        match &self.outcome {
            Outcome::Missing if self.optional => "missing (optional)".to_owned(),
            Outcome::NotFetched(reason) => format!("missing (optional), not fetched: {reason}"),
            outcome => outcome.to_string(),
        }
    }
}

/// `name (kind): outcome`, for logs; [`format_table`] aligns many rows.
impl fmt::Display for FileReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.name, self.kind, self.status())
    }
}

/// Whether every row is ok; the CLI's exit status.
pub fn all_ok(rows: &[FileReport]) -> bool {
    rows.iter().all(FileReport::is_ok)
}

/// Rows as an aligned table with a header: NAME, KIND, STATUS. Ends with a newline.
pub fn format_table(rows: &[FileReport]) -> String {
    let cells: Vec<[String; 3]> = rows
        .iter()
        .map(|r| [r.name.clone(), r.kind.to_string(), r.status()])
        .collect();
    aligned(["NAME", "KIND", "STATUS"], &cells)
}

/// The manifest as an aligned table: NAME, KIND, FILE, DESCRIPTION. Ends with a newline.
pub fn format_list(manifest: &Manifest) -> String {
    let cells: Vec<[String; 4]> = manifest
        .entries()
        .iter()
        .map(|e| {
            [
                e.name.clone(),
                e.kind.to_string(),
                e.file.clone(),
                e.description.clone(),
            ]
        })
        .collect();
    aligned(["NAME", "KIND", "FILE", "DESCRIPTION"], &cells)
}

/// Left-aligned columns two spaces apart; the last column is not padded.
fn aligned<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header = header.map(str::to_owned);
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 < N {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            } else {
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

impl Manifest {
    /// Hashes every file of the manifest that is present; one row per entry, in order.
    pub fn verify(&self) -> Vec<FileReport> {
        self.entries()
            .iter()
            .map(|e| self.report(e, self.check_file(e)))
            .collect()
    }

    /// The state of one entry's file: ok, missing, mismatch or unreadable.
    pub fn check_file(&self, entry: &Entry) -> Outcome {
        let pin = entry.pin();
        match pin.of_file(&self.path(entry)) {
            Ok(actual) if actual == pin.expected() => Outcome::Ok,
            Ok(actual) => Outcome::Mismatch {
                digest: pin.label(),
                expected: pin.expected().to_owned(),
                actual,
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Outcome::Missing,
            Err(e) => Outcome::Unreadable(e.to_string()),
        }
    }

    pub(crate) fn report(&self, entry: &Entry, outcome: Outcome) -> FileReport {
        FileReport {
            name: entry.name.clone(),
            kind: entry.kind,
            path: self.path(entry),
            outcome,
            optional: entry.optional,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::digest::hex;
    use crate::models::test_support::{copy_shared, project_manifest_in};
    use sha2::{Digest, Sha256};

    #[test]
    fn verify_reports_ok_missing_mismatch_and_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = project_manifest_in(dir.path());
        copy_shared(dir.path(), "bird.bmp");
        std::fs::write(dir.path().join("cat.bmp"), "not a cat").unwrap();
        std::fs::create_dir(dir.path().join("parrot.jpg")).unwrap();

        let rows = manifest.verify();
        assert_eq!(rows.len(), manifest.entries().len());
        let outcome = |name: &str| {
            rows.iter()
                .find(|r| r.name == name)
                .unwrap()
                .outcome
                .clone()
        };
        assert_eq!(outcome("bird.bmp"), Outcome::Ok);
        assert_eq!(outcome("grace_hopper.bmp"), Outcome::Missing);
        assert_eq!(
            outcome("cat.bmp"),
            Outcome::Mismatch {
                digest: "SHA-256",
                expected: "34f235786382686111728287fd26d4c24dd8c25de8233469d6eeb301888ce0a9".into(),
                actual: hex(&Sha256::digest(b"not a cat")),
            }
        );
        assert!(matches!(outcome("parrot.jpg"), Outcome::Unreadable(_)));
        assert!(!all_ok(&rows));
        let bird = rows.iter().find(|r| r.name == "bird.bmp").unwrap();
        assert_eq!(bird.path, dir.path().join("bird.bmp"));
        assert!(all_ok(std::slice::from_ref(bird)));
    }

    #[test]
    fn table_aligns_columns() {
        let rows = [
            FileReport {
                name: "a".into(),
                kind: Kind::Image,
                path: "m/a".into(),
                outcome: Outcome::Ok,
                optional: false,
            },
            FileReport {
                name: "longer_name".into(),
                kind: Kind::Licence,
                path: "m/b".into(),
                outcome: Outcome::Failed("HTTP 404 Not Found".into()),
                optional: false,
            },
        ];
        let table = format_table(&rows);
        assert_eq!(
            table,
            "NAME         KIND     STATUS\n\
             a            image    ok\n\
             longer_name  licence  failed: HTTP 404 Not Found\n"
        );
        assert_eq!(
            rows[1].to_string(),
            "longer_name (licence): failed: HTTP 404 Not Found"
        );
    }

    #[test]
    fn list_shows_every_entry() {
        let manifest = crate::models::test_support::project_manifest();
        let list = format_list(&manifest);
        assert_eq!(list.lines().count(), manifest.entries().len() + 1);
        assert!(list.starts_with("NAME "));
        assert!(list.contains("mobilenet_v2_1.0_224_quant.tflite"));
    }
}
