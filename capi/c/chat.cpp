// chat: a GameNetworkingSockets chat server and client in C++, through the virtual interfaces
// SteamNetworkingSockets() and SteamNetworkingUtils(), like GNS's own examples/example_chat.
//
//   chat server <port> <clients> [timeout_ms]
//   chat client <port> <messages> [timeout_ms]
//
// The server listens on 127.0.0.1:<port> and relays every message to every connected client
// (with one client that is an echo), on the lane it came in on, reliable or not as it came.
// It stops once <clients> clients have come and gone. The client configures two lanes, sends
// <messages> reliable messages on lane 1 and as many unreliable ones on lane 0, checks that
// each reliable one comes back in order with the Reliable flag and lane 1 and that the
// unreliable ones come back without it, then closes with CloseConnection(conn, 1000, "bye",
// linger = true); the server reports the reason and debug text it sees in the ClosedByPeer
// callback.
//
// The status-changed callback here is the global one (SetGlobalCallback_...), not the
// per-socket option the C echo server uses. Output lines (default timeout 20000 ms):
//   READY port=<port>
//   EVENT ...
//   RESULT chat_server ok=<0|1> clients=<n> messages=<n> close_state=<s> close_reason=<r>
//          close_debug=<text>
//   RESULT chat_client ok=<0|1> sent=<n> received=<n> lane=<l> reliable=<0|1>
//          unreliable_sent=<n> unreliable_received=<n> [error=<word>]
#include <steam/isteamnetworkingutils.h>
#include <steam/steamnetworkingsockets.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

ISteamNetworkingSockets *g_sockets;
HSteamNetPollGroup g_poll_group = k_HSteamNetPollGroup_Invalid;
std::set<HSteamNetConnection> g_clients; // server: connected clients
int g_served = 0;                         // server: clients accepted so far
int g_close_state = 0, g_close_reason = 0; // server: the last client's end
std::string g_close_debug = "-";
int g_state = k_ESteamNetworkingConnectionState_None; // client: its connection's state

// Two lanes, lane 1 of higher priority (a lower number is served first).
const int kLanePriorities[2] = {1, 0};
const uint16 kLaneWeights[2] = {1, 1};

void Pump()
{
    g_sockets->RunCallbacks();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void OnServerStatusChanged(SteamNetConnectionStatusChangedCallback_t *info)
{
    const HSteamNetConnection conn = info->m_hConn;
    const SteamNetConnectionInfo_t &ci = info->m_info;
    printf("EVENT server conn=%u old=%d new=%d reason=%d debug=%s\n", conn, info->m_eOldState, ci.m_eState,
           ci.m_eEndReason, ci.m_szEndDebug);
    fflush(stdout);
    switch (ci.m_eState) {
    case k_ESteamNetworkingConnectionState_Connecting:
        if (g_sockets->AcceptConnection(conn) != k_EResultOK) {
            g_sockets->CloseConnection(conn, 0, "accept failed", false);
            break;
        }
        g_sockets->SetConnectionPollGroup(conn, g_poll_group);
        // Lanes are per direction: the server configures its own to answer on lane 1.
        g_sockets->ConfigureConnectionLanes(conn, 2, kLanePriorities, kLaneWeights);
        g_clients.insert(conn);
        g_served++;
        break;
    case k_ESteamNetworkingConnectionState_ClosedByPeer:
    case k_ESteamNetworkingConnectionState_ProblemDetectedLocally:
        // The peer's reason and debug text, as its CloseConnection gave them.
        g_close_state = ci.m_eState;
        g_close_reason = ci.m_eEndReason;
        g_close_debug = ci.m_szEndDebug[0] ? ci.m_szEndDebug : "-";
        g_clients.erase(conn);
        g_sockets->CloseConnection(conn, 0, nullptr, false);
        break;
    default:
        break;
    }
}

int RunServer(int port, int want_clients, Clock::time_point deadline)
{
    SteamNetworkingUtils()->SetGlobalCallback_SteamNetConnectionStatusChanged(OnServerStatusChanged);
    SteamNetworkingIPAddr addr;
    addr.Clear();
    addr.SetIPv4(0x7f000001, static_cast<uint16>(port));
    HSteamListenSocket listen = g_sockets->CreateListenSocketIP(addr, 0, nullptr);
    g_poll_group = g_sockets->CreatePollGroup();
    if (listen == k_HSteamListenSocket_Invalid) {
        printf("RESULT chat_server ok=0 clients=0 messages=0 close_state=0 close_reason=0 close_debug=- "
               "error=listen\n");
        return 1;
    }
    printf("READY port=%d\n", port);
    fflush(stdout);

    long relayed = 0;
    bool ok = false;
    while (Clock::now() < deadline) {
        Pump();
        SteamNetworkingMessage_t *in[32];
        int n = g_sockets->ReceiveMessagesOnPollGroup(g_poll_group, in, 32);
        for (int i = 0; i < n; i++) {
            // Relay to everyone on the lane it came in on. A received message cannot be sent
            // again, so each copy is a fresh message.
            std::vector<SteamNetworkingMessage_t *> out;
            for (HSteamNetConnection to : g_clients) {
                SteamNetworkingMessage_t *m = SteamNetworkingUtils()->AllocateMessage(in[i]->m_cbSize);
                memcpy(m->m_pData, in[i]->m_pData, in[i]->m_cbSize);
                m->m_conn = to;
                m->m_nFlags = (in[i]->m_nFlags & k_nSteamNetworkingSend_Reliable) ? k_nSteamNetworkingSend_Reliable
                                                                                  : k_nSteamNetworkingSend_Unreliable;
                m->m_idxLane = in[i]->m_idxLane;
                out.push_back(m);
            }
            g_sockets->SendMessages(static_cast<int>(out.size()), out.data(), nullptr, true);
            in[i]->Release();
            relayed++;
        }
        if (g_served >= want_clients && g_clients.empty()) {
            ok = true;
            break;
        }
    }
    printf("RESULT chat_server ok=%d clients=%d messages=%ld close_state=%d close_reason=%d close_debug=%s\n", ok,
           g_served, relayed, g_close_state, g_close_reason, g_close_debug.c_str());
    fflush(stdout);
    g_sockets->CloseListenSocket(listen);
    return ok ? 0 : 1;
}

void OnClientStatusChanged(SteamNetConnectionStatusChangedCallback_t *info)
{
    g_state = info->m_info.m_eState;
    printf("EVENT client conn=%u old=%d new=%d reason=%d debug=%s\n", info->m_hConn, info->m_eOldState,
           info->m_info.m_eState, info->m_info.m_eEndReason, info->m_info.m_szEndDebug);
    fflush(stdout);
}

int RunClient(int port, int count, Clock::time_point deadline)
{
    SteamNetworkingUtils()->SetGlobalCallback_SteamNetConnectionStatusChanged(OnClientStatusChanged);
    char text[SteamNetworkingIPAddr::k_cchMaxString];
    snprintf(text, sizeof text, "127.0.0.1:%d", port);
    SteamNetworkingIPAddr addr;
    addr.ParseString(text);
    HSteamNetConnection conn = g_sockets->ConnectByIPAddress(addr, 0, nullptr);
    g_state = k_ESteamNetworkingConnectionState_Connecting;
    while (g_state == k_ESteamNetworkingConnectionState_Connecting && Clock::now() < deadline)
        Pump();
    if (conn == k_HSteamNetConnection_Invalid || g_state != k_ESteamNetworkingConnectionState_Connected) {
        printf("RESULT chat_client ok=0 sent=0 received=0 lane=-1 reliable=0 unreliable_sent=0 "
               "unreliable_received=0 error=not_connected\n");
        return 1;
    }
    const char *error = nullptr;
    if (g_sockets->ConfigureConnectionLanes(conn, 2, kLanePriorities, kLaneWeights) != k_EResultOK)
        error = "lanes";

    // Send on lane 1: only SendMessages can pick a lane.
    std::string nick = "client-" + std::to_string(port);
    std::vector<std::string> lines;
    for (int i = 0; i < count; i++)
        lines.push_back(nick + " #" + std::to_string(i) + " hello over lane 1");
    int sent = 0;
    for (const std::string &line : lines) {
        SteamNetworkingMessage_t *m = SteamNetworkingUtils()->AllocateMessage(static_cast<int>(line.size()));
        memcpy(m->m_pData, line.data(), line.size());
        m->m_conn = conn;
        m->m_nFlags = k_nSteamNetworkingSend_Reliable;
        m->m_idxLane = 1;
        int64 result = 0;
        g_sockets->SendMessages(1, &m, &result, true);
        if (result <= 0) {
            error = "send";
            break;
        }
        sent++;
    }
    // Unreliable ones on lane 0, through the single-message call (lane 0 is its lane).
    int unreliable_sent = 0;
    for (int i = 0; !error && i < count; i++) {
        std::string line = nick + " ~" + std::to_string(i) + " unreliable";
        EResult r = g_sockets->SendMessageToConnection(conn, line.data(), static_cast<uint32>(line.size()),
                                                       k_nSteamNetworkingSend_UnreliableNoNagle, nullptr);
        if (r != k_EResultOK) {
            error = "send_unreliable";
            break;
        }
        unreliable_sent++;
    }

    // Our own reliable lines come back in order, reliable, on lane 1; the unreliable ones
    // without the flag, on lane 0 (other clients' lines are skipped). Unreliable messages may
    // be lost on a real network; on loopback at this rate they arrive.
    int received = 0, lane = -1, reliable = 1, unreliable_received = 0;
    while (!error && (received < sent || unreliable_received < unreliable_sent) && Clock::now() < deadline) {
        SteamNetworkingMessage_t *in[32];
        int n = g_sockets->ReceiveMessagesOnConnection(conn, in, 32);
        if (n < 0)
            error = "receive";
        for (int i = 0; i < n; i++) {
            std::string got(static_cast<const char *>(in[i]->m_pData), in[i]->m_cbSize);
            if (got.compare(0, nick.size() + 2, nick + " ~") == 0) {
                if (in[i]->m_nFlags & k_nSteamNetworkingSend_Reliable)
                    error = "unreliable_flagged_reliable";
                if (in[i]->m_idxLane != 0)
                    error = "unreliable_lane";
                unreliable_received++;
            } else if (got.compare(0, nick.size() + 1, nick + " ") == 0) {
                if (received >= sent || got != lines[received])
                    error = "mismatch";
                if (!(in[i]->m_nFlags & k_nSteamNetworkingSend_Reliable))
                    reliable = 0;
                if (lane != -1 && lane != in[i]->m_idxLane)
                    error = "lane_changed";
                lane = in[i]->m_idxLane;
                received++;
            }
            in[i]->Release();
        }
        if (n == 0)
            Pump();
    }
    if (!error && (received < count || unreliable_received == 0))
        error = "timeout";
    if (!error && (lane != 1 || !reliable))
        error = lane != 1 ? "lane" : "not_reliable";

    // Goodbye with an application reason and text; linger delivers what is still queued.
    // Give the library half a second to send the close, as GNS's example_chat does.
    g_sockets->CloseConnection(conn, 1000, "bye", true);
    for (auto until = Clock::now() + std::chrono::milliseconds(500); Clock::now() < until;)
        Pump();
    printf("RESULT chat_client ok=%d sent=%d received=%d lane=%d reliable=%d unreliable_sent=%d "
           "unreliable_received=%d%s%s\n",
           !error, sent, received, lane, reliable, unreliable_sent, unreliable_received, error ? " error=" : "",
           error ? error : "");
    fflush(stdout);
    return error ? 1 : 0;
}

} // namespace

int main(int argc, char **argv)
{
    if (argc < 4 || (strcmp(argv[1], "server") != 0 && strcmp(argv[1], "client") != 0)) {
        fprintf(stderr, "usage: %s server <port> <clients> [timeout_ms]\n"
                        "       %s client <port> <messages> [timeout_ms]\n", argv[0], argv[0]);
        return 2;
    }
    const bool server = strcmp(argv[1], "server") == 0;
    const int port = atoi(argv[2]);
    const int n = atoi(argv[3]);
    const auto deadline = Clock::now() + std::chrono::milliseconds(argc > 4 ? atol(argv[4]) : 20000);

    SteamNetworkingErrMsg err;
    if (!GameNetworkingSockets_Init(nullptr, err)) {
        fprintf(stderr, "GameNetworkingSockets_Init: %s\n", err);
        printf("RESULT chat_%s ok=0 error=init\n", server ? "server" : "client");
        return 1;
    }
    g_sockets = SteamNetworkingSockets();
    const int rc = server ? RunServer(port, n, deadline) : RunClient(port, n, deadline);
    GameNetworkingSockets_Kill();
    return rc;
}
