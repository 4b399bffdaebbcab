//! How certificates, requests and keys are shown: text in GNS certtool's `#Name . . . : value`
//! style (with exact unix times beside RFC 3339 ones, where GNS prints `ctime`), and JSON in
//! which every time is an exact integer plus an RFC 3339 string (GNS prints `1.79645e+09`).
//!
//! Key ids are 64-bit: JSON carries them as decimal strings, as GNS's certtool does, so that
//! JavaScript readers do not round them.

use serde_json::{Value, json};
use sockworks_engine::crypto::ca::{self, CertSummary};
use sockworks_engine::crypto::pem;
use sockworks_engine::wire::identity::{Identity, IdentityError};

use crate::unixtime::format_rfc3339;

/// Whether a certificate is inside its validity window at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// created ≤ now < expiry.
    Valid,
    /// now ≥ expiry.
    Expired,
    /// now < created.
    NotYetValid,
    /// No times in the certificate.
    Undated,
}

impl Status {
    /// Status of `summary` at `now`.
    pub fn of(summary: &CertSummary, now: u64) -> Self {
        match (summary.time_created, summary.time_expiry) {
            (_, Some(e)) if now >= u64::from(e) => Status::Expired,
            (Some(c), _) if now < u64::from(c) => Status::NotYetValid,
            (None, None) => Status::Undated,
            _ => Status::Valid,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Status::Valid => "valid",
            Status::Expired => "expired",
            Status::NotYetValid => "not_yet_valid",
            Status::Undated => "undated",
        }
    }
}

/// `ssh-ed25519 <b64>  ID<keyid>`: GNS's form (an empty comment, then ` ID…`).
pub fn key_line(public_key: &[u8; 32]) -> String {
    format!(
        "{} ID{}",
        pem::write_public_key(public_key, Some("")),
        ca::key_id(public_key)
    )
}

fn identity_text(identity: &Result<Identity, IdentityError>) -> String {
    match identity {
        Ok(id) => id.to_string(),
        Err(IdentityError::Absent) => "(none: a CA or intermediate certificate)".to_owned(),
        Err(e) => format!("(malformed: {e})"),
    }
}

fn identity_json(identity: &Result<Identity, IdentityError>) -> Value {
    match identity {
        Ok(id) => json!(id.to_string()),
        _ => Value::Null,
    }
}

fn time_text(t: Option<u32>) -> String {
    t.map_or_else(
        || "(absent)".to_owned(),
        |t| format!("{} ({t})", format_rfc3339(t.into())),
    )
}

fn pop_codes(ids: &[u32]) -> Vec<String> {
    ids.iter().map(|&id| ca::pop_code(id)).collect()
}

/// The `#` lines describing a certificate (what follows the block in `issue`'s output).
pub fn cert_text(s: &CertSummary, now: u64) -> String {
    let mut out = String::new();
    let mut line = |name: &str, value: String| out.push_str(&format!("#{name}: {value}\n"));
    // GNS's order (public key, created, expires, CA key id, apps, POPs), ours interleaved.
    match &s.public_key {
        Some(pk) => line("Public key . . . ", key_line(pk)),
        None => line(
            "Public key . . . ",
            "(not a 32-byte Ed25519 key)".to_owned(),
        ),
    }
    line("Identity . . . . ", identity_text(&s.identity));
    line("Created. . . . . ", time_text(s.time_created));
    line("Expires. . . . . ", time_text(s.time_expiry));
    let status = match Status::of(s, now) {
        Status::Valid => "valid now",
        Status::Expired => "EXPIRED",
        Status::NotYetValid => "not yet valid",
        Status::Undated => "no validity times",
    };
    line(
        "Status . . . . . ",
        format!("{status} (at {})", format_rfc3339(now)),
    );
    line(
        "CA key ID. . . . ",
        s.ca_key_id
            .map_or_else(|| "(none: unsigned)".to_owned(), |id| id.to_string()),
    );
    let signature = match (s.signed, s.signature_valid) {
        (false, _) => "none",
        (true, Some(true)) => "verified with the given CA key",
        (true, Some(false)) => "DOES NOT VERIFY with the given CA key",
        (true, None) => "present, not checked (pass --ca-pub-key to check)",
    };
    line("Signature. . . . ", signature.to_owned());
    if !s.app_ids.is_empty() {
        let ids: Vec<String> = s.app_ids.iter().map(u32::to_string).collect();
        line("App ID(s). . . . ", ids.join(" "));
    }
    if !s.pop_ids.is_empty() {
        line("POP ID(s). . . . ", pop_codes(&s.pop_ids).join(" "));
    }
    if s.has_private_key {
        line(
            "Private key. . . ",
            "included (private_key_data)".to_owned(),
        );
    }
    out
}

/// A certificate as one JSON object; `cert_b64` is the whole signed blob, unwrapped.
pub fn cert_json(s: &CertSummary, cert_b64: &str, now: u64) -> Value {
    let time = |t: Option<u32>| t.map_or(Value::Null, |t| json!(t));
    let time_str = |t: Option<u32>| t.map_or(Value::Null, |t| json!(format_rfc3339(t.into())));
    json!({
        "type": "certificate",
        "identity": identity_json(&s.identity),
        "public_key": s.public_key.as_ref().map(|k| pem::write_public_key(k, None)),
        "public_key_id": s.key_id.to_string(),
        "ca_key_id": s.ca_key_id.map(|id| id.to_string()),
        "signed": s.signed,
        "signature_valid": s.signature_valid,
        "time_created": time(s.time_created),
        "time_created_rfc3339": time_str(s.time_created),
        "time_expiry": time(s.time_expiry),
        "time_expiry_rfc3339": time_str(s.time_expiry),
        "status": Status::of(s, now).as_str(),
        "checked_at": now,
        "app_ids": s.app_ids,
        "pop_ids": pop_codes(&s.pop_ids),
        "has_private_key": s.has_private_key,
        "cert": cert_b64,
    })
}

/// What a certificate request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSummary {
    /// Its identity (`Absent` if none).
    pub identity: Result<Identity, IdentityError>,
    /// Its key, if a 32-byte Ed25519 key.
    pub public_key: Option<[u8; 32]>,
    /// POP ids it asks for.
    pub pop_ids: Vec<u32>,
}

/// The `#` lines describing a request.
pub fn request_text(r: &RequestSummary) -> String {
    let mut out = String::from("#Certificate request\n");
    out.push_str(&format!(
        "#Identity . . . . : {}\n",
        match &r.identity {
            Err(IdentityError::Absent) => "(none)".to_owned(),
            other => identity_text(other),
        }
    ));
    match &r.public_key {
        Some(pk) => out.push_str(&format!("#Public key . . . : {}\n", key_line(pk))),
        None => out.push_str("#Public key . . . : (not a 32-byte Ed25519 key)\n"),
    }
    if !r.pop_ids.is_empty() {
        out.push_str(&format!(
            "#POP ID(s). . . . : {}\n",
            pop_codes(&r.pop_ids).join(" ")
        ));
    }
    out
}

/// A request as one JSON object; `request_b64` is the whole request blob.
pub fn request_json(r: &RequestSummary, request_b64: &str) -> Value {
    json!({
        "type": "certificate_request",
        "identity": identity_json(&r.identity),
        "public_key": r.public_key.as_ref().map(|k| pem::write_public_key(k, None)),
        "public_key_id": r.public_key.as_ref().map_or(0, ca::key_id).to_string(),
        "pop_ids": pop_codes(&r.pop_ids),
        "request": request_b64,
    })
}

/// A key (never its private half): `kind` is `private_key` or `public_key`.
pub fn key_text(kind: &str, public_key: &[u8; 32]) -> String {
    let what = if kind == "private_key" {
        "#Private key (Ed25519, OpenSSH); its public key:\n"
    } else {
        "#Public key (Ed25519)\n"
    };
    format!(
        "{what}#Public key . . . : {}\n#Key ID . . . . . : {}\n",
        key_line(public_key),
        ca::key_id(public_key)
    )
}

/// A key as one JSON object (never its private half).
pub fn key_json(kind: &str, public_key: &[u8; 32]) -> Value {
    json!({
        "type": kind,
        "public_key": pem::write_public_key(public_key, None),
        "public_key_id": ca::key_id(public_key).to_string(),
    })
}
