//! Reading inputs and writing outputs safely: private keys are created with mode 0600 and
//! never replace an existing file unless asked; a CA key that others can read is refused;
//! inputs are bounded in size (no certificate, request or key is anywhere near 1 MiB).

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Largest input file read (keys, certificates, requests are a few hundred bytes).
pub const MAX_INPUT: u64 = 1 << 20;

/// Why a file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// An I/O failure.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        cause: io::Error,
    },
    /// The output exists and `--force` was not given.
    #[error("{0} already exists; pass --force to replace it")]
    Exists(PathBuf),
    /// The input is larger than [`MAX_INPUT`].
    #[error("{0}: larger than {MAX_INPUT} bytes, not a key, certificate or request")]
    TooLarge(PathBuf),
    /// A private key readable by group or others.
    #[error(
        "{path}: mode {mode:04o} lets other users read this private key; run `chmod 600 {path}`"
    )]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> FileError + '_ {
    move |cause| FileError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// Reads at most [`MAX_INPUT`] bytes from `path`, or from standard input for `-`.
pub fn read_input(path: &Path) -> Result<Vec<u8>, FileError> {
    let mut data = Vec::new();
    if path == Path::new("-") {
        io::stdin()
            .lock()
            .take(MAX_INPUT + 1)
            .read_to_end(&mut data)
            .map_err(io_err(path))?;
    } else {
        fs::File::open(path)
            .and_then(|f| f.take(MAX_INPUT + 1).read_to_end(&mut data))
            .map_err(io_err(path))?;
    }
    if data.len() as u64 > MAX_INPUT {
        return Err(FileError::TooLarge(path.to_path_buf()));
    }
    Ok(data)
}

/// Reads a text input (see [`read_input`]); invalid UTF-8 is replaced, so binary input still
/// reaches the caller's format detection.
pub fn read_text(path: &Path) -> Result<String, FileError> {
    read_input(path).map(|d| String::from_utf8_lossy(&d).into_owned())
}

/// Refuses a private key file that group or others may read, write or execute.
pub fn check_private(path: &Path) -> Result<(), FileError> {
    let mode = fs::metadata(path)
        .map_err(io_err(path))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(FileError::TooOpen {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Reads a private key file after [`check_private`].
pub fn read_private(path: &Path) -> Result<String, FileError> {
    check_private(path)?;
    read_text(path)
}

/// Writes a private key: created with mode 0600 (never briefly wider); an existing file is
/// refused, or replaced with `force`.
pub fn write_private(path: &Path, contents: &str, force: bool) -> Result<(), FileError> {
    write_new(path, contents.as_bytes(), force, 0o600)
}

/// Writes a public file (certificate, request, public key) with mode 0644, with the same
/// overwrite rule as [`write_private`].
pub fn write_public(path: &Path, contents: &str, force: bool) -> Result<(), FileError> {
    write_new(path, contents.as_bytes(), force, 0o644)
}

/// [`write_public`] for bytes (raw protobuf).
pub fn write_public_bytes(path: &Path, contents: &[u8], force: bool) -> Result<(), FileError> {
    write_new(path, contents, force, 0o644)
}

fn write_new(path: &Path, contents: &[u8], force: bool, mode: u32) -> Result<(), FileError> {
    if force {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(path)(e)),
        }
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                FileError::Exists(path.to_path_buf())
            } else {
                io_err(path)(e)
            }
        })?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_are_0600_and_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        write_private(&p, "one", false).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(matches!(
            write_private(&p, "two", false),
            Err(FileError::Exists(_))
        ));
        assert_eq!(fs::read_to_string(&p).unwrap(), "one");
        write_private(&p, "two", true).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "two");
        check_private(&p).unwrap();
    }

    #[test]
    fn open_private_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        write_public(&p, "x", false).unwrap();
        assert!(matches!(
            read_private(&p),
            Err(FileError::TooOpen { mode: 0o644, .. })
        ));
    }

    #[test]
    fn oversized_inputs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        fs::write(&p, vec![b'a'; MAX_INPUT as usize + 1]).unwrap();
        assert!(matches!(read_input(&p), Err(FileError::TooLarge(_))));
    }
}
