//! The checks `SetCertificate` makes before a certificate becomes ours (GNS's
//! `InternalSetCertificate`, spec §2.7), pure: the input's form (raw
//! `CMsgSteamDatagramCertificateSigned`, or our PEM text, with or without `private_key_data`),
//! the private key, the identity, AppID 0, the validity period and our own trust store, with
//! the current Unix time passed in. Each refusal says why.

use prost::Message as _;
use sockworks_engine::crypto::{TrustStore, ca, pem};
use sockworks_engine::proto::handshake::{LocalCertError, LocalIdentity};
use sockworks_engine::wire::identity::Identity;
use sockworks_engine::wire::proto::{Certificate, CertificateSigned};

/// The PEM block a certificate comes in.
const CERT_BEGIN: &str = "-----BEGIN STEAMDATAGRAM CERT-----";

/// A certificate that passed: what to install.
#[derive(Debug)]
pub(crate) struct Accepted {
    /// The private key (seed) the certificate names.
    pub seed: [u8; 32],
    /// The certificate as peers get it (no `private_key_data`).
    pub cert: CertificateSigned,
    /// The identity it names (ours from now on).
    pub identity: Identity,
    /// Its validity, Unix seconds.
    pub time_created: u32,
    /// Its expiry, Unix seconds.
    pub time_expiry: u32,
}

/// Reads `input`: PEM text holding a `STEAMDATAGRAM CERT` block, else the raw protobuf.
pub(crate) fn parse(input: &[u8]) -> Result<CertificateSigned, String> {
    if let Ok(text) = std::str::from_utf8(input)
        && text.contains(CERT_BEGIN)
    {
        return pem::read_cert_pem(text).map_err(|e| format!("Invalid cert PEM: {e}"));
    }
    let cert = CertificateSigned::decode(input)
        .map_err(|_| "Cert data is not a valid CMsgSteamDatagramCertificateSigned".to_owned())?;
    if cert.cert.is_none() {
        return Err("Cert data is empty (no certificate)".to_owned());
    }
    Ok(cert)
}

/// Judges `signed` as our certificate. `our_key` is the key `GetCertificateRequest` made (used
/// when the input carries no `private_key_data`); `our_identity` the identity we have (a
/// certificate for another one is refused, unless ours is unset or localhost).
pub(crate) fn accept(
    mut signed: CertificateSigned,
    our_key: Option<[u8; 32]>,
    our_identity: Option<&Identity>,
    trust: &TrustStore,
    unix_now: u64,
) -> Result<Accepted, String> {
    let bytes = signed.cert.as_deref().unwrap_or_default();
    let body = Certificate::decode(bytes).map_err(|_| "Cert body does not decode".to_owned())?;
    // GNS's order: the identity first, then the key.
    if let (Some(ours), Ok(theirs)) = (our_identity, ca::certificate_identity(&body))
        && *ours != Identity::localhost()
        && *ours != theirs
    {
        return Err(format!("Cert is for identity '{theirs}'. We are '{ours}'"));
    }
    let seed: [u8; 32] = match signed.private_key_data.take() {
        Some(k) => k.as_slice().try_into().map_err(|_| {
            format!(
                "Invalid private key: expected a 32-byte Ed25519 seed, got {} bytes",
                k.len()
            )
        })?,
        None => our_key.ok_or_else(|| {
            "No private key: call GetCertificateRequest first, or pass a cert with private_key_data"
                .to_owned()
        })?,
    };
    let local = LocalIdentity::with_ca_certificate(seed, signed.clone()).map_err(|e| match e {
        LocalCertError::KeyMismatch => {
            "Cert has invalid public key: it certifies another key than our private key".to_owned()
        }
        LocalCertError::NoIdentity => {
            "Cert names no identity (or localhost): nothing to authenticate as".to_owned()
        }
        other => format!("Cert is invalid: {other}"),
    })?;
    if !body.app_ids.is_empty() && !body.app_ids.contains(&0) {
        return Err(format!(
            "Cert is not valid for AppID 0 (it lists {:?})",
            body.app_ids
        ));
    }
    let time_expiry = body.time_expiry.unwrap_or(0);
    if u64::from(time_expiry) < unix_now {
        return Err(format!(
            "Cert expired at {time_expiry} (current time {unix_now})"
        ));
    }
    if signed.ca_signature.is_none() {
        return Err("Cert is not signed by a CA".to_owned());
    }
    if trust.cas().is_empty() {
        // GNS only warns when it cannot verify its own cert: peers judge it by their trust.
        tracing::warn!(
            "SetCertificate: no trusted CA configured, so we cannot verify our own cert; continuing"
        );
    } else {
        trust
            .check(&signed, &body, 0, Some(unix_now))
            .map_err(|e| format!("Cert is not trusted by our trust store: {e}"))?;
    }
    Ok(Accepted {
        seed,
        cert: signed,
        identity: local.identity,
        time_created: body.time_created.unwrap_or(0),
        time_expiry,
    })
}

#[cfg(test)]
mod tests {
    use super::{accept, parse};
    use prost::Message as _;
    use sockworks_engine::crypto::ca::{self, CaKey, CertParams};
    use sockworks_engine::crypto::keys::IdentityKey;
    use sockworks_engine::crypto::{TrustStore, TrustedCa, pem};
    use sockworks_engine::wire::identity::Identity;
    use sockworks_engine::wire::proto::CertificateSigned;

    const NOW: u64 = 1_750_000_000;

    fn issue(ca: &CaKey, key: [u8; 32], who: &str, expiry: u64) -> CertificateSigned {
        ca::issue(
            ca,
            &CertParams {
                identity: Some(who.parse().unwrap()),
                public_key: IdentityKey::from_seed(key).public_bytes(),
                app_ids: vec![0],
                pop_ids: vec![],
                time_created: (NOW - 60) as u32,
                time_expiry: expiry as u32,
            },
        )
        .unwrap()
    }

    fn trusting(ca: &CaKey) -> TrustStore {
        let mut t = TrustStore::new();
        t.add_ca(TrustedCa::new(ca.public_key()));
        t
    }

    #[test]
    fn raw_and_pem_forms_both_parse() {
        let ca = CaKey::from_seed([1; 32]);
        let c = issue(&ca, [2; 32], "str:a", NOW + 99);
        assert_eq!(parse(&c.encode_to_vec()).unwrap(), c);
        assert_eq!(parse(pem::write_cert_pem(&c).as_bytes()).unwrap(), c);
        assert!(parse(b"not a cert").is_err());
    }

    #[test]
    fn a_matching_trusted_cert_is_accepted_and_loses_its_private_key() {
        let ca = CaKey::from_seed([1; 32]);
        let mut c = issue(&ca, [2; 32], "str:a", NOW + 99);
        c.private_key_data = Some(vec![2; 32]);
        let a = accept(c, None, None, &trusting(&ca), NOW).unwrap();
        assert_eq!(a.identity, "str:a".parse::<Identity>().unwrap());
        assert_eq!(a.seed, [2; 32]);
        assert!(a.cert.private_key_data.is_none());
    }

    #[test]
    fn refusals_say_why() {
        let ca = CaKey::from_seed([1; 32]);
        let other = CaKey::from_seed([9; 32]);
        let t = trusting(&ca);
        let c = issue(&ca, [2; 32], "str:a", NOW + 99);
        let e = accept(c.clone(), None, None, &t, NOW).unwrap_err();
        assert!(e.contains("No private key"), "{e}");
        let e = accept(c.clone(), Some([3; 32]), None, &t, NOW).unwrap_err();
        assert!(e.contains("another key"), "{e}");
        let b: Identity = "str:b".parse().unwrap();
        let e = accept(c.clone(), Some([2; 32]), Some(&b), &t, NOW).unwrap_err();
        assert!(e.contains("We are 'str:b'"), "{e}");
        let e = accept(c, Some([2; 32]), None, &trusting(&other), NOW).unwrap_err();
        assert!(e.contains("not trusted") && e.contains("not known"), "{e}");
        let old = issue(&ca, [2; 32], "str:a", NOW - 1);
        let e = accept(old, Some([2; 32]), None, &t, NOW).unwrap_err();
        assert!(e.contains("expired"), "{e}");
    }
}
