//! `revoke`: appends a key id (given, or the key of a certificate) to a revocation list, with
//! the date, the certificate's identity when known, and the reason as the line's comment.

use anyhow::{Context, Result};
use sockworks_engine::crypto::{ca, pem};

use crate::cli::RevokeArgs;
use crate::unixtime::format_rfc3339;
use crate::{clock, files, revocation};

/// Runs `revoke`.
pub fn run(args: &RevokeArgs) -> Result<()> {
    let mut comment = vec![format_rfc3339(clock::unix_now())];
    let key_id = match (args.key_id, &args.cert) {
        (Some(id), _) => id,
        (None, Some(path)) => {
            let text = files::read_text(path)?;
            let signed =
                pem::read_cert_pem(&text).with_context(|| format!("{}", path.display()))?;
            let summary = ca::inspect(&signed, None)?;
            if let Ok(id) = &summary.identity {
                comment.push(id.to_string());
            }
            anyhow::ensure!(
                summary.public_key.is_some(),
                "{}: the certificate has no Ed25519 key to revoke",
                path.display()
            );
            summary.key_id
        }
        // invariant: clap requires --key-id or --cert.
        (None, None) => anyhow::bail!("pass --key-id or --cert"),
    };
    if let Some(reason) = &args.reason {
        comment.push(reason.clone());
    }
    let added = revocation::append(&args.list, key_id, &comment.join(" "))?;
    if added {
        println!("revoked key id {key_id} in {}", args.list.display());
    } else {
        println!("key id {key_id} was already in {}", args.list.display());
    }
    Ok(())
}
