//! Loading the JSON transcripts and their value conventions (hex strings, "0x…" u64s).

use serde_json::Value;

/// The two transcripts: GNS as server (`c2s`) and GNS as client (`s2c`).
pub(crate) const FILES: [&str; 2] = ["gns-handshake-c2s.json", "gns-handshake-s2c.json"];

/// Parses one transcript from `engine/testdata`.
pub(crate) fn load(name: &str) -> Value {
    let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// Both transcripts, with their file names.
pub(crate) fn all() -> Vec<(&'static str, Value)> {
    FILES.iter().map(|f| (*f, load(f))).collect()
}

/// Decodes a lowercase hex string field.
pub(crate) fn hex(v: &Value) -> Vec<u8> {
    hex::decode(
        v.as_str()
            .unwrap_or_else(|| panic!("not a hex string: {v}")),
    )
    .unwrap()
}

/// Decodes a 64-bit value written as `"0x" + 16 hex digits`.
pub(crate) fn u64_str(v: &Value) -> u64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a 0x string: {v}"));
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

/// A plain JSON integer.
pub(crate) fn int(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

/// The datagrams of a transcript.
pub(crate) fn datagrams(v: &Value) -> &Vec<Value> {
    v["datagrams"].as_array().unwrap()
}

/// The first datagram of a given kind (e.g. "ConnectRequest").
pub(crate) fn first_of_kind<'a>(v: &'a Value, kind: &str) -> &'a Value {
    datagrams(v)
        .iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}
