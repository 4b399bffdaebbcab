//! The revocation list file: key ids (GNS's, §2.2) that a Sockworks trust configuration
//! refuses, whether the key is a CA's or a certificate's. The text format (one decimal key id
//! per line, `#` comments) is the engine's (`sockworks_engine::crypto::revocation`), so the
//! trust configuration parses exactly what this writes; this module does the file handling.
//! The file is only ever appended to; a key id already listed is not added twice.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub use sockworks_engine::crypto::revocation::{HEADER, RevocationListError, entry, parse};

/// Why a revocation list could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationError {
    /// An I/O failure on the list.
    #[error("revocation list {path}: {cause}")]
    Io {
        /// The list file.
        path: String,
        /// What failed.
        cause: io::Error,
    },
    /// A line that is neither blank, a comment, nor a key id.
    #[error("{path}: {cause}")]
    Syntax {
        /// The list file.
        path: String,
        /// The line.
        cause: RevocationListError,
    },
    /// A comment that would break the one-line format.
    #[error("the comment must be one line")]
    MultilineComment,
}

/// Reads a list file; a missing file is an empty list.
pub fn load(path: &Path) -> Result<BTreeSet<u64>, RevocationError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text).map_err(|cause| RevocationError::Syntax {
            path: path.display().to_string(),
            cause,
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeSet::new()),
        Err(cause) => Err(RevocationError::Io {
            path: path.display().to_string(),
            cause,
        }),
    }
}

/// Appends `key_id` with `comment` (creating the list with its header, mode 0644); returns
/// `false` and writes nothing if the key id is already listed.
pub fn append(path: &Path, key_id: u64, comment: &str) -> Result<bool, RevocationError> {
    if comment.contains(['\n', '\r']) {
        return Err(RevocationError::MultilineComment);
    }
    if load(path)?.contains(&key_id) {
        return Ok(false);
    }
    let io_err = |cause| RevocationError::Io {
        path: path.display().to_string(),
        cause,
    };
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(path)
        .map_err(io_err)?;
    let mut text = String::new();
    if file.metadata().map_err(io_err)?.len() == 0 {
        text.push_str(HEADER);
    }
    text.push_str(&entry(key_id, comment));
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_err)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_once_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("revoked.txt");
        assert!(append(&p, 42, "2025-01-01T00:00:00Z test").unwrap());
        assert!(!append(&p, 42, "again").unwrap());
        assert!(append(&p, u64::MAX, "").unwrap());
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with(HEADER));
        assert!(text.contains("42                    # 2025-01-01T00:00:00Z test\n"));
        assert_eq!(
            load(&p).unwrap().into_iter().collect::<Vec<_>>(),
            [42, u64::MAX]
        );
    }

    #[test]
    fn refuses_garbage_lines_and_multiline_comments() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad");
        std::fs::write(&bad, "# x\n12\nabc # y\n").unwrap();
        assert!(matches!(
            load(&bad),
            Err(RevocationError::Syntax { cause, .. }) if cause.line == 3
        ));
        assert!(matches!(
            append(&dir.path().join("r"), 1, "a\nb"),
            Err(RevocationError::MultilineComment)
        ));
    }
}
