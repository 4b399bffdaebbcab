//! The CA service's routes, as a pure function of (request, now): no sockets here.
//!
//! | Route | Answer |
//! |---|---|
//! | `POST /v1/sign` + `Authorization: Bearer <token>` + request body | 200, the certificate (`STEAMDATAGRAM CERT` block and `#` lines) |
//! | same, token missing or unknown | 401 with `WWW-Authenticate: Bearer` |
//! | same, body not a request, bad key, identity malformed, unknown type or not allowed for the token | 400 with the reason |
//! | `GET /v1/ca` | 200, the CA public key line `ssh-ed25519 … ID<keyid>` |
//! | a known path with another method | 405 with `Allow` |
//! | anything else | 404 |

use sockworks_engine::crypto::ca::CaKey;
use sockworks_engine::wire::identity::Identity;

use super::http::{Request, Response};
use super::tokens::{Allowed, Tokens};
use crate::commands::issue::certificate_text;
use crate::identity_rules::issuable_identity;
use crate::issuance::{self, RequestError};

/// Path of the signing route.
pub const SIGN_PATH: &str = "/v1/sign";
/// Path of the CA public key route.
pub const CA_PATH: &str = "/v1/ca";

/// What the service signs with and grants.
#[derive(Debug)]
pub struct Service {
    /// The CA key.
    pub ca_key: CaKey,
    /// Who may ask, for what.
    pub tokens: Tokens,
    /// App ids put in every certificate.
    pub app_ids: Vec<u32>,
    /// POP ids put in every certificate (`None`: the request's).
    pub pop_ids: Option<Vec<u32>>,
    /// Validity of each certificate, in seconds from its `time_created`.
    pub lifetime: u32,
    /// `time_created` is this many seconds before the moment of signing (clock skew).
    pub backdate: u32,
}

/// A response and what to log about it (never the token).
#[derive(Debug)]
pub struct Outcome {
    /// The response.
    pub response: Response,
    /// A short note for the log line: the identity issued, or why not.
    pub note: String,
}

impl Outcome {
    fn text(status: u16, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            response: Response::text(status, message.clone()),
            note: message,
        }
    }
}

impl Service {
    /// Answers one request at unix time `now`.
    pub fn handle(&self, req: &Request, now: u64) -> Outcome {
        match (req.path.as_str(), req.method.as_str()) {
            (SIGN_PATH, "POST") => self.sign(req, now),
            (CA_PATH, "GET" | "HEAD") => {
                let mut o = Outcome::text(200, self.ca_key.public_key_line());
                o.note = "CA public key".to_owned();
                if req.method == "HEAD" {
                    o.response.body.clear();
                }
                o
            }
            (SIGN_PATH, _) => {
                let mut o = Outcome::text(405, "use POST for /v1/sign");
                o.response = o.response.with_header("Allow", "POST");
                o
            }
            (CA_PATH, _) => {
                let mut o = Outcome::text(405, "use GET for /v1/ca");
                o.response = o.response.with_header("Allow", "GET, HEAD");
                o
            }
            _ => Outcome::text(
                404,
                format!(
                    "no route {}; try POST {SIGN_PATH} or GET {CA_PATH}",
                    req.path
                ),
            ),
        }
    }

    fn sign(&self, req: &Request, now: u64) -> Outcome {
        let Some(allowed) = self.authorize(req) else {
            let mut o = Outcome::text(
                401,
                "a valid 'Authorization: Bearer <token>' header is required",
            );
            o.response = o
                .response
                .with_header("WWW-Authenticate", "Bearer realm=\"sockworks-cert\"");
            return o;
        };
        match self.sign_for(&allowed, &req.body, now) {
            Ok((text, identity)) => Outcome {
                response: Response {
                    status: 200,
                    content_type: "application/x-pem-file",
                    headers: Vec::new(),
                    body: text.into_bytes(),
                },
                note: format!("issued {identity}"),
            },
            Err(SignError::Request(e)) => Outcome::text(400, format!("{e}")),
            Err(SignError::NotAllowed(message)) => Outcome::text(400, message),
            Err(SignError::Internal(message)) => Outcome::text(500, message),
        }
    }

    /// The grants of the bearer token, if it is known.
    fn authorize(&self, req: &Request) -> Option<Allowed> {
        let value = req.header("authorization")?;
        let (scheme, token) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        self.tokens.authorize(token.trim().as_bytes())
    }

    fn sign_for(
        &self,
        allowed: &Allowed,
        body: &[u8],
        now: u64,
    ) -> Result<(String, Identity), SignError> {
        let request = issuance::decode_request(body)?;
        let identity = match issuance::requested_identity(&request)? {
            Some(id) if allowed.permits(&id.to_string()) => id,
            Some(id) => {
                return Err(SignError::NotAllowed(format!(
                    "this token may not get a certificate for {id} (allowed: {})",
                    allowed.patterns().join(" ")
                )));
            }
            None => implied_identity(allowed).ok_or_else(|| {
                SignError::NotAllowed(
                    "the request names no identity (set one before GetCertificateRequest)"
                        .to_owned(),
                )
            })?,
        };
        let created = u32::try_from(now)
            .map_err(|_| SignError::Internal("the clock is past 2106".to_owned()))?
            .saturating_sub(self.backdate);
        let expiry = created
            .checked_add(self.lifetime)
            .ok_or_else(|| SignError::Internal("expiry past 2106".to_owned()))?;
        let signed = issuance::sign_request(
            &self.ca_key,
            &request,
            identity.clone(),
            self.app_ids.clone(),
            self.pop_ids.clone(),
            (created, expiry),
        )?;
        let text = certificate_text(&signed, &self.ca_key, now)
            .map_err(|e| SignError::Internal(e.to_string()))?;
        Ok((text, identity))
    }

    /// The CA public key line (`GET /v1/ca`).
    pub fn ca_line(&self) -> String {
        self.ca_key.public_key_line()
    }
}

/// A token whose only pattern is one exact identity grants that identity to requests that
/// name none.
fn implied_identity(allowed: &Allowed) -> Option<Identity> {
    match allowed.patterns() {
        [only] if !only.contains('*') => issuable_identity(only).ok(),
        _ => None,
    }
}

enum SignError {
    Request(RequestError),
    NotAllowed(String),
    Internal(String),
}

impl From<RequestError> for SignError {
    fn from(e: RequestError) -> Self {
        SignError::Request(e)
    }
}

#[cfg(test)]
mod tests;
