//! `gen-ca` and `gen-key`: an Ed25519 key pair from the OS's randomness, the private key as an
//! unencrypted OpenSSH key (mode 0600), the public key line (`ssh-ed25519 … ID<keyid>`) on
//! stdout and in `<out>.pub`.
//!
//! The private key is written in `ssh-keygen`'s layout (comment and padding), which both GNS
//! and OpenSSH read; GNS's own padding-less layout is refused by `ssh-keygen`.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Result;
use sockworks_engine::crypto::ca::CaKey;
use sockworks_engine::crypto::pem;

use crate::cli::GenKeyArgs;
use crate::files;

/// Which kind of key is made (only the message differs: the formats are the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    /// A CA signing key.
    Ca,
    /// A peer's key.
    EndEntity,
}

/// Generates and writes a key pair.
pub fn generate(args: &GenKeyArgs, role: KeyRole) -> Result<()> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no OS randomness: {e}"))?;
    let key = CaKey::from_seed(seed);
    let line = key.public_key_line();
    let pub_path = public_path(&args.out);
    // Check both names before writing either, so a refusal leaves no half pair behind.
    if !args.force {
        for p in [&args.out, &pub_path] {
            if p.exists() {
                return Err(files::FileError::Exists(p.clone()).into());
            }
        }
    }
    let private =
        pem::write_openssh_private_key_padded(&key.seed(), &format!("ID{}", key.key_id()));
    files::write_private(&args.out, &private, args.force)?;
    files::write_public(&pub_path, &format!("{line}\n"), args.force)?;
    println!("{line}");
    let what = match role {
        KeyRole::Ca => "CA key",
        KeyRole::EndEntity => "key",
    };
    eprintln!(
        "wrote {what} {} (private, mode 0600) and {} (public), key id {}",
        args.out.display(),
        pub_path.display(),
        key.key_id()
    );
    Ok(())
}

/// `<out>.pub`.
fn public_path(out: &std::path::Path) -> PathBuf {
    let mut name = OsString::from(out.as_os_str());
    name.push(".pub");
    PathBuf::from(name)
}
