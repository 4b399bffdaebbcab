/*
 * echo_flat: a GameNetworkingSockets echo server in plain C, through the flat API.
 *
 *   echo_flat <port> <messages> [timeout_ms]
 *
 * Listens on 127.0.0.1:<port>, accepts every connection into one poll group and sends every
 * message back to its sender (same bytes, same send flags, same lane). It stops once it has
 * echoed <messages> messages and every client has closed, or after timeout_ms (default
 * 20000). The status-changed callback is not global: it is passed in the options array of
 * CreateListenSocketIP (k_ESteamNetworkingConfig_Callback_ConnectionStatusChanged), and
 * connections accepted on the socket inherit it.
 *
 * Output, one line each, flushed at once so a parent can read them through a pipe:
 *   READY port=<port>                              listen socket open
 *   EVENT conn=<h> old=<state> new=<state> ...     every status change
 *   RESULT echo_flat ok=<0|1> messages=<n> bytes=<n> connections=<n> closed_by_peer=<n>
 *          [error=<word>]
 * Exit status 0 when ok=1.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, nanosleep under -std=c11 */
#include "gns_flat_c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static ISteamNetworkingSockets *g_sockets;
static ISteamNetworkingUtils *g_utils;
static HSteamNetPollGroup g_poll_group;
static int g_connections;    /* accepted so far */
static int g_open;           /* accepted and not yet closed */
static int g_closed_by_peer; /* ClosedByPeer seen */

static void on_status_changed(SteamNetConnectionStatusChangedCallback_t *info)
{
    HSteamNetConnection conn = info->m_hConn;
    int state = info->m_info.m_eState;
    printf("EVENT conn=%u old=%d new=%d listen=%u reason=%d debug=%s\n", conn, info->m_eOldState, state,
           info->m_info.m_hListenSocket, info->m_info.m_eEndReason, info->m_info.m_szEndDebug);
    fflush(stdout);

    switch (state) {
    case k_ESteamNetworkingConnectionState_Connecting:
        /* A client knocks on our listen socket: accept it and read it through the poll group. */
        if (SteamAPI_ISteamNetworkingSockets_AcceptConnection(g_sockets, conn) != k_EResultOK ||
            !SteamAPI_ISteamNetworkingSockets_SetConnectionPollGroup(g_sockets, conn, g_poll_group)) {
            SteamAPI_ISteamNetworkingSockets_CloseConnection(g_sockets, conn, 0, "accept failed", false);
            break;
        }
        g_connections++;
        g_open++;
        break;
    case k_ESteamNetworkingConnectionState_ClosedByPeer:
    case k_ESteamNetworkingConnectionState_ProblemDetectedLocally:
        /* The connection is over; closing our handle frees it. */
        if (state == k_ESteamNetworkingConnectionState_ClosedByPeer)
            g_closed_by_peer++;
        if (info->m_eOldState == k_ESteamNetworkingConnectionState_Connected ||
            info->m_eOldState == k_ESteamNetworkingConnectionState_Connecting)
            g_open--;
        SteamAPI_ISteamNetworkingSockets_CloseConnection(g_sockets, conn, 0, NULL, false);
        break;
    default:
        break;
    }
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Echo one batch of received messages; returns how many were sent back. */
static int echo_batch(SteamNetworkingMessage_t **in, int n, long long *bytes)
{
    SteamNetworkingMessage_t *out[64];
    int64_t results[64];
    for (int i = 0; i < n; i++) {
        /* A received message cannot be sent again: copy it into a fresh one. */
        SteamNetworkingMessage_t *m = SteamAPI_ISteamNetworkingUtils_AllocateMessage(g_utils, in[i]->m_cbSize);
        memcpy(m->m_pData, in[i]->m_pData, (size_t)in[i]->m_cbSize);
        m->m_conn = in[i]->m_conn;
        m->m_nFlags = in[i]->m_nFlags; /* only the Reliable bit is set on received messages */
        m->m_idxLane = in[i]->m_idxLane;
        *bytes += in[i]->m_cbSize;
        out[i] = m;
        SteamAPI_SteamNetworkingMessage_t_Release(in[i]);
    }
    SteamAPI_ISteamNetworkingSockets_SendMessages(g_sockets, n, out, results, true);
    int sent = 0;
    for (int i = 0; i < n; i++) {
        if (results[i] > 0)
            sent++;
        else
            printf("EVENT send_failed result=%lld\n", (long long)-results[i]);
    }
    return sent;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s <port> <messages> [timeout_ms]\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    long long want = atoll(argv[2]);
    long long timeout_ms = argc > 3 ? atoll(argv[3]) : 20000;

    SteamNetworkingErrMsg err;
    if (!GameNetworkingSockets_Init(NULL, err)) {
        printf("RESULT echo_flat ok=0 messages=0 bytes=0 connections=0 closed_by_peer=0 error=init\n");
        fprintf(stderr, "GameNetworkingSockets_Init: %s\n", err);
        return 1;
    }
    g_sockets = SteamAPI_SteamNetworkingSockets_v009();
    g_utils = SteamAPI_SteamNetworkingUtils_v003();
    g_poll_group = SteamAPI_ISteamNetworkingSockets_CreatePollGroup(g_sockets);

    char text[64];
    snprintf(text, sizeof text, "127.0.0.1:%d", port);
    SteamNetworkingIPAddr addr;
    SteamAPI_SteamNetworkingIPAddr_Clear(&addr);
    if (!SteamAPI_SteamNetworkingIPAddr_ParseString(&addr, text)) {
        fprintf(stderr, "cannot parse %s\n", text);
        return 2;
    }

    SteamNetworkingConfigValue_t opt;
    opt.m_eValue = k_ESteamNetworkingConfig_Callback_ConnectionStatusChanged;
    opt.m_eDataType = k_ESteamNetworkingConfig_Ptr;
    opt.m_val.m_ptr = (void *)on_status_changed;
    HSteamListenSocket listen = SteamAPI_ISteamNetworkingSockets_CreateListenSocketIP(g_sockets, &addr, 1, &opt);
    if (listen == k_HSteamListenSocket_Invalid) {
        printf("RESULT echo_flat ok=0 messages=0 bytes=0 connections=0 closed_by_peer=0 error=listen\n");
        GameNetworkingSockets_Kill();
        return 1;
    }
    printf("READY port=%d\n", port);
    fflush(stdout);

    long long echoed = 0, bytes = 0;
    long long deadline = now_ms() + timeout_ms;
    int ok = 0;
    while (now_ms() < deadline) {
        SteamAPI_ISteamNetworkingSockets_RunCallbacks(g_sockets);
        SteamNetworkingMessage_t *in[64];
        int n = SteamAPI_ISteamNetworkingSockets_ReceiveMessagesOnPollGroup(g_sockets, g_poll_group, in, 64);
        if (n < 0) {
            fprintf(stderr, "ReceiveMessagesOnPollGroup failed\n");
            break;
        }
        if (n > 0) {
            echoed += echo_batch(in, n, &bytes);
            continue;
        }
        /* Done once everything was echoed and every client has said goodbye. */
        if (echoed >= want && g_connections > 0 && g_open == 0) {
            ok = 1;
            break;
        }
        struct timespec pause = {0, 1000000}; /* 1 ms: nothing to do right now */
        nanosleep(&pause, NULL);
    }

    printf("RESULT echo_flat ok=%d messages=%lld bytes=%lld connections=%d closed_by_peer=%d%s\n", ok, echoed, bytes,
           g_connections, g_closed_by_peer, ok ? "" : " error=timeout");
    fflush(stdout);
    SteamAPI_ISteamNetworkingSockets_CloseListenSocket(g_sockets, listen);
    SteamAPI_ISteamNetworkingSockets_DestroyPollGroup(g_sockets, g_poll_group);
    GameNetworkingSockets_Kill();
    return ok ? 0 : 1;
}
