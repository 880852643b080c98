//! Checksums of the model files: SHA-256 as the manifest pins most of them, the git blob id
//! for those pinned by one, and a writer that hashes as it copies.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

/// SHA-256 of a file's bytes, as 64 lowercase hex digits (the manifest's spelling).
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut HashWriter::new(&mut hasher, io::sink()))?;
    Ok(hex(&hasher.finalize()))
}

/// The git blob id of a file: SHA-1 of `"blob <size>\0"` followed by its bytes, which is how
/// a git repository names a file's content at a commit (`git hash-object`).
pub fn git_blob_file(path: &Path) -> io::Result<String> {
    use sha1::Digest as _;
    let mut file = File::open(path)?;
    let mut hasher = sha1::Sha1::new();
    hasher.update(format!("blob {}\0", file.metadata()?.len()).as_bytes());
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Lowercase hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A writer that hashes what passes through it, so a download or copy is checked in the same
/// pass that writes it.
pub(crate) struct HashWriter<'h, W> {
    hasher: &'h mut Sha256,
    inner: W,
}

impl<'h, W: Write> HashWriter<'h, W> {
    pub(crate) fn new(hasher: &'h mut Sha256, inner: W) -> Self {
        Self { hasher, inner }
    }
}

impl<W: Write> Write for HashWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::test_support::shared_dir;

    #[test]
    fn sha256_of_known_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc");
        std::fs::write(&path, "abc").unwrap();
        assert_eq!(
            sha256_file(&path).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha256_file(&shared_dir().join("bird.bmp")).unwrap(),
            "3fd22d6ed352b8e721d9982e38ed655f8429e168bb53ad205c6f3cdfa848e994"
        );
    }
}
