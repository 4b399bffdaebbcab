//! The `--fakeip-state` file: loading it at start and replacing it atomically.
//!
//! ```text
//!  save(path, text): path.tmp ─ write, fsync ─► rename over path ─► fsync the directory
//! ```
//! A crash leaves either the old file or the new one, never a mix; a stray `path.tmp` from a
//! crash mid-write is simply overwritten by the next save.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::fakeip::{FakeIpTable, StateError};

/// Why the state file could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// Reading it failed (other than not existing).
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Its content is not a valid table.
    #[error("{path}: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: StateError,
    },
}

/// The table in `path`, or an empty one if the file does not exist yet.
pub fn load(path: &Path, max: usize, key: [u8; 32]) -> Result<FakeIpTable, LoadError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(FakeIpTable::new(max, key)),
        Err(source) => {
            return Err(LoadError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    FakeIpTable::from_text(&text, max, key).map_err(|source| LoadError::Invalid {
        path: path.to_owned(),
        source,
    })
}

/// Replaces `path` with `text`: written to `path.tmp`, synced, renamed over `path`, and the
/// directory synced, so the file is always either the old or the new table.
pub fn save(path: &Path, text: &str) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // Best effort: some filesystems refuse to sync a directory.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_an_empty_table_and_a_saved_one_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fakeips");
        let mut t = load(&path, 10, [1; 32]).unwrap();
        assert!(t.is_empty());
        let ip = t.allocate("str:alice", 2).unwrap().ip;
        save(&path, &t.to_text()).unwrap();
        assert!(!dir.path().join("fakeips.tmp").exists());
        let back = load(&path, 10, [2; 32]).unwrap();
        assert_eq!(back.get("str:alice").unwrap().ip, ip);
        // Saving again replaces the file whole.
        t.allocate("str:bob", 1).unwrap();
        save(&path, &t.to_text()).unwrap();
        assert_eq!(load(&path, 10, [2; 32]).unwrap().len(), 2);
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad");
        fs::write(&path, "hello\n").unwrap();
        let e = load(&path, 10, [1; 32]).unwrap_err();
        assert!(matches!(e, LoadError::Invalid { .. }));
        assert!(e.to_string().contains("bad"), "{e}");
        let e = load(dir.path(), 10, [1; 32]).unwrap_err();
        assert!(matches!(e, LoadError::Io { .. }), "a directory: {e}");
    }
}
