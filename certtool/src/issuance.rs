//! What the CLI's `issue` and the service's `POST /v1/sign` share: validity windows, POP
//! codes, and the checks a certificate request must pass before the engine signs it
//! (`sockworks_engine::crypto::ca`).

use prost::Message;
use sockworks_engine::crypto::ca::{self, CaKey, IssueError, IssuePolicy};
use sockworks_engine::crypto::pem::{self, PemError};
use sockworks_engine::wire::identity::{Identity, IdentityError};
use sockworks_engine::wire::proto::{CertificateRequest, CertificateSigned};

use crate::identity_rules::{IdentityRefused, check_issuable};
use crate::unixtime::{self, SECS_PER_DAY, TimeError};

/// GNS's certtool default validity, in days (`k_nDefaultExpiryDays`).
pub const DEFAULT_DAYS: u32 = 730;

/// Why a validity window is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidityError {
    /// A time did not parse.
    #[error(transparent)]
    Time(#[from] TimeError),
    /// The expiry is not after the creation time.
    #[error("expiry {expiry} is not after creation time {created}")]
    Order {
        /// `time_created`.
        created: String,
        /// `time_expiry`.
        expiry: String,
    },
    /// The expiry would be past 2106-02-07, the end of GNS's 32-bit times.
    #[error("{days} days from {from} ends after 2106-02-07T06:28:15Z, the last certificate time")]
    TooLong {
        /// Requested days.
        days: u32,
        /// Start.
        from: String,
    },
    /// Zero days.
    #[error("a certificate must be valid for at least one day")]
    ZeroDays,
}

/// `time_created` and `time_expiry` (unix seconds) from the CLI's options: creation at
/// `not_before` or `now`; expiry at `expires`, or `days` (default [`DEFAULT_DAYS`]) later.
pub fn validity(
    now: u64,
    not_before: Option<&str>,
    days: Option<u32>,
    expires: Option<&str>,
) -> Result<(u32, u32), ValidityError> {
    let created = match not_before {
        Some(t) => unixtime::parse(t)?,
        None => u32::try_from(now)
            .map_err(|_| TimeError::NotRepresentable(unixtime::format_rfc3339(now)))?,
    };
    let expiry = match expires {
        Some(t) => unixtime::parse(t)?,
        None => expiry_after(created, days.unwrap_or(DEFAULT_DAYS))?,
    };
    if expiry <= created {
        return Err(ValidityError::Order {
            created: unixtime::format_rfc3339(created.into()),
            expiry: unixtime::format_rfc3339(expiry.into()),
        });
    }
    Ok((created, expiry))
}

/// `created + days` in unix seconds, if it fits GNS's 32-bit times.
pub fn expiry_after(created: u32, days: u32) -> Result<u32, ValidityError> {
    if days == 0 {
        return Err(ValidityError::ZeroDays);
    }
    u64::from(days)
        .checked_mul(SECS_PER_DAY)
        .and_then(|d| u32::try_from(u64::from(created) + d).ok())
        .ok_or_else(|| ValidityError::TooLong {
            days,
            from: unixtime::format_rfc3339(created.into()),
        })
}

/// A POP code that is not 3-4 lowercase letters or digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("POP code '{0}' must be 3 or 4 lowercase letters or digits (e.g. iad, sto2)")]
pub struct BadPop(pub String);

/// GNS POP ids of codes such as `iad`, `sto2`.
pub fn pop_ids(codes: &[String]) -> Result<Vec<u32>, BadPop> {
    codes
        .iter()
        .map(|c| {
            let ok = (3..=4).contains(&c.len())
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            if ok {
                Ok(ca::pop_id(c))
            } else {
                Err(BadPop(c.clone()))
            }
        })
        .collect()
}

/// Why a certificate request cannot be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// Neither a request block nor request protobuf.
    #[error("not a certificate request: {0}")]
    Decode(PemError),
    /// The request's identity fields are malformed.
    #[error("the request's identity is malformed: {0}")]
    Identity(IdentityError),
    /// The request names an identity no certificate may name.
    #[error(transparent)]
    Refused(#[from] IdentityRefused),
    /// The engine refused (no key, wrong key type, identity mismatch...).
    #[error(transparent)]
    Issue(#[from] IssueError),
}

/// Reads a request from a `SOCKWORKS CERT REQUEST` block or from raw protobuf bytes (what
/// `GetCertificateRequest` returns).
pub fn decode_request(data: &[u8]) -> Result<CertificateRequest, RequestError> {
    let text = std::str::from_utf8(data)
        .ok()
        .filter(|t| t.trim_start().starts_with('-'));
    let request = match text {
        Some(t) => pem::read_cert_request_pem(t).map_err(RequestError::Decode)?,
        None => CertificateRequest::decode(data).map_err(|_| {
            RequestError::Decode(PemError::Protobuf("CMsgSteamDatagramCertificateRequest"))
        })?,
    };
    if request.cert.is_none() {
        return Err(RequestError::Issue(IssueError::EmptyRequest));
    }
    Ok(request)
}

/// The identity a request names (`None` for none or localhost, which GNS's
/// `GetCertificateRequest` leaves out), refused if no certificate may name it.
pub fn requested_identity(request: &CertificateRequest) -> Result<Option<Identity>, RequestError> {
    let body = request
        .cert
        .as_ref()
        .ok_or(RequestError::Issue(IssueError::EmptyRequest))?;
    match ca::certificate_identity(body) {
        Ok(id) if id == Identity::localhost() => Ok(None),
        Ok(id) => {
            check_issuable(&id)?;
            Ok(Some(id))
        }
        Err(IdentityError::Absent) => Ok(None),
        Err(e) => Err(RequestError::Identity(e)),
    }
}

/// Signs `request` for `identity` (which the caller has checked with [`check_issuable`]);
/// the request's own identity, if any, must be the same.
pub fn sign_request(
    ca_key: &CaKey,
    request: &CertificateRequest,
    identity: Identity,
    app_ids: Vec<u32>,
    pop_ids: Option<Vec<u32>>,
    (time_created, time_expiry): (u32, u32),
) -> Result<CertificateSigned, RequestError> {
    let policy = IssuePolicy {
        app_ids,
        pop_ids,
        time_created,
        time_expiry,
        identity: Some(identity),
    };
    Ok(ca::issue_for_request(ca_key, request, &policy)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_defaults_to_730_days_from_now() {
        assert_eq!(
            validity(1_000, None, None, None),
            Ok((1_000, 1_000 + 730 * 86_400))
        );
        assert_eq!(
            validity(0, Some("2030-01-01T00:00:00Z"), Some(1), None),
            Ok((1_893_456_000, 1_893_542_400))
        );
        assert_eq!(
            validity(5, None, None, Some("1970-01-01T00:00:10Z")),
            Ok((5, 10))
        );
    }

    #[test]
    fn validity_refuses_inverted_zero_and_overlong_windows() {
        assert!(matches!(
            validity(10, None, None, Some("5")),
            Err(ValidityError::Order { .. })
        ));
        assert_eq!(
            validity(10, None, Some(0), None),
            Err(ValidityError::ZeroDays)
        );
        assert!(matches!(
            validity(10, None, Some(60_000), None),
            Err(ValidityError::TooLong { .. })
        ));
        assert!(matches!(
            validity(10, Some("soon"), None, None),
            Err(ValidityError::Time(_))
        ));
    }

    #[test]
    fn pop_codes_become_gns_ids() {
        assert_eq!(
            pop_ids(&["iad".to_owned(), "sto2".to_owned()]),
            Ok(vec![6_906_212, ca::pop_id("sto2")])
        );
        assert_eq!(pop_ids(&["IAD".to_owned()]), Err(BadPop("IAD".to_owned())));
        assert_eq!(pop_ids(&["ia".to_owned()]), Err(BadPop("ia".to_owned())));
    }

    #[test]
    fn requests_decode_from_pem_and_raw_bytes() {
        let id = Identity::parse("str:player-1").unwrap();
        let req = ca::make_request(&id, &[7; 32]);
        let raw = req.encode_to_vec();
        assert_eq!(decode_request(&raw).unwrap(), req);
        let text = pem::write_cert_request_pem(&req);
        assert_eq!(decode_request(text.as_bytes()).unwrap(), req);
        assert_eq!(requested_identity(&req).unwrap(), Some(id));
        assert!(decode_request(b"-----BEGIN NONSENSE-----\n").is_err());
        assert!(decode_request(&[0xff, 0xff, 0xff]).is_err());
        assert!(decode_request(b"").is_err());
    }

    #[test]
    fn unknown_identity_types_in_requests_are_refused() {
        let mut req = ca::make_request(&Identity::parse("str:x").unwrap(), &[7; 32]);
        if let Some(c) = req.cert.as_mut() {
            c.identity_string = Some("foo:bar".to_owned());
        }
        assert!(matches!(
            requested_identity(&req),
            Err(RequestError::Refused(_))
        ));
    }
}
