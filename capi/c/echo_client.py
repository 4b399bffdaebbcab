#!/usr/bin/env python3
"""A GameNetworkingSockets echo client in Python, through ctypes and the flat API only.

    echo_client.py <path/to/libGameNetworkingSockets.so> <port> [messages] [timeout_ms]

Connects to 127.0.0.1:<port>, sends <messages> (default 50) reliable messages of varied sizes
(1 byte to ~3 KiB, so some span several packets), and checks that each echo comes back
byte for byte and in order, with the Reliable flag set. Then closes with linger and prints:

    RESULT echo_client ok=<0|1> sent=<n> received=<n> bytes=<n> [error=<word>]

Standard library only. The struct layouts are GNS 1.6's on Linux x86_64: SteamNetworkingIPAddr
and SteamNetworkingIdentity are packed to 1, SteamNetConnectionInfo_t and the status-changed
callback to 4 (VALVE_CALLBACK_PACK_SMALL), SteamNetworkingMessage_t is naturally aligned.
"""

import ctypes as C
import sys
import time

K_RESULT_OK = 1
K_SEND_RELIABLE = 8
K_STATE_CONNECTING = 1
K_STATE_CONNECTED = 3
K_STATE_CLOSED_BY_PEER = 4
K_STATE_PROBLEM_LOCALLY = 5
K_CONFIG_PTR = 5
K_CONFIG_CALLBACK_STATUS_CHANGED = 201


class IPAddr(C.Structure):
    _pack_ = 1
    _fields_ = [("ipv6", C.c_uint8 * 16), ("port", C.c_uint16)]


class Identity(C.Structure):
    _pack_ = 1
    _fields_ = [("type", C.c_int), ("size", C.c_int), ("data", C.c_uint8 * 128)]


class ConnectionInfo(C.Structure):
    _pack_ = 4
    _fields_ = [
        ("identity_remote", Identity),
        ("user_data", C.c_int64),
        ("listen_socket", C.c_uint32),
        ("addr_remote", IPAddr),
        ("pad1", C.c_uint16),
        ("pop_remote", C.c_uint32),
        ("pop_relay", C.c_uint32),
        ("state", C.c_int),
        ("end_reason", C.c_int),
        ("end_debug", C.c_char * 128),
        ("description", C.c_char * 128),
        ("flags", C.c_int),
        ("reserved", C.c_uint32 * 63),
    ]


class StatusChanged(C.Structure):
    _pack_ = 4
    _fields_ = [("conn", C.c_uint32), ("info", ConnectionInfo), ("old_state", C.c_int)]


class Message(C.Structure):
    pass


FREE_FN = C.CFUNCTYPE(None, C.POINTER(Message))
Message._fields_ = [
    ("data", C.c_void_p),
    ("size", C.c_int),
    ("conn", C.c_uint32),
    ("identity_peer", Identity),
    ("conn_user_data", C.c_int64),
    ("time_received", C.c_int64),
    ("message_number", C.c_int64),
    ("free_data", FREE_FN),
    ("release", FREE_FN),
    ("channel", C.c_int),
    ("flags", C.c_int),
    ("user_data", C.c_int64),
    ("lane", C.c_uint16),
    ("pad", C.c_uint16),
]


class ConfigValue(C.Structure):
    _fields_ = [("value", C.c_int), ("data_type", C.c_int), ("ptr", C.c_void_p)]


STATUS_FN = C.CFUNCTYPE(None, C.POINTER(StatusChanged))

# The layouts the headers give on Linux x86_64.
assert C.sizeof(IPAddr) == 18 and C.sizeof(Identity) == 136
assert C.sizeof(ConnectionInfo) == 696 and C.sizeof(StatusChanged) == 704
assert StatusChanged.info.offset == 4 and ConnectionInfo.end_reason.offset == 180
assert C.sizeof(Message) == 216 and Message.flags.offset == 196 and Message.lane.offset == 208
assert C.sizeof(ConfigValue) == 16


def bind(lib):
    """Declares the signatures of the functions used here (all exported by the library)."""
    p = C.c_void_p
    sigs = {
        "GameNetworkingSockets_Init": (C.c_bool, [p, C.c_char_p]),
        "GameNetworkingSockets_Kill": (None, []),
        "SteamAPI_SteamNetworkingSockets_v009": (p, []),
        "SteamNetworkingIPAddr_ParseString": (C.c_bool, [C.POINTER(IPAddr), C.c_char_p]),
        "SteamAPI_ISteamNetworkingSockets_ConnectByIPAddress": (
            C.c_uint32, [p, C.POINTER(IPAddr), C.c_int, C.POINTER(ConfigValue)]),
        "SteamAPI_ISteamNetworkingSockets_SendMessageToConnection": (
            C.c_int, [p, C.c_uint32, p, C.c_uint32, C.c_int, C.POINTER(C.c_int64)]),
        "SteamAPI_ISteamNetworkingSockets_ReceiveMessagesOnConnection": (
            C.c_int, [p, C.c_uint32, C.POINTER(C.POINTER(Message)), C.c_int]),
        "SteamAPI_ISteamNetworkingSockets_CloseConnection": (
            C.c_bool, [p, C.c_uint32, C.c_int, C.c_char_p, C.c_bool]),
        "SteamAPI_ISteamNetworkingSockets_RunCallbacks": (None, [p]),
        "SteamAPI_SteamNetworkingMessage_t_Release": (None, [C.POINTER(Message)]),
    }
    for name, (restype, argtypes) in sigs.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes


def payload(i):
    """Message i: a header naming it, then a pattern; sizes cycle through 1 .. ~3 KiB."""
    size = 1 + (i * 397) % 3000
    head = b"msg %d;" % i
    body = bytes((i + k) % 251 for k in range(size))
    return (head + body)[:size]


def main():
    if len(sys.argv) < 3:
        print("usage: echo_client.py <libGameNetworkingSockets.so> <port> [messages] [timeout_ms]",
              file=sys.stderr)
        return 2
    lib = C.CDLL(sys.argv[1])
    port = int(sys.argv[2])
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    deadline = time.monotonic() + (int(sys.argv[4]) if len(sys.argv) > 4 else 20000) / 1000
    bind(lib)

    def result(ok, sent, received, nbytes, error=None):
        tail = "" if error is None else " error=" + error
        print("RESULT echo_client ok=%d sent=%d received=%d bytes=%d%s"
              % (ok, sent, received, nbytes, tail), flush=True)
        return 0 if ok else 1

    err = C.create_string_buffer(1024)
    if not lib.GameNetworkingSockets_Init(None, err):
        print("GameNetworkingSockets_Init: %s" % err.value.decode(), file=sys.stderr)
        return result(0, 0, 0, 0, "init")
    sockets = lib.SteamAPI_SteamNetworkingSockets_v009()

    # The connection's state, as the status-changed callback reports it.
    state = {"now": K_STATE_CONNECTING, "reason": 0, "debug": b""}

    def on_status(cb):
        info = cb.contents.info
        state.update(now=info.state, reason=info.end_reason, debug=info.end_debug)
        print("EVENT conn=%d old=%d new=%d reason=%d debug=%s"
              % (cb.contents.conn, cb.contents.old_state, info.state, info.end_reason,
                 info.end_debug.decode(errors="replace")), flush=True)

    callback = STATUS_FN(on_status)  # kept alive until Kill: GNS holds the pointer
    opt = ConfigValue(K_CONFIG_CALLBACK_STATUS_CHANGED, K_CONFIG_PTR,
                      C.cast(callback, C.c_void_p).value)

    addr = IPAddr()
    if not lib.SteamNetworkingIPAddr_ParseString(C.byref(addr), b"127.0.0.1:%d" % port):
        return result(0, 0, 0, 0, "parse")
    conn = lib.SteamAPI_ISteamNetworkingSockets_ConnectByIPAddress(
        sockets, C.byref(addr), 1, C.byref(opt))
    if conn == 0:
        return result(0, 0, 0, 0, "connect")

    def pump():
        lib.SteamAPI_ISteamNetworkingSockets_RunCallbacks(sockets)
        time.sleep(0.001)

    while state["now"] == K_STATE_CONNECTING and time.monotonic() < deadline:
        pump()
    if state["now"] != K_STATE_CONNECTED:
        lib.GameNetworkingSockets_Kill()
        return result(0, 0, 0, 0, "not_connected")

    # Send everything at once (reliable messages queue up), then collect the echoes.
    sent = 0
    for i in range(count):
        data = payload(i)
        r = lib.SteamAPI_ISteamNetworkingSockets_SendMessageToConnection(
            sockets, conn, data, len(data), K_SEND_RELIABLE, None)
        if r != K_RESULT_OK:
            print("send %d failed: EResult %d" % (i, r), file=sys.stderr)
            break
        sent += 1

    received, nbytes, error = 0, 0, None
    batch = (C.POINTER(Message) * 32)()
    while received < sent and error is None and time.monotonic() < deadline:
        n = lib.SteamAPI_ISteamNetworkingSockets_ReceiveMessagesOnConnection(sockets, conn, batch, 32)
        if n < 0:
            error = "receive"
        for k in range(max(n, 0)):
            msg = batch[k].contents
            got = C.string_at(msg.data, msg.size)
            if got != payload(received):
                print("echo %d differs: %d bytes, want %d" % (received, len(got), len(payload(received))),
                      file=sys.stderr)
                error = error or "mismatch"
            elif not msg.flags & K_SEND_RELIABLE:
                error = error or "not_reliable"
            received += 1
            nbytes += len(got)
            lib.SteamAPI_SteamNetworkingMessage_t_Release(batch[k])
        if n == 0:
            if state["now"] != K_STATE_CONNECTED:
                error = "closed"
            pump()

    # Close with linger: anything still queued is delivered before the close. GNS's own
    # example gives the library half a second to flush before shutting down; so do we.
    lib.SteamAPI_ISteamNetworkingSockets_CloseConnection(sockets, conn, 0, b"done", True)
    flush_until = time.monotonic() + 0.5
    while time.monotonic() < flush_until:
        pump()
    lib.GameNetworkingSockets_Kill()

    if error is None and received < count:
        error = "timeout" if sent == count else "send"
    return result(error is None, sent, received, nbytes, error)


if __name__ == "__main__":
    sys.exit(main())
