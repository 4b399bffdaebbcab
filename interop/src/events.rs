//! The stdout format of `gns-peer`: one event per line, `KIND key=value key=value ...`.
//!
//! `KIND` is an upper-case word. A value is either a bare token without spaces or quotes, or
//! a double-quoted string written with Rust's `{:?}` escapes (`\"`, `\\`, `\n`, `\u{..}`, ...).
//! Keys are unique within a line and their order is fixed per kind.

/// One parsed stdout line of `gns-peer`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The leading word, e.g. `RECV`.
    pub kind: String,
    /// The `key=value` fields in order, strings unescaped.
    pub fields: Vec<(String, String)>,
}

impl Event {
    /// Parses one line; `None` when it is not in the format above.
    #[must_use]
    pub fn parse(line: &str) -> Option<Self> {
        let line = line.trim_end_matches(['\r', '\n']);
        let (kind, mut rest) = line.split_once(' ').unwrap_or((line, ""));
        if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
            return None;
        }
        let mut fields = Vec::new();
        loop {
            rest = rest.trim_start_matches(' ');
            if rest.is_empty() {
                break;
            }
            let (key, after) = rest.split_once('=')?;
            let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
                unquote(quoted)?
            } else {
                let end = after.find(' ').unwrap_or(after.len());
                (after[..end].to_owned(), &after[end..])
            };
            fields.push((key.to_owned(), value));
            rest = after;
        }
        Some(Self {
            kind: kind.to_owned(),
            fields,
        })
    }

    /// The value of `key`, if present.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key` parsed as a number (or anything `FromStr`).
    #[must_use]
    pub fn num<T: std::str::FromStr>(&self, key: &str) -> Option<T> {
        self.get(key)?.parse().ok()
    }
}

/// Reads a `{:?}`-escaped string body up to its closing quote; returns it and what follows.
fn unquote(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => {
                let (_, e) = chars.next()?;
                out.push(match e {
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    '0' => '\0',
                    '\\' | '"' | '\'' => e,
                    'u' => {
                        let (_, open) = chars.next()?;
                        if open != '{' {
                            return None;
                        }
                        let mut hex = String::new();
                        loop {
                            let (_, h) = chars.next()?;
                            if h == '}' {
                                break;
                            }
                            hex.push(h);
                        }
                        char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?
                    }
                    _ => return None,
                });
            }
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_and_quoted_values_round_trip_through_debug_escapes() {
        let debug = "say \"hi\"\\ \n é \u{1}";
        let line = format!("STATUS conn=1 new=Connected debug={debug:?} reason=0");
        let ev = Event::parse(&line).expect("parses");
        assert_eq!(ev.kind, "STATUS");
        assert_eq!(ev.get("conn"), Some("1"));
        assert_eq!(ev.get("debug"), Some(debug));
        assert_eq!(ev.num::<u32>("reason"), Some(0));
        assert_eq!(ev.get("missing"), None);
    }

    #[test]
    fn lines_without_fields_and_garbage() {
        assert_eq!(Event::parse("DONE").map(|e| e.fields.len()), Some(0));
        assert!(Event::parse("lower case").is_none());
        assert!(Event::parse("RECV size").is_none());
        assert!(Event::parse("RECV text=\"open").is_none());
    }
}
