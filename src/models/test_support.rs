//! Test helpers: the real files in `../shared/models`, the project manifest, a local server.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::manifest::{Manifest, MANIFEST_FILE};

/// The google-coral/test_data commit the manifest pins.
pub const PINNED_COMMIT: &str = "104342d2d3480b3e66203073dac24f4e2dbb4c41";

/// The real model, label and image files (CI provides them at the same relative place).
pub fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/models")
}

/// The text of the project's `models/manifest.toml`, less its entries of files inside PyPI
/// wheels (`member`): the entries of google-coral/test_data, the files of `../shared/models`
/// and of the tests' local server. The wheels' entries have their own test
/// (`the_models_from_wheels_are_pinned_files_of_pinned_wheels`): a unit test never reaches
/// PyPI.
pub fn project_manifest_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(MANIFEST_FILE);
    let text = std::fs::read_to_string(path).unwrap();
    let mut parts = text.split("\n[[entry]]\n");
    let mut out = parts.next().unwrap().to_owned();
    for entry in parts.filter(|e| !e.contains("\nmember = ")) {
        out += "\n[[entry]]\n";
        out += entry;
    }
    out
}

/// The project's manifest, as committed.
pub fn project_manifest() -> Manifest {
    Manifest::parse(&project_manifest_text(), "models").unwrap()
}

/// The project's manifest with its files expected in `dir`.
pub fn project_manifest_in(dir: &Path) -> Manifest {
    Manifest::parse(&project_manifest_text(), dir).unwrap()
}

/// Copies one shared file into `dir` under the same name.
pub fn copy_shared(dir: &Path, file: &str) {
    let bytes = std::fs::read(shared_dir().join(file)).unwrap();
    std::fs::write(dir.join(file), bytes).unwrap();
}

/// An HTTP server on 127.0.0.1 serving `root`'s files at `/files/NAME`, a redirect to them at
/// `/redirect/NAME`, wrong bytes at `/wrong/NAME`, and 404 for anything else. Stops when
/// dropped.
pub struct FileServer {
    server: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl FileServer {
    pub fn start(root: PathBuf) -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (server, stop, requests) = (server.clone(), stop.clone(), requests.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(50)) {
                        requests.fetch_add(1, Ordering::SeqCst);
                        let response = respond(&root, request.url());
                        let _ = request.respond(response);
                    }
                }
            })
        };
        Self {
            server,
            stop,
            requests,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://{}", self.server.server_addr().to_ip().unwrap())
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn respond(root: &Path, url: &str) -> tiny_http::Response<Cursor<Vec<u8>>> {
    let plain = |name: &str| !name.is_empty() && !name.contains('/') && !name.starts_with('.');
    if let Some(name) = url.strip_prefix("/files/").filter(|n| plain(n)) {
        if let Ok(bytes) = std::fs::read(root.join(name)) {
            return tiny_http::Response::from_data(bytes);
        }
    }
    if let Some(name) = url.strip_prefix("/redirect/") {
        // As github.com/.../raw/... redirects to raw.githubusercontent.com.
        let location = tiny_http::Header::from_bytes("Location", format!("/files/{name}"))
            .expect("valid header");
        return tiny_http::Response::from_data(Vec::new())
            .with_status_code(302)
            .with_header(location);
    }
    if let Some(name) = url.strip_prefix("/wrong/") {
        return tiny_http::Response::from_data(format!("not really {name}").into_bytes());
    }
    tiny_http::Response::from_data(b"not found".to_vec()).with_status_code(404)
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
