//! `issue`: an end-entity certificate for an identity and a key given directly or by a
//! certificate request, signed by the CA key; printed as GNS's certtool prints certificates
//! (the `STEAMDATAGRAM CERT` block, then `#` lines describing it).

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use sockworks_engine::crypto::ca::{self, CaKey, CertParams};
use sockworks_engine::crypto::pem;
use sockworks_engine::wire::identity::Identity;
use sockworks_engine::wire::proto::CertificateSigned;

use super::{check_public_key, emit, load_private_key, parse_public_key, report};
use crate::cli::IssueArgs;
use crate::identity_rules::issuable_identity;
use crate::{clock, files, issuance};

/// Runs `issue`.
pub fn run(args: &IssueArgs) -> Result<()> {
    let ca_key = load_private_key(&args.ca_key).context("CA key")?;
    let pop_ids = issuance::pop_ids(&args.pop)?;
    let now = clock::unix_now();
    let v = &args.validity;
    let times = issuance::validity(now, v.not_before.as_deref(), v.days, v.expires.as_deref())?;
    let identity = args
        .identity
        .as_deref()
        .map(issuable_identity)
        .transpose()?;
    if !args.app.contains(&0) {
        eprintln!("note: app ids do not include 0, the app id open-source GNS peers check");
    }
    let signed = match &args.subject.request {
        Some(path) => from_request(&ca_key, path, identity, args, pop_ids, times)?,
        None => {
            let public_key = subject_public_key(args)?;
            let identity = identity
                .ok_or_else(|| anyhow!("--identity is required (e.g. --identity str:my-server)"))?;
            ca::issue(
                &ca_key,
                &CertParams {
                    identity: Some(identity),
                    public_key,
                    app_ids: args.app.clone(),
                    pop_ids,
                    time_created: times.0,
                    time_expiry: times.1,
                },
            )?
        }
    };
    let Some(key_path) = &args.with_private_key else {
        let text = certificate_text(&signed, &ca_key, now)?;
        return emit(args.out.as_deref(), &text, args.force);
    };
    let bundle = with_private_key(signed, key_path)?;
    let text = certificate_text(&bundle, &ca_key, now)?;
    match &args.out {
        Some(out) => Ok(files::write_private(out, &text, args.force)?),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

/// Adds the certified key's private half as `private_key_data` (the 32-byte seed GNS's
/// `SetCertificate` reads); the key must be the one the certificate names. The field is
/// outside the signed bytes, so the signature still verifies.
fn with_private_key(mut signed: CertificateSigned, key_path: &Path) -> Result<CertificateSigned> {
    let key = load_private_key(key_path).context("--with-private-key")?;
    let summary = ca::inspect(&signed, None)?;
    if summary.public_key != Some(key.public_key()) {
        bail!(
            "--with-private-key {} is not the key the certificate certifies",
            key_path.display()
        );
    }
    signed.private_key_data = Some(key.seed().to_vec());
    Ok(signed)
}

/// The certificate block followed by GNS-style `#` lines, as `issue` and `serve` return it.
pub fn certificate_text(signed: &CertificateSigned, ca_key: &CaKey, now: u64) -> Result<String> {
    let summary = ca::inspect(signed, Some(&ca_key.public_key()))?;
    let mut text = pem::write_cert_pem(signed);
    text.push_str(&report::cert_text(&summary, now));
    Ok(text)
}

fn subject_public_key(args: &IssueArgs) -> Result<[u8; 32]> {
    let s = &args.subject;
    if let Some(line) = &s.pub_key {
        return parse_public_key(line).context("--pub-key");
    }
    if let Some(path) = &s.pub_key_file {
        let text = files::read_text(path)?;
        return parse_public_key(&text).with_context(|| format!("{}", path.display()));
    }
    // invariant: clap requires one of --pub-key, --pub-key-file, --request.
    bail!("one of --pub-key, --pub-key-file or --request is required")
}

fn from_request(
    ca_key: &CaKey,
    path: &Path,
    identity: Option<Identity>,
    args: &IssueArgs,
    pop_ids: Vec<u32>,
    times: (u32, u32),
) -> Result<CertificateSigned> {
    let data = files::read_input(path)?;
    let context = || format!("request {}", path.display());
    let request = issuance::decode_request(&data).with_context(context)?;
    if let Some(key) = request
        .cert
        .as_ref()
        .and_then(|c| c.key_data.as_deref())
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
    {
        check_public_key(&key).with_context(context)?;
    }
    let requested = issuance::requested_identity(&request).with_context(context)?;
    let identity = match (identity, requested) {
        (Some(given), Some(asked)) if given != asked => {
            bail!("--identity {given} differs from the identity the request names, {asked}")
        }
        (Some(id), _) | (None, Some(id)) => id,
        (None, None) => bail!("the request names no identity; pass --identity"),
    };
    let pops = (!pop_ids.is_empty()).then_some(pop_ids);
    issuance::sign_request(ca_key, &request, identity, args.app.clone(), pops, times)
        .with_context(context)
}
