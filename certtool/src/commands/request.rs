//! `request`: the certificate request GNS's `GetCertificateRequest` would return for this key
//! and identity (key type, key, identity fields; no times or app ids: the CA sets those), as a
//! `SOCKWORKS CERT REQUEST` block or, with `--raw`, the protobuf bytes themselves.

use anyhow::{Context, Result};
use prost::Message;
use sockworks_engine::crypto::{ca, pem};

use super::{emit, load_private_key, report};
use crate::cli::RequestArgs;
use crate::files;
use crate::identity_rules::issuable_identity;

/// Runs `request`.
pub fn run(args: &RequestArgs) -> Result<()> {
    let identity = issuable_identity(&args.identity)?;
    let key = load_private_key(&args.key).context("--key")?;
    let request = ca::make_request(&identity, &key.public_key());
    if args.raw {
        // invariant: clap makes --raw require --out.
        let out = args.out.as_deref().context("--raw needs --out")?;
        files::write_public_bytes(out, &request.encode_to_vec(), args.force)?;
        return Ok(());
    }
    let summary = super::inspect::request_summary(&request);
    let mut text = pem::write_cert_request_pem(&request);
    text.push_str(&report::request_text(&summary));
    emit(args.out.as_deref(), &text, args.force)
}
