//! Authentication settings for C programs, read from the environment at
//! `GameNetworkingSockets_Init` (GNS's C ABI has no call for them):
//!
//! | variable | meaning |
//! |---|---|
//! | `SOCKWORKS_CA_URL` | the CA service `InitAuthentication` fetches our certificate from (`http://host:port`) |
//! | `SOCKWORKS_CA_TOKEN` | its bearer token (required with `SOCKWORKS_CA_URL`) |
//! | `SOCKWORKS_TRUSTED_CA` | a file of trusted CA keys, one `ssh-ed25519 AAAA…` line each (`#` comments) |
//! | `SOCKWORKS_REVOKED` | a revocation list file (`sockworks-cert revoke`'s: key ids, `#` comments) |
//! | `SOCKWORKS_REQUIRE_TRUSTED` | `1`: refuse peers without a certificate from a trusted CA |
//!
//! A variable that is set but unusable fails Init with the reason, rather than running with
//! less trust than asked for.

use sockworks::engine::crypto::{TrustedCa, pem, revocation};
use sockworks::{CaClientConfig, SocketsConfig};

/// One variable, if set (and not empty).
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn read(name: &str, path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{name}={path:?}: {e}"))
}

/// Trusted CA keys from the text of a `SOCKWORKS_TRUSTED_CA` file.
pub(crate) fn parse_trusted(text: &str) -> Result<Vec<TrustedCa>, String> {
    let mut cas = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = pem::read_public_key(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        cas.push(TrustedCa::new(key));
    }
    Ok(cas)
}

/// Applies the variables to `config`.
pub(crate) fn apply(config: &mut SocketsConfig) -> Result<(), String> {
    if let Some(path) = var("SOCKWORKS_TRUSTED_CA") {
        let text = read("SOCKWORKS_TRUSTED_CA", &path)?;
        config.trust.cas =
            parse_trusted(&text).map_err(|e| format!("SOCKWORKS_TRUSTED_CA: {e}"))?;
    }
    if let Some(path) = var("SOCKWORKS_REVOKED") {
        let text = read("SOCKWORKS_REVOKED", &path)?;
        let ids = revocation::parse(&text).map_err(|e| format!("SOCKWORKS_REVOKED: {e}"))?;
        config.trust.revoked = ids.into_iter().collect();
    }
    if let Some(v) = var("SOCKWORKS_REQUIRE_TRUSTED") {
        config.trust.require_trusted = match v.trim() {
            "1" | "true" | "yes" => true,
            "0" | "false" | "no" => false,
            other => {
                return Err(format!(
                    "SOCKWORKS_REQUIRE_TRUSTED={other:?}: expected 0 or 1"
                ));
            }
        };
    }
    if let Some(url) = var("SOCKWORKS_CA_URL") {
        let token = var("SOCKWORKS_CA_TOKEN")
            .ok_or("SOCKWORKS_CA_URL is set but SOCKWORKS_CA_TOKEN is not")?;
        config.ca = Some(CaClientConfig::new(url.trim(), token.trim()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_trusted;
    use sockworks::engine::crypto::ca::CaKey;

    #[test]
    fn trusted_ca_files_take_key_lines_and_skip_comments() {
        let k = CaKey::from_seed([3; 32]);
        let text = format!("# fleet CA\n\n{}\n", k.public_key_line());
        let cas = parse_trusted(&text).unwrap();
        assert_eq!(cas.len(), 1);
        assert_eq!(cas[0].public_key, k.public_key());
        assert!(
            parse_trusted("ssh-rsa AAAAB3 x\n")
                .unwrap_err()
                .starts_with("line 1")
        );
    }
}
