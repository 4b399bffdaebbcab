//! The CA service's tokens file: who may ask for a certificate, and for which identities.
//!
//! ```text
//! # comment lines and blank lines are ignored
//! <token> <identity pattern>
//! 3f9a...e1  str:player-*        # a client fleet: any generic string starting "player-"
//! 77c0...4b  str:game-server-1   # exactly one identity
//! a1d2...99  *                   # any identity the CA can issue
//! ```
//!
//! A token is 16 to 256 printable ASCII characters without spaces. A pattern is an identity
//! string in which `*` matches any run of characters (`*` alone matches everything). A token
//! may appear on several lines; it then allows the union of its patterns. Tokens are compared
//! in constant time, and every token is compared, so timing does not reveal a prefix.

use std::path::Path;

/// Shortest token accepted: 16 characters leave guessing out of reach.
pub const MIN_TOKEN_LEN: usize = 16;
/// Longest token accepted.
pub const MAX_TOKEN_LEN: usize = 256;

/// Why the tokens file could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokensError {
    /// The file could not be read.
    #[error("cannot read tokens file {path}: {cause}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// A line is not `<token> <pattern>`.
    #[error("tokens file line {line}: expected '<token> <identity pattern>'")]
    Syntax {
        /// 1-based line number.
        line: usize,
    },
    /// A token is too short, too long, or not printable ASCII.
    #[error(
        "tokens file line {line}: a token must be {MIN_TOKEN_LEN} to {MAX_TOKEN_LEN} printable ASCII characters"
    )]
    BadToken {
        /// 1-based line number.
        line: usize,
    },
    /// No token at all: the service would refuse everyone.
    #[error("tokens file {0} holds no tokens")]
    Empty(String),
}

/// One `<token> <pattern>` line.
#[derive(Clone, PartialEq, Eq)]
struct Grant {
    token: Vec<u8>,
    pattern: String,
}

/// The loaded tokens file.
#[derive(Clone, Default)]
pub struct Tokens {
    grants: Vec<Grant>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("grants", &self.grants.len())
            .finish()
    }
}

/// What a token is allowed: the patterns of its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    patterns: Vec<String>,
}

impl Allowed {
    /// Whether `identity` (GNS string form) matches one of the patterns.
    pub fn permits(&self, identity: &str) -> bool {
        self.patterns.iter().any(|p| glob_match(p, identity))
    }

    /// The patterns, for error messages.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

impl Tokens {
    /// Reads and parses a tokens file.
    pub fn load(path: &Path) -> Result<Self, TokensError> {
        let text = std::fs::read_to_string(path).map_err(|cause| TokensError::Read {
            path: path.display().to_string(),
            cause,
        })?;
        let tokens = Self::parse(&text)?;
        if tokens.grants.is_empty() {
            return Err(TokensError::Empty(path.display().to_string()));
        }
        Ok(tokens)
    }

    /// Parses the text of a tokens file (may be empty).
    pub fn parse(text: &str) -> Result<Self, TokensError> {
        let mut grants = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let content = raw.split_once('#').map_or(raw, |(before, _)| before).trim();
            if content.is_empty() {
                continue;
            }
            let mut fields = content.split_whitespace();
            let (Some(token), Some(pattern), None) = (fields.next(), fields.next(), fields.next())
            else {
                return Err(TokensError::Syntax { line });
            };
            if !(MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&token.len())
                || !token.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(TokensError::BadToken { line });
            }
            grants.push(Grant {
                token: token.as_bytes().to_vec(),
                pattern: pattern.to_owned(),
            });
        }
        Ok(Self { grants })
    }

    /// Number of `<token> <pattern>` lines.
    pub fn len(&self) -> usize {
        self.grants.len()
    }

    /// Whether no line was loaded.
    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }

    /// The patterns `presented` is allowed, or `None` for an unknown token. Every grant is
    /// compared in constant time, whatever matches.
    pub fn authorize(&self, presented: &[u8]) -> Option<Allowed> {
        let mut patterns = Vec::new();
        for g in &self.grants {
            if constant_time_eq(&g.token, presented) {
                patterns.push(g.pattern.clone());
            }
        }
        (!patterns.is_empty()).then_some(Allowed { patterns })
    }
}

/// Equality whose time depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `*` matches any run of characters (possibly empty); everything else matches itself.
/// Greedy with backtracking to the last `*`: linear in practice, quadratic at worst on
/// inputs of at most a few hundred bytes.
fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn parses_lines_comments_and_repeated_tokens() {
        let t = Tokens::parse(&format!(
            "# fleet\n\n{A} str:player-*  # players\n{A} str:bot-1\n  {B}\t*\n"
        ))
        .ok()
        .unwrap_or_default();
        assert_eq!(t.len(), 3);
        let a = t.authorize(A.as_bytes());
        assert_eq!(
            a.as_ref().map(Allowed::patterns),
            Some(&["str:player-*".to_owned(), "str:bot-1".to_owned()][..])
        );
        assert!(a.as_ref().is_some_and(|a| a.permits("str:player-7")));
        assert!(a.as_ref().is_some_and(|a| a.permits("str:bot-1")));
        assert!(!a.as_ref().is_some_and(|a| a.permits("str:bot-2")));
        assert!(
            t.authorize(B.as_bytes())
                .is_some_and(|a| a.permits("steamid:76561197960287930"))
        );
        assert!(t.authorize(b"cccccccccccccccc").is_none());
        assert!(t.authorize(b"aaaaaaaaaaaaaaa").is_none());
    }

    #[test]
    fn refuses_malformed_lines() {
        assert!(matches!(
            Tokens::parse(&format!("{A}\n")),
            Err(TokensError::Syntax { line: 1 })
        ));
        assert!(matches!(
            Tokens::parse(&format!("\n{A} x y\n")),
            Err(TokensError::Syntax { line: 2 })
        ));
        assert!(matches!(
            Tokens::parse("short *\n"),
            Err(TokensError::BadToken { line: 1 })
        ));
    }

    #[test]
    fn glob_matches_stars_anywhere() {
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "str:x"));
        assert!(glob_match("str:player-*", "str:player-"));
        assert!(glob_match("str:*-eu-*", "str:srv-eu-3"));
        assert!(!glob_match("str:*-eu-*", "str:srv-us-3"));
        assert!(glob_match("str:a*b*c", "str:aXbYbZc"));
        assert!(!glob_match("str:a*b*c", "str:aXbYbZ"));
        assert!(!glob_match("str:player", "str:player-1"));
        assert!(glob_match("str:**", "str:"));
    }
}
