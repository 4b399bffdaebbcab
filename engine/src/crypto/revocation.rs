//! The revocation list's text format, shared by the tool that writes it (`sockworks-cert
//! revoke`) and the trust configuration that loads it into a
//! [`TrustStore`](super::trust::TrustStore). Pure text in, key ids out: reading the file is
//! the caller's business.
//!
//! ```text
//! # Sockworks revoked key ids: one decimal key id per line; '#' starts a comment.
//! 12927724014486389073  # 2025-03-01T10:00:00Z str:player-7 key leaked
//! 4410237510373461012   # 2025-03-02T08:30:00Z
//! ```
//!
//! A key id is GNS's (`SHA-256(public key)`, first 8 bytes little-endian, spec §2.2), of a
//! certificate's key or of a CA's.

use std::collections::BTreeSet;

/// The first line of a new list.
pub const HEADER: &str =
    "# Sockworks revoked key ids: one decimal key id per line; '#' starts a comment.\n";

/// A line that is neither blank, a comment, nor a key id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("revocation list line {line}: '{text}' is not a decimal key id")]
pub struct RevocationListError {
    /// 1-based line number.
    pub line: usize,
    /// The offending text (without its comment).
    pub text: String,
}

/// The key ids a list's text revokes.
pub fn parse(text: &str) -> Result<BTreeSet<u64>, RevocationListError> {
    let mut ids = BTreeSet::new();
    for (i, raw) in text.lines().enumerate() {
        let content = raw.split_once('#').map_or(raw, |(before, _)| before).trim();
        if content.is_empty() {
            continue;
        }
        let id = content.parse::<u64>().map_err(|_| RevocationListError {
            line: i + 1,
            text: content.to_owned(),
        })?;
        ids.insert(id);
    }
    Ok(ids)
}

/// One line of the list: the key id, then `comment` (which must be one line) if not empty.
pub fn entry(key_id: u64, comment: &str) -> String {
    if comment.is_empty() {
        format!("{key_id}\n")
    } else {
        format!("{key_id:<20}  # {comment}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_back_and_garbage_is_refused_by_line() {
        let text = format!("{HEADER}{}{}\n", entry(42, "why"), entry(u64::MAX, ""));
        assert_eq!(
            parse(&text).unwrap().into_iter().collect::<Vec<_>>(),
            [42, u64::MAX]
        );
        assert_eq!(
            parse("# x\n12\nabc # y\n"),
            Err(RevocationListError {
                line: 3,
                text: "abc".to_owned()
            })
        );
        assert!(parse("18446744073709551616\n").is_err());
        assert!(parse("-1\n").is_err());
    }
}
