//! `inspect`: recognises what a file holds and shows it (text or `--json`).
//!
//! Recognised, in this order: a `STEAMDATAGRAM CERT` block, a `SOCKWORKS CERT REQUEST` block,
//! an `OPENSSH PRIVATE KEY` block (only its public half is shown), an `ssh-ed25519` line, then
//! raw protobuf: a `CMsgSteamDatagramCertificateSigned` with cert bytes, else a
//! `CMsgSteamDatagramCertificateRequest` with a cert.

use anyhow::{Context, Result, bail};
use prost::Message;
use sockworks_engine::crypto::ca::{self, CaKey};
use sockworks_engine::crypto::pem;
use sockworks_engine::wire::proto::{CertificateRequest, CertificateSigned};

use super::{parse_public_key, report};
use crate::cli::InspectArgs;
use crate::{clock, files};

/// What a file holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A signed (or unsigned) certificate.
    Certificate(CertificateSigned),
    /// A certificate request.
    Request(CertificateRequest),
    /// A private key's public half.
    PrivateKey([u8; 32]),
    /// A public key.
    PublicKey([u8; 32]),
}

/// Recognises `data` (see the module documentation).
pub fn recognise(data: &[u8]) -> Result<Item> {
    if let Ok(text) = std::str::from_utf8(data) {
        if pem::find_pem_body(text, pem::CERT_PEM_TYPE).is_some() {
            return Ok(Item::Certificate(pem::read_cert_pem(text)?));
        }
        if pem::find_pem_body(text, pem::CERT_REQUEST_PEM_TYPE).is_some() {
            return Ok(Item::Request(pem::read_cert_request_pem(text)?));
        }
        if pem::find_pem_body(text, pem::PRIVATE_KEY_PEM_TYPE).is_some() {
            return Ok(Item::PrivateKey(CaKey::from_pem(text)?.public_key()));
        }
        if text.trim_start().starts_with("ssh-ed25519") {
            return Ok(Item::PublicKey(parse_public_key(text)?));
        }
        if text.trim_start().starts_with('-') {
            bail!("a text block of a kind this tool does not know");
        }
    }
    if let Ok(signed) = CertificateSigned::decode(data)
        && signed.cert.is_some()
    {
        return Ok(Item::Certificate(signed));
    }
    if let Ok(request) = CertificateRequest::decode(data)
        && request.cert.is_some()
    {
        return Ok(Item::Request(request));
    }
    bail!("not a certificate, certificate request, OpenSSH private key or ssh-ed25519 line")
}

/// Runs `inspect`.
pub fn run(args: &InspectArgs) -> Result<()> {
    let data = files::read_input(&args.input)?;
    let item = recognise(&data).with_context(|| format!("{}", args.input.display()))?;
    let ca_public = match (&args.ca_pub_key, &args.ca_pub_key_file) {
        (Some(line), _) => Some(parse_public_key(line).context("--ca-pub-key")?),
        (None, Some(path)) => Some(
            parse_public_key(&files::read_text(path)?)
                .with_context(|| format!("{}", path.display()))?,
        ),
        (None, None) => None,
    };
    let now = clock::unix_now();
    let (text, json) = match &item {
        Item::Certificate(signed) => {
            let summary = ca::inspect(signed, ca_public.as_ref())?;
            let b64 = pem::base64_encode(&signed.encode_to_vec(), "");
            (
                report::cert_text(&summary, now),
                report::cert_json(&summary, &b64, now),
            )
        }
        Item::Request(request) => {
            let summary = request_summary(request);
            let b64 = pem::base64_encode(&request.encode_to_vec(), "");
            (
                report::request_text(&summary),
                report::request_json(&summary, &b64),
            )
        }
        Item::PrivateKey(pk) => (
            report::key_text("private_key", pk),
            report::key_json("private_key", pk),
        ),
        Item::PublicKey(pk) => (
            report::key_text("public_key", pk),
            report::key_json("public_key", pk),
        ),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        print!("{text}");
    }
    Ok(())
}

/// What a request asks for.
pub fn request_summary(request: &CertificateRequest) -> report::RequestSummary {
    let body = request.cert.clone().unwrap_or_default();
    report::RequestSummary {
        identity: ca::certificate_identity(&body),
        public_key: body.key_data.as_deref().and_then(|k| k.try_into().ok()),
        pop_ids: body.gameserver_datacenter_ids,
    }
}
