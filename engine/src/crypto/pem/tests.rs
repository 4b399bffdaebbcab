use super::*;
use crate::wire::proto::Certificate;

/// `ssh-keygen -t ed25519 -N "" -C test@x` (comment and padding after the secret).
const SSH_KEYGEN_PRIVATE: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACDKOwRl4qAZMFDwtPR3GVgEAPKpp6vhGFnfCQrzgfvGxQAAAJB+CI9+fgiP
fgAAAAtzc2gtZWQyNTUxOQAAACDKOwRl4qAZMFDwtPR3GVgEAPKpp6vhGFnfCQrzgfvGxQ
AAAECGTOAzL8mlFHUR9robuMqvBL7BRJs/NxTm67mts+ueAco7BGXioBkwUPC09HcZWAQA
8qmnq+EYWd8JCvOB+8bFAAAABnRlc3RAeAECAwQFBgc=
-----END OPENSSH PRIVATE KEY-----
";
const SSH_KEYGEN_PUBLIC: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMo7BGXioBkwUPC09HcZWAQA8qmnq+EYWd8JCvOB+8bF test@x";
/// `ssh-keygen -t ed25519 -N pw`: bcrypt + aes256-ctr.
const SSH_KEYGEN_ENCRYPTED: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIAAAAGYmNyeXB0AAAAGAAAABCqTywcoO
8jL1pTKk6ficogAAAAEAAAAAEAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIJmpIMKBBhlflBrU
-----END OPENSSH PRIVATE KEY-----
";
/// GNS's hard-coded root CA key (`STEAMNETWORKINGSOCKETS_HARDCODED_ROOT_CA_KEY`).
const VALVE_ROOT: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJrsoE4XUc5iaNVpACyh4fobLbwm02tOo6AIOtNygpuE ID18220590129359924542";

#[test]
fn base64_matches_gns() {
    assert_eq!(base64_encode(b"", ""), "");
    assert_eq!(base64_encode(b"f", ""), "Zg==");
    assert_eq!(base64_encode(b"fo", ""), "Zm8=");
    assert_eq!(base64_encode(b"foo", "\n"), "Zm9v\n");
    let long = base64_encode(&[7u8; 100], "\r\n");
    let lines: Vec<&str> = long.split("\r\n").collect();
    assert_eq!(lines[0].len(), 72);
    assert_eq!(lines.last(), Some(&""));
    assert_eq!(base64_decode(&long).unwrap(), vec![7u8; 100]);
    // Exactly 54 bytes = 72 characters: one line break, at the end.
    assert_eq!(base64_encode(&[1u8; 54], "\n").matches('\n').count(), 1);
    assert_eq!(base64_decode(" Zm\t9v\r\nYg== trailing!").unwrap(), b"foob");
    assert_eq!(base64_decode("Zm9vY").unwrap(), b"foo");
    assert_eq!(base64_decode("Zm9vYg").unwrap(), b"foob");
    assert_eq!(base64_decode("Zm9*"), Err(PemError::Base64('*')));
    assert_eq!(base64_decode("Zm-9"), Err(PemError::Base64('-')));
}

#[test]
fn locating_is_lenient_like_gns() {
    let body = locate_pem_body(
        " \n--begin  steamdatagram cert--\nQUJD\n---END STEAMDATAGRAM CERT-",
        CERT_PEM_TYPE,
    );
    assert_eq!(body, Some("QUJD\n"));
    // Prefix match of the type, garbage after the footer ignored.
    let t = "-----BEGIN STEAMDATAGRAM CERTIFICATE-----\nQUJD\n-----END STEAMDATAGRAM CERT-----\ngarbage";
    assert_eq!(locate_pem_body(t, CERT_PEM_TYPE), Some("QUJD\n"));
    // Must start the text; `find_pem_body` looks on any line.
    let commented = format!("#comment\n{t}");
    assert_eq!(locate_pem_body(&commented, CERT_PEM_TYPE), None);
    assert_eq!(find_pem_body(&commented, CERT_PEM_TYPE), Some("QUJD\n"));
    assert_eq!(locate_pem_body(t, PRIVATE_KEY_PEM_TYPE), None);
    assert_eq!(
        locate_pem_body("-----BEGIN STEAMDATAGRAM CERT-----\nQUJD", CERT_PEM_TYPE),
        None
    );
    assert_eq!(
        locate_pem_body("-----BEGIN STEAMDATAGRAM\nCERT-----\n", CERT_PEM_TYPE),
        None
    );
    // A request block is never taken for a certificate.
    let req = write_cert_request_pem(&CertificateRequest::default());
    assert_eq!(find_pem_body(&req, CERT_PEM_TYPE), None);
}

#[test]
fn gns_private_key_round_trip_and_layout() {
    let seed = [0x42u8; 32];
    let pem = write_openssh_private_key(&seed);
    assert!(pem.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\r\n"));
    assert!(pem.ends_with("\r\n-----END OPENSSH PRIVATE KEY-----\r\n"));
    assert!(pem.split("\r\n").all(|l| l.len() <= 72));
    assert_eq!(read_openssh_private_key(&pem).unwrap(), seed);
    // GNS's body: magic, none, none, "", 1, pub blob (51), private section (no padding).
    let body = decode_pem(&pem, PRIVATE_KEY_PEM_TYPE).unwrap();
    let private_len = 8 + 51 + 4 + 64;
    assert_eq!(body.len(), 15 + 8 + 8 + 4 + 4 + 4 + 51 + 4 + private_len);
    assert_eq!(
        &body[body.len() - private_len..][..8],
        &[0x12, 0x34, 0x56, 0x78, 0x12, 0x34, 0x56, 0x78]
    );
    // Everything on one line still reads (certtool's inline `--ca-priv-key`).
    let one_line = pem.split_ascii_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(read_openssh_private_key(&one_line).unwrap(), seed);
}

#[test]
fn reads_ssh_keygen_keys() {
    let seed = read_openssh_private_key(SSH_KEYGEN_PRIVATE).unwrap();
    let public = read_public_key(SSH_KEYGEN_PUBLIC).unwrap();
    assert_eq!(IdentityKey::from_seed(seed).public_bytes(), public);
    assert_eq!(
        read_openssh_private_key(SSH_KEYGEN_ENCRYPTED),
        Err(PemError::Encrypted)
    );
    assert_eq!(
        read_openssh_private_key(SSH_KEYGEN_PUBLIC),
        Err(PemError::NoBlock(PRIVATE_KEY_PEM_TYPE))
    );
}

#[test]
fn private_key_consistency_checks() {
    let pem = write_openssh_private_key(&[1; 32]);
    let mut body = decode_pem(&pem, PRIVATE_KEY_PEM_TYPE).unwrap();
    let n = body.len();
    // Last byte of the third public copy.
    body[n - 1] ^= 1;
    let bad = encode_pem(PRIVATE_KEY_PEM_TYPE, &body, "\n", false);
    assert_eq!(read_openssh_private_key(&bad), Err(PemError::KeyMismatch));
    body[n - 1] ^= 1;
    // First check word.
    body[n - 127] ^= 1;
    let bad = encode_pem(PRIVATE_KEY_PEM_TYPE, &body, "\n", false);
    assert_eq!(read_openssh_private_key(&bad), Err(PemError::CheckMismatch));
    let bad = encode_pem(PRIVATE_KEY_PEM_TYPE, &body[..40], "\n", false);
    assert_eq!(read_openssh_private_key(&bad), Err(PemError::Malformed));
}

#[test]
fn public_keys() {
    let public = read_public_key(VALVE_ROOT).unwrap();
    let line = write_public_key(&public, None);
    assert_eq!(line, VALVE_ROOT.rsplit_once(' ').unwrap().0);
    assert_eq!(
        write_public_key(&public, Some("ID18220590129359924542")),
        VALVE_ROOT
    );
    assert_eq!(read_public_key(&line).unwrap(), public);
    assert_eq!(
        read_public_key("ssh-rsa AAAAB3Nza"),
        Err(PemError::NotPublicKey)
    );
    assert_eq!(
        read_public_key("ssh-ed25519 BBBB"),
        Err(PemError::NotPublicKey)
    );
    assert_eq!(
        read_public_key("ssh-ed25519 AAAAB3NzaC1yc2E="),
        Err(PemError::NotPublicKey)
    );
}

#[test]
fn cert_blocks() {
    let cert = CertificateSigned {
        cert: Some(
            Certificate {
                key_type: Some(1),
                key_data: Some(vec![9; 32]),
                app_ids: vec![480],
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        ca_key_id: Some(77),
        ca_signature: Some(vec![5; 64]),
        ..Default::default()
    };
    let pem = write_cert_pem(&cert);
    assert!(pem.starts_with("-----BEGIN STEAMDATAGRAM CERT-----\n"));
    assert!(pem.ends_with("\n\n-----END STEAMDATAGRAM CERT-----\n"));
    assert_eq!(read_cert_pem(&pem).unwrap(), cert);
    let with_comments = format!("{pem}#Public key . . . : x\n");
    assert_eq!(read_cert_pem(&with_comments).unwrap(), cert);
    let empty = write_cert_pem(&CertificateSigned::default());
    assert_eq!(read_cert_pem(&empty), Err(PemError::NoCertData));
    let req = CertificateRequest {
        cert: Some(Certificate {
            key_type: Some(1),
            ..Default::default()
        }),
    };
    let text = write_cert_request_pem(&req);
    assert!(text.starts_with("-----BEGIN SOCKWORKS CERT REQUEST-----\n"));
    assert_eq!(read_cert_request_pem(&text).unwrap(), req);
    assert_eq!(read_cert_pem(&text), Err(PemError::NoBlock(CERT_PEM_TYPE)));
}

#[test]
fn openssh_layout_reads_back() {
    let pem = write_openssh_private_key_padded(&[0x42; 32], "ca@sockworks");
    assert_eq!(read_openssh_private_key(&pem).unwrap(), [0x42; 32]);
    let body = decode_pem(&pem, PRIVATE_KEY_PEM_TYPE).unwrap();
    let private_len = u32::from_be_bytes(body[94..98].try_into().unwrap());
    assert_eq!(private_len % 8, 0);
    assert!(!pem.contains('\r'));
}
