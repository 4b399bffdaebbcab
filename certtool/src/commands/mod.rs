//! One module per subcommand; [`run`] dispatches. Commands return `anyhow` errors whose
//! context chain is what the user sees (`error: <what>: <why>`).

use std::path::Path;

use anyhow::{Context, Result};
use sockworks_engine::crypto::ca::CaKey;
use sockworks_engine::crypto::pem;

use crate::cli::Command;
use crate::files;

pub mod inspect;
pub mod issue;
pub mod keys;
pub mod report;
pub mod request;
pub mod revoke;
pub mod ticket;

/// Runs one subcommand.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::GenCa(args) => keys::generate(&args, keys::KeyRole::Ca),
        Command::GenKey(args) => keys::generate(&args, keys::KeyRole::EndEntity),
        Command::Issue(args) => issue::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Revoke(args) => revoke::run(&args),
        Command::Request(args) => request::run(&args),
        Command::Serve(args) => crate::serve::run(&args),
        Command::CreateHostedserverTicket(args) => ticket::run(&args),
    }
}

/// Loads an Ed25519 private key (OpenSSH PEM) from a file others cannot read.
pub fn load_private_key(path: &Path) -> Result<CaKey> {
    let text = files::read_private(path)?;
    CaKey::from_pem(&text).with_context(|| format!("{}: not a usable private key", path.display()))
}

/// A public key from an `ssh-ed25519` line, or from an OpenSSH private key's text; the key
/// must be a usable Ed25519 point.
pub fn parse_public_key(text: &str) -> Result<[u8; 32]> {
    let key = if pem::find_pem_body(text, pem::PRIVATE_KEY_PEM_TYPE).is_some() {
        CaKey::from_pem(text)?.public_key()
    } else {
        pem::read_public_key(text)?
    };
    check_public_key(&key)?;
    Ok(key)
}

/// Refuses bytes that are not an Ed25519 point, or a weak (small-order) one: no signature by
/// such a key would verify, so a certificate for it is useless.
pub fn check_public_key(key: &[u8; 32]) -> Result<()> {
    match ed25519_dalek::VerifyingKey::from_bytes(key) {
        Ok(k) if !k.is_weak() => Ok(()),
        _ => anyhow::bail!("the public key is not a valid Ed25519 key"),
    }
}

/// Writes `text` to `out` (public file mode) or stdout.
pub fn emit(out: Option<&Path>, text: &str, force: bool) -> Result<()> {
    match out {
        Some(p) => Ok(files::write_public(p, text, force)?),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}
