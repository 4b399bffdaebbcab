//! The library against GNS 1.6's own public headers: every function they export is exported
//! here, every struct has the C++ compiler's size and field offsets, and the C++ interface
//! tables list the virtual methods in declaration order.
//!
//! The headers come with the `game-networking-sockets-sys` source that `interop/` builds (in
//! Cargo's registry); the layout check compiles a small C++ program against them.

#![allow(
    clippy::unwrap_used,
    reason = "helpers outside #[test]: a failed unwrap is a failed test"
)]

use std::mem::{offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;

use GameNetworkingSockets::signaling::{RECV_CONTEXT_METHODS, SIGNALING_METHODS};
use GameNetworkingSockets::types::*;
use GameNetworkingSockets::vtable::{MESSAGES_METHODS, SOCKETS_METHODS, UTILS_METHODS};

/// `include/steam` of the GNS sources in Cargo's registry.
fn headers() -> PathBuf {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo"));
    let registry = cargo_home.join("registry/src");
    let found = std::fs::read_dir(&registry)
        .unwrap_or_else(|e| panic!("{}: {e}", registry.display()))
        .flatten()
        .map(|d| {
            d.path().join(
                "game-networking-sockets-sys-0.3.0/thirdparty/GameNetworkingSockets/include/steam",
            )
        })
        .find(|p| p.is_dir());
    found.expect("GNS headers not found: run `cargo fetch` (interop depends on them)")
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap()
}

/// Names declared `STEAMNETWORKINGSOCKETS_INTERFACE` (exported by the library) in a header,
/// skipping `#ifdef STEAMNETWORKINGSOCKETS_ENABLE_SDR` blocks (not in the open-source build).
fn exported(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut skipping = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("#ifdef STEAMNETWORKINGSOCKETS_ENABLE_SDR") {
            skipping = true;
        } else if skipping && t.starts_with("#endif") {
            skipping = false;
        } else if !skipping && t.starts_with("STEAMNETWORKINGSOCKETS_INTERFACE") {
            let before_paren = t.split('(').next().unwrap();
            let name = before_paren
                .rsplit(|c: char| c.is_whitespace() || c == '*')
                .next()
                .unwrap();
            names.push(name.to_owned());
        }
    }
    names
}

/// The pure virtual methods of `class` in declaration order.
fn virtual_methods(text: &str, class: &str) -> Vec<String> {
    let start = text
        .find(&format!("class {class}\n"))
        .unwrap_or_else(|| panic!("{class}"));
    let body = &text[start..];
    let end = body.find("\n};").unwrap();
    body[..end]
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("virtual "))
        .map(|l| {
            let before_paren = l.split('(').next().unwrap();
            before_paren
                .rsplit(|c: char| c.is_whitespace() || c == '*')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// The library the tests run against: the cdylib Cargo built beside this test.
fn library() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    [
        deps.join("libGameNetworkingSockets.so"),
        deps.parent().unwrap().join("libGameNetworkingSockets.so"),
    ]
    .into_iter()
    .find(|p| p.exists())
    .expect("libGameNetworkingSockets.so not built (cargo builds the cdylib with the tests)")
}

#[test]
fn every_function_the_headers_export_is_exported() {
    let dir = headers();
    let mut wanted = Vec::new();
    for file in [
        "steamnetworkingsockets_flat.h",
        "steamnetworkingsockets.h",
        "isteamnetworkingsockets.h",
        "isteamnetworkingutils.h",
        "isteamnetworkingmessages.h",
    ] {
        wanted.extend(exported(&read(&dir, file)));
    }
    wanted.sort();
    wanted.dedup();
    assert!(
        wanted.len() > 120,
        "header parse found only {}",
        wanted.len()
    );

    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(library())
        .output()
        .expect("nm (binutils) is needed");
    let symbols = String::from_utf8_lossy(&out.stdout);
    let defined: std::collections::HashSet<&str> = symbols
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    let missing: Vec<&String> = wanted
        .iter()
        .filter(|n| !defined.contains(n.as_str()))
        .collect();
    assert!(missing.is_empty(), "not exported: {missing:?}");
}

#[test]
fn interface_tables_follow_the_declaration_order() {
    let dir = headers();
    for (file, class, ours) in [
        (
            "isteamnetworkingsockets.h",
            "ISteamNetworkingSockets",
            SOCKETS_METHODS,
        ),
        (
            "isteamnetworkingutils.h",
            "ISteamNetworkingUtils",
            UTILS_METHODS,
        ),
        (
            "isteamnetworkingmessages.h",
            "ISteamNetworkingMessages",
            MESSAGES_METHODS,
        ),
        (
            "steamnetworkingcustomsignaling.h",
            "ISteamNetworkingConnectionSignaling",
            SIGNALING_METHODS,
        ),
        (
            "steamnetworkingcustomsignaling.h",
            "ISteamNetworkingSignalingRecvContext",
            RECV_CONTEXT_METHODS,
        ),
    ] {
        let theirs = virtual_methods(&read(&dir, file), class);
        assert_eq!(ours, theirs.as_slice(), "{class}");
    }
}

/// One struct: its name, Rust size and `(Rust field, C++ member expression, Rust offset)`
/// per field. An anonymous union is the Rust field `u`; C++ reaches it by its first member.
type Layout = (
    &'static str,
    usize,
    Vec<(&'static str, &'static str, usize)>,
);

macro_rules! layout {
    ($ty:ident { $($field:ident $(as $cxx:literal)?),* $(,)? }) => {
        (stringify!($ty), size_of::<$ty>(), vec![$(
            (stringify!($field), layout!(@name $field $($cxx)?), offset_of!($ty, $field))
        ),*])
    };
    (@name $field:ident) => { stringify!($field) };
    (@name $field:ident $cxx:literal) => { $cxx };
}

fn rust_layouts() -> Vec<Layout> {
    vec![
        layout!(SteamNetworkingIPAddr { u as "m_ipv6", m_port }),
        layout!(SteamNetworkingIdentity { m_eType, m_cbSize, u as "m_steamID64" }),
        layout!(SteamNetConnectionInfo_t {
            m_identityRemote,
            m_nUserData,
            m_hListenSocket,
            m_addrRemote,
            m__pad1,
            m_idPOPRemote,
            m_idPOPRelay,
            m_eState,
            m_eEndReason,
            m_szEndDebug,
            m_szConnectionDescription,
            m_nFlags,
            reserved,
        }),
        layout!(SteamNetConnectionRealTimeStatus_t {
            m_eState,
            m_nPing,
            m_flConnectionQualityLocal,
            m_flConnectionQualityRemote,
            m_flOutPacketsPerSec,
            m_flOutBytesPerSec,
            m_flInPacketsPerSec,
            m_flInBytesPerSec,
            m_nSendRateBytesPerSecond,
            m_cbPendingUnreliable,
            m_cbPendingReliable,
            m_cbSentUnackedReliable,
            m_usecQueueTime,
            m_usecMaxJitter,
            reserved,
        }),
        layout!(SteamNetConnectionRealTimeLaneStatus_t {
            m_cbPendingUnreliable,
            m_cbPendingReliable,
            m_cbSentUnackedReliable,
            _reservePad1,
            m_usecQueueTime,
            reserved,
        }),
        layout!(SteamNetworkingMessage_t {
            m_pData,
            m_cbSize,
            m_conn,
            m_identityPeer,
            m_nConnUserData,
            m_usecTimeReceived,
            m_nMessageNumber,
            m_pfnFreeData,
            m_pfnRelease,
            m_nChannel,
            m_nFlags,
            m_nUserData,
            m_idxLane,
            _pad1__,
        }),
        layout!(SteamNetworkingConfigValue_t {
            m_eValue,
            m_eDataType,
            m_val
        }),
        layout!(SteamNetConnectionStatusChangedCallback_t {
            m_hConn,
            m_info,
            m_eOldState
        }),
        layout!(SteamNetAuthenticationStatus_t {
            m_eAvail,
            m_debugMsg
        }),
        layout!(SteamRelayNetworkStatus_t {
            m_eAvail,
            m_bPingMeasurementInProgress,
            m_eAvailNetworkConfig,
            m_eAvailAnyRelay,
            m_debugMsg,
        }),
        layout!(SteamNetworkPingLocation_t { m_data }),
        layout!(SteamNetworkingMessagesSessionRequest_t { m_identityRemote }),
        layout!(SteamNetworkingMessagesSessionFailed_t { m_info }),
    ]
}

/// Structs the headers define that never cross the library's boundary: C++ helpers that
/// render text into a private buffer inside the caller's own code, and Steam client types.
const NOT_ABI: &[&str] = &[
    "SteamNetworkingIdentityRender",
    "SteamNetworkingIPAddrRender",
    "SteamNetworkingPOPIDRender",
    "IPv4MappedAddress", // SteamNetworkingIPAddr's union member, checked with it
];

/// The headers whose structs are the networking ABI.
const STRUCT_HEADERS: &[&str] = &[
    "steamnetworkingtypes.h",
    "isteamnetworkingsockets.h",
    "isteamnetworkingutils.h",
    "isteamnetworkingmessages.h",
];

/// Every `struct Name` a header defines, with its data members in order, read from the
/// text: members at the struct's own brace depth, function-pointer members included;
/// methods, enums and nested type definitions skipped; an anonymous union is one member `u`,
/// a named one its name.
fn header_structs(text: &str) -> Vec<(String, Vec<String>)> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("struct ") {
        rest = &rest[at + 7..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let after = rest[name.len()..].trim_start();
        if name.is_empty() || !after.starts_with('{') {
            continue; // a forward declaration or a use
        }
        let body_start = rest.len() - after.len() + 1;
        let mut depth = 1;
        let mut fields = Vec::new();
        let mut stmt = String::new();
        let mut union_at: Option<usize> = None;
        let mut end = body_start;
        for (i, c) in rest[body_start..].char_indices() {
            match c {
                '{' => {
                    if depth == 1 && stmt.trim_start().starts_with("union") {
                        union_at = Some(depth);
                    }
                    depth += 1;
                    if depth == 2 && union_at.is_none() {
                        stmt.clear();
                    }
                }
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = body_start + i;
                        break;
                    }
                    if depth == 1 {
                        stmt.clear();
                        if union_at.is_some() {
                            stmt.push_str("union ");
                        }
                    }
                }
                ';' if depth == 1 => {
                    let s = stmt.trim().to_owned();
                    stmt.clear();
                    if let Some(field) = member(&s, union_at.take().is_some()) {
                        fields.push(field);
                    }
                }
                _ if depth == 1 => stmt.push(c),
                _ => {}
            }
        }
        rest = &rest[end..];
        out.push((name, fields));
    }
    out
}

/// The member a statement at struct depth declares, if any.
fn member(stmt: &str, closes_union: bool) -> Option<String> {
    let ident = |s: &str| -> String {
        let s = s.split('[').next().unwrap_or("").trim();
        s.rsplit(|c: char| !(c.is_alphanumeric() || c == '_'))
            .next()
            .unwrap_or("")
            .to_owned()
    };
    if closes_union {
        let name = ident(stmt.trim_start_matches("union"));
        return Some(if name.is_empty() {
            "u".to_owned()
        } else {
            name
        });
    }
    let first = stmt.split_whitespace().next().unwrap_or("");
    if stmt.is_empty()
        || [
            "enum", "struct", "static", "inline", "typedef", "friend", "using", "virtual",
        ]
        .contains(&first)
        || stmt.ends_with(':')
    {
        return None;
    }
    if let Some(p) = stmt.find("(*") {
        // A function pointer member: `ret (*name)( args )`.
        return Some(ident(
            &stmt[p + 2..stmt[p..].find(')').map_or(stmt.len(), |e| p + e)],
        ));
    }
    if stmt.contains('(') {
        return None; // a method
    }
    Some(ident(stmt))
}

#[test]
fn every_struct_of_the_headers_has_a_rust_twin_with_the_same_fields() {
    let dir = headers();
    let ours = rust_layouts();
    let mut seen = 0;
    for file in STRUCT_HEADERS {
        for (name, fields) in header_structs(&read(&dir, file)) {
            if NOT_ABI.contains(&name.as_str()) {
                continue;
            }
            seen += 1;
            let twin = ours.iter().find(|(n, _, _)| *n == name).unwrap_or_else(|| {
                panic!("{file}: struct {name} has no Rust twin in the layout test")
            });
            let rust: Vec<&str> = twin.2.iter().map(|(f, _, _)| *f).collect();
            assert_eq!(rust, fields, "{file}: fields of {name}");
        }
    }
    assert_eq!(
        seen,
        ours.len(),
        "every Rust twin is a struct of the headers"
    );
}

#[test]
fn structs_match_the_cxx_compilers_layout() {
    let dir = headers();
    let layouts = rust_layouts();
    let mut src = String::from(
        "#include <cstdio>\n#include <cstddef>\n#include <steam/steamnetworkingsockets.h>\n\
         #include <steam/isteamnetworkingutils.h>\n#include <steam/isteamnetworkingmessages.h>\n\
         int main() {\n",
    );
    for (ty, _, fields) in &layouts {
        src += &format!("  std::printf(\"{ty} size %zu\\n\", sizeof({ty}));\n");
        for (_, f, _) in fields {
            src += &format!("  std::printf(\"{ty} {f} %zu\\n\", offsetof({ty}, {f}));\n");
        }
    }
    src += "  return 0;\n}\n";

    let work = std::env::temp_dir().join(format!("sockworks-layout-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let (cpp, exe) = (work.join("layout.cpp"), work.join("layout"));
    std::fs::write(&cpp, src).unwrap();
    let include = dir.parent().unwrap();
    let status = Command::new("c++")
        .args(["-std=c++11", "-Wno-invalid-offsetof"])
        .arg("-I")
        .arg(include)
        .arg(&cpp)
        .arg("-o")
        .arg(&exe)
        .status()
        .expect("a C++ compiler (c++) is needed");
    assert!(status.success(), "the layout probe did not compile");
    let out = Command::new(&exe).output().unwrap();
    let printed = String::from_utf8(out.stdout).unwrap();
    let mut lines = printed.lines();
    for (ty, size, fields) in &layouts {
        assert_eq!(lines.next().unwrap(), format!("{ty} size {size}"));
        for (_, f, off) in fields {
            assert_eq!(lines.next().unwrap(), format!("{ty} {f} {off}"));
        }
    }
    std::fs::remove_dir_all(&work).ok();
}
