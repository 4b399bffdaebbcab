//! Programs written against Valve's public headers (capi/c: a C echo server on the flat API,
//! a C++ chat on the virtual interfaces, a Python ctypes client, a C program that misuses the
//! API) run on the library under test, alone and against real Valve GNS.
//!
//! The library under test is `SOCKWORKS_CAPI_LIB_DIR`'s `libGameNetworkingSockets.so`, else
//! this crate's own (see `common/programs.rs`). With `SOCKWORKS_CAPI_LIB_DIR` set to the
//! output of `capi/c/make-real-gns-so.sh` every test checks real GNS against itself: that is
//! how the expected values below were measured.

#[path = "common/programs.rs"]
mod programs_common;

use std::collections::HashMap;
use std::process::Command;

use programs_common::{
    Output, PROGRAM_TIMEOUT_MS, Programs, Running, free_port, lib_under_test, programs, real_gns,
    start_server,
};

/// Messages each echo client sends.
const MESSAGES: usize = 50;

/// Total bytes of `echo_client.py`'s first `n` messages (message i is 1 + (i * 397) % 3000
/// bytes long).
fn echo_bytes(n: usize) -> usize {
    (0..n).map(|i| 1 + (i * 397) % 3000).sum()
}

/// Starts `echo_flat` on a free port, stopping after `messages` echoes and all clients gone.
fn echo_server(p: &Programs, messages: usize) -> (Running, u16) {
    start_server("echo_flat", |port| {
        let mut cmd = Command::new(&p.echo_flat);
        cmd.args([&port.to_string(), &messages.to_string(), PROGRAM_TIMEOUT_MS]);
        cmd
    })
}

/// Starts `echo_client.py` (on `p`'s library) against 127.0.0.1:`port`.
fn echo_client(p: &Programs, port: u16) -> Running {
    let cmd = p.python_client(&[&port.to_string(), &MESSAGES.to_string(), PROGRAM_TIMEOUT_MS]);
    Running::spawn("echo_client.py", cmd)
}

/// The `EVENT` lines of a program as `key=value` maps, in order.
fn events(out: &Output) -> Vec<HashMap<String, String>> {
    out.stdout
        .iter()
        .filter_map(|l| l.strip_prefix("EVENT "))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

/// `(old, new, reason, debug)` of each status change a program printed.
fn transitions(out: &Output) -> Vec<(String, String, String, String)> {
    events(out)
        .into_iter()
        .filter(|e| e.contains_key("new"))
        .map(|e| {
            let field = |k: &str| e.get(k).cloned().unwrap_or_default();
            (field("old"), field("new"), field("reason"), field("debug"))
        })
        .collect()
}

fn t(old: i32, new: i32, reason: i32, debug: &str) -> (String, String, String, String) {
    (
        old.to_string(),
        new.to_string(),
        reason.to_string(),
        debug.to_owned(),
    )
}

/// The echo server and each client reported complete, byte-exact runs.
fn assert_echoed(server: &Output, clients: &[Output]) {
    let all = || {
        let mut text = server.to_string();
        clients.iter().for_each(|c| text.push_str(&c.to_string()));
        text
    };
    for client in clients {
        let r = client.result("echo_client");
        assert_eq!(r["ok"], "1", "client failed\n{}", all());
        assert_eq!(r["sent"], MESSAGES.to_string(), "{}", all());
        assert_eq!(r["received"], MESSAGES.to_string(), "{}", all());
        assert_eq!(r["bytes"], echo_bytes(MESSAGES).to_string(), "{}", all());
        assert_eq!(client.code, Some(0), "{}", all());
    }
    let r = server.result("echo_flat");
    let n = clients.len();
    assert_eq!(r["ok"], "1", "server failed\n{}", all());
    assert_eq!(r["messages"], (n * MESSAGES).to_string(), "{}", all());
    assert_eq!(
        r["bytes"],
        (n * echo_bytes(MESSAGES)).to_string(),
        "{}",
        all()
    );
    assert_eq!(r["connections"], n.to_string(), "{}", all());
    assert_eq!(r["closed_by_peer"], n.to_string(), "{}", all());
    assert_eq!(server.code, Some(0), "{}", all());
}

/// One echo server on `server_lib`, one Python client on `client_lib`.
fn echo_once(server_lib: &Programs, client_lib: &Programs) -> (Output, Output) {
    let (server, port) = echo_server(server_lib, MESSAGES);
    let client = echo_client(client_lib, port).finish();
    let server = server.finish();
    assert_echoed(&server, std::slice::from_ref(&client));
    (server, client)
}

#[test]
fn c_echo_server_echoes_python_client_byte_exact() {
    let ours = programs(&lib_under_test());
    let (server, client) = echo_once(&ours, &ours);

    // The accepting side sees Connecting (from None), then Connected once accepted, then
    // ClosedByPeer with the client's reason: CloseConnection(conn, 0, "done") arrives as 1000
    // (k_ESteamNetConnectionEnd_App_Generic) with its text.
    assert_eq!(
        transitions(&server),
        [t(0, 1, 0, ""), t(1, 3, 0, ""), t(3, 4, 1000, "done")],
        "{server}"
    );
    // The connecting side sees Connecting, Connected, and (after its own CloseConnection) a
    // last callback to None carrying its own reason and text.
    assert_eq!(
        transitions(&client),
        [t(0, 1, 0, ""), t(1, 3, 0, ""), t(3, 0, 1000, "done")],
        "{client}"
    );
}

#[test]
fn c_echo_server_serves_two_python_clients_at_once() {
    let ours = programs(&lib_under_test());
    let (server, port) = echo_server(&ours, 2 * MESSAGES);
    let first = echo_client(&ours, port);
    let second = echo_client(&ours, port);
    let clients = [first.finish(), second.finish()];
    assert_echoed(&server.finish(), &clients);
}

/// The important direction: a program linked to the library under test serves a client
/// running on Valve's real GNS.
#[test]
fn real_gns_client_is_echoed_by_c_server_on_library_under_test() {
    let ours = programs(&lib_under_test());
    let real = programs(&real_gns());
    echo_once(&ours, &real);
}

/// And the other: a client on the library under test is served by a program on real GNS.
#[test]
fn client_on_library_under_test_is_echoed_by_c_server_on_real_gns() {
    let ours = programs(&lib_under_test());
    let real = programs(&real_gns());
    echo_once(&real, &ours);
}

#[test]
fn cpp_chat_keeps_lane_and_reliable_flag_and_server_sees_close_reason_1000_bye() {
    let ours = programs(&lib_under_test());
    chat_once(&ours, &ours);
}

/// The C++ chat server on the library under test, its client a process on real GNS.
#[test]
fn cpp_chat_server_on_library_under_test_serves_a_real_gns_client() {
    chat_once(&programs(&lib_under_test()), &programs(&real_gns()));
}

/// The C++ chat client on the library under test, its server a process on real GNS.
#[test]
fn cpp_chat_client_on_library_under_test_talks_to_a_real_gns_server() {
    chat_once(&programs(&real_gns()), &programs(&lib_under_test()));
}

/// One chat server (on `server_lib`) and one client (on `client_lib`): 20 reliable messages
/// on lane 1 and 20 unreliable ones on lane 0 relayed back, then a close with linger.
fn chat_once(server_lib: &Programs, client_lib: &Programs) {
    let (server, port) = start_server("chat server", |port| {
        let mut cmd = Command::new(&server_lib.chat);
        cmd.args(["server", &port.to_string(), "1", PROGRAM_TIMEOUT_MS]);
        cmd
    });
    let mut client = Command::new(&client_lib.chat);
    client.args(["client", &port.to_string(), "20", PROGRAM_TIMEOUT_MS]);
    let client = Running::spawn("chat client", client).finish();
    let server = server.finish();
    let both = format!("{server}{client}");

    let c = client.result("chat_client");
    assert_eq!(c["ok"], "1", "{both}");
    assert_eq!(
        (c["sent"].as_str(), c["received"].as_str()),
        ("20", "20"),
        "{both}"
    );
    assert_eq!(c["lane"], "1", "lane index not preserved both ways\n{both}");
    assert_eq!(
        c["reliable"], "1",
        "k_nSteamNetworkingSend_Reliable missing\n{both}"
    );
    assert_eq!(c["unreliable_sent"], "20", "{both}");
    let unreliable: usize = c["unreliable_received"].parse().expect("a count");
    assert!(unreliable > 0, "no unreliable message came back\n{both}");

    let s = server.result("chat_server");
    assert_eq!(s["ok"], "1", "{both}");
    assert_eq!(s["clients"], "1", "{both}");
    let relayed: usize = s["messages"].parse().expect("a count");
    assert!(
        (20..=40).contains(&relayed),
        "20 reliable + up to 20 unreliable\n{both}"
    );
    assert_eq!(s["close_state"], "4", "not ClosedByPeer\n{both}");
    assert_eq!(s["close_reason"], "1000", "{both}");
    assert_eq!(s["close_debug"], "bye", "{both}");
    assert_eq!((server.code, client.code), (Some(0), Some(0)), "{both}");
}

/// What real GNS 1.6 returns for each call of `misuse.c` (measured with
/// `SOCKWORKS_CAPI_LIB_DIR` set to make-real-gns-so.sh's output).
const MISUSE: &[(&str, i64)] = &[
    // The same for handle 0 (k_HSteamNetConnection_Invalid) and 12345 (never issued).
    ("send", 8),                // k_EResultInvalidParam
    ("get_info", 0),            // false
    ("get_info_null", 0),       // false (pInfo may be null)
    ("close", 0),               // false
    ("close_linger", 0),        // false
    ("receive", -1),            // -1
    ("accept", 8),              // k_EResultInvalidParam
    ("flush", 8),               // k_EResultInvalidParam
    ("set_user_data", 0),       // false
    ("get_user_data", -1),      // -1
    ("get_name", 0),            // false
    ("detailed_status", -1),    // -1
    ("lanes", 3),               // k_EResultNoConnection
    ("set_poll_group", 0),      // false
    ("receive_poll_group", -1), // -1 (an unknown poll group)
    ("destroy_poll_group", 0),  // false
    ("close_listen", 0),        // false
    ("listen_address", 0),      // false
    ("send_messages", -8),      // -k_EResultInvalidParam in pOutMessageNumberOrResult
];

/// The checks of `misuse.c` that are not per handle.
const MISUSE_ONCE: &[(&str, i64)] = &[
    ("listen_port0", 0),  // k_HSteamListenSocket_Invalid: a port is required
    ("parse_garbage", 0), // false
    ("connect_valid", 1), // connecting to a silent port still gives a handle
    ("connecting_send_unreliable", 1), // k_EResultOK while still connecting
    ("connecting_receive", 0), // nothing yet, but not an error
    ("connecting_get_info", 1), // true
    ("connecting_state", 1), // k_ESteamNetworkingConnectionState_Connecting
    ("connecting_accept", 8), // not a connection on a listen socket: InvalidParam
    ("close_first", 1),   // true
    ("close_again", 0),   // false: the handle is gone
    ("closed_send", 8),   // k_EResultInvalidParam
    ("closed_get_info", 0), // false
    ("closed_receive", -1), // -1
    ("alloc0_non_null", 1), // AllocateMessage(0) gives a message...
    ("alloc0_size", 0),   // ...of size 0...
    ("alloc0_data_null", 1), // ...without a buffer
];

#[test]
fn flat_api_misuse_returns_the_failure_values_of_real_gns() {
    let ours = programs(&lib_under_test());
    let mut cmd = Command::new(&ours.misuse);
    cmd.arg(free_port().to_string());
    let out = Running::spawn("misuse", cmd).finish();
    let r = out.result("misuse");
    assert_eq!(r["ok"], "1", "{out}");
    assert_eq!(out.code, Some(0), "{out}");

    let got: HashMap<&str, i64> = out
        .stdout
        .iter()
        .filter_map(|l| l.strip_prefix("CHECK "))
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k, v.parse().expect("a CHECK value is an integer")))
        .collect();
    let mut want: Vec<(String, i64)> = Vec::new();
    for handle in ["invalid", "12345"] {
        want.extend(MISUSE.iter().map(|(k, v)| (format!("{k}_{handle}"), *v)));
    }
    want.extend(MISUSE_ONCE.iter().map(|(k, v)| ((*k).to_owned(), *v)));

    let wrong: Vec<String> = want
        .iter()
        .filter(|(k, v)| got.get(k.as_str()) != Some(v))
        .map(|(k, v)| format!("{k}: got {:?}, real GNS gives {v}", got.get(k.as_str())))
        .collect();
    assert!(wrong.is_empty(), "{}\n{out}", wrong.join("\n"));
    assert_eq!(got.len(), want.len(), "unexpected CHECK lines\n{out}");
}

/// The README's Python ctypes example, run exactly as printed there, against the C echo
/// server on the library under test.
#[test]
fn readme_python_example_echoes() {
    let ours = programs(&lib_under_test());
    let readme_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&readme_path).expect("README.md");
    let start = readme
        .find("```python\n")
        .expect("a python block in README.md")
        + 10;
    let end = start + readme[start..].find("```").expect("the block's end");
    let script = std::env::temp_dir().join(format!("sockworks-readme-{}.py", std::process::id()));
    std::fs::write(&script, &readme[start..end]).expect("writing the example");

    let (server, port) = echo_server(&ours, 1);
    let mut cmd = Command::new("python3");
    cmd.arg(&script)
        .arg(ours.lib_dir.join("libGameNetworkingSockets.so"))
        .arg(port.to_string());
    let client = Running::spawn("README example", cmd).finish();
    let server = server.finish();
    std::fs::remove_file(&script).ok();
    assert_eq!(client.code, Some(0), "{client}{server}");
    assert!(
        client.stdout.iter().any(|l| l == "echo: hello from ctypes"),
        "{client}"
    );
    assert_eq!(server.result("echo_flat")["ok"], "1", "{server}");
}

/// Runs `p2p_self` in a private network namespace with one test-only address (ICE gathers no
/// loopback addresses); `None` (SKIP) when namespaces are not permitted here.
fn p2p_self(p: &Programs) -> Option<Output> {
    let allowed = Command::new("unshare")
        .args(["--net", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !allowed {
        eprintln!("SKIP: cannot create a network namespace (not root?)");
        return None;
    }
    let setup = "ip link set lo up && ip link add sp0 type veth peer name sp1 \
        && ip addr add 10.77.0.1/24 dev sp0 && ip link set sp0 up && ip link set sp1 up \
        && exec \"$1\" \"$2\"";
    let mut cmd = Command::new("unshare");
    cmd.args(["--net", "sh", "-c", setup, "sh"])
        .arg(&p.p2p_self)
        .arg(PROGRAM_TIMEOUT_MS);
    Some(Running::spawn("p2p_self", cmd).finish())
}

fn assert_p2p_self(out: &Output) {
    let r = out.result("p2p_self");
    assert_eq!(r["ok"], "1", "{out}");
    assert_eq!(r["released"], "2", "{out}");
    assert_eq!(out.code, Some(0), "{out}");
}

/// A C program connects to its own identity over P2P custom signaling and ICE through the
/// flat API of the library under test: both ends connect, a message crosses, both
/// signaling objects are released after the close.
#[test]
fn c_p2p_self_connect_over_custom_signaling() {
    if let Some(out) = p2p_self(&programs(&lib_under_test())) {
        assert_p2p_self(&out);
    }
}

/// The same program on Valve's real GNS: what the library under test is held to.
#[test]
fn c_p2p_self_connect_over_custom_signaling_on_real_gns() {
    if let Some(out) = p2p_self(&programs(&real_gns())) {
        assert_p2p_self(&out);
    }
}
