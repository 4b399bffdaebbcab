/*
 * p2p_self: P2P over custom signaling through the flat C API, in one process (the library has
 * one instance per process): listen on virtual port 0, connect to our own identity with
 * ConnectP2PCustomSignaling, carry the signals through a queue fed back with
 * ReceivedP2PCustomSignal2, accept, exchange one reliable message each way, close both ends,
 * and wait for both signaling objects to be released.
 *
 *   p2p_self [timeout_ms]
 *
 * ICE gathers no loopback addresses: run it where a non-loopback address exists (the test
 * runs it in a private network namespace). Prints EVENT lines and one RESULT line.
 */
#define _POSIX_C_SOURCE 200809L
#include "gns_flat_c.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SIGNALS 256

/* Signals from any of our connections (SendSignal may run on a library thread). */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct { void *data; int size; } g_wire[MAX_SIGNALS];
static int g_wire_len;
static int g_released;
static HSteamNetConnection g_server;
static int g_connected[2];
static HSteamNetConnection g_client;

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static bool send_signal(void *ctx, HSteamNetConnection conn, const SteamNetConnectionInfo_t *info, const void *msg,
                        int size) {
    (void)ctx;
    (void)conn;
    (void)info;
    bool ok = false;
    pthread_mutex_lock(&g_lock);
    if (g_wire_len < MAX_SIGNALS) {
        g_wire[g_wire_len].data = malloc((size_t)size);
        if (g_wire[g_wire_len].data) {
            memcpy(g_wire[g_wire_len].data, msg, (size_t)size);
            g_wire[g_wire_len].size = size;
            g_wire_len++;
            ok = true;
        }
    }
    pthread_mutex_unlock(&g_lock);
    return ok;
}

static void release(void *ctx) {
    (void)ctx;
    pthread_mutex_lock(&g_lock);
    g_released++;
    pthread_mutex_unlock(&g_lock);
}

static ISteamNetworkingConnectionSignaling *on_connect_request(void *ctx, HSteamNetConnection conn,
                                                               const SteamNetworkingIdentity *peer, int vport) {
    (void)ctx;
    (void)peer;
    printf("EVENT request conn=%u vport=%d\n", conn, vport);
    fflush(stdout);
    g_server = conn;
    return SteamAPI_ISteamNetworkingSockets_CreateCustomSignaling(NULL, send_signal, release);
}

static void on_status(SteamNetConnectionStatusChangedCallback_t *ev) {
    ISteamNetworkingSockets *s = SteamAPI_SteamNetworkingSockets_v009();
    int state = ev->m_info.m_eState;
    printf("EVENT conn=%u old=%d new=%d reason=%d\n", ev->m_hConn, ev->m_eOldState, state, ev->m_info.m_eEndReason);
    fflush(stdout);
    if (ev->m_hConn == g_server && state == k_ESteamNetworkingConnectionState_Connecting)
        SteamAPI_ISteamNetworkingSockets_AcceptConnection(s, ev->m_hConn);
    if (state == k_ESteamNetworkingConnectionState_Connected)
        g_connected[ev->m_hConn == g_client ? 0 : 1] = 1;
}

/* Feeds every queued signal back; false if one was refused. */
static bool deliver(ISteamNetworkingSockets *s) {
    pthread_mutex_lock(&g_lock);
    int n = g_wire_len;
    void *data[MAX_SIGNALS];
    int size[MAX_SIGNALS];
    for (int i = 0; i < n; i++) {
        data[i] = g_wire[i].data;
        size[i] = g_wire[i].size;
    }
    g_wire_len = 0;
    pthread_mutex_unlock(&g_lock);
    bool ok = true;
    for (int i = 0; i < n; i++) {
        ok &= SteamAPI_ISteamNetworkingSockets_ReceivedP2PCustomSignal2(s, data[i], size[i], NULL, on_connect_request,
                                                                       NULL);
        free(data[i]);
    }
    return ok;
}

/* Receives one message on `conn` into `buf`; its size, or -1 when none. */
static int receive(ISteamNetworkingSockets *s, HSteamNetConnection conn, char *buf, int cap) {
    SteamNetworkingMessage_t *msg = NULL;
    if (SteamAPI_ISteamNetworkingSockets_ReceiveMessagesOnConnection(s, conn, &msg, 1) != 1)
        return -1;
    int n = msg->m_cbSize < cap ? msg->m_cbSize : cap;
    memcpy(buf, msg->m_pData, (size_t)n);
    SteamAPI_SteamNetworkingMessage_t_Release(msg);
    return n;
}

static int finish(bool ok, const char *why) {
    printf("RESULT p2p_self ok=%d released=%d why=%s\n", ok ? 1 : 0, g_released, why);
    fflush(stdout);
    GameNetworkingSockets_Kill();
    return ok ? 0 : 1;
}

int main(int argc, char **argv) {
    long long timeout = argc > 1 ? atoll(argv[1]) : 20000;
    long long deadline = now_ms() + timeout;
    SteamNetworkingIdentity me;
    SteamNetworkingErrMsg err;
    if (!SteamAPI_SteamNetworkingIdentity_ParseString(&me, sizeof me, "str:p2p_self"))
        return finish(false, "identity");
    if (!GameNetworkingSockets_Init(&me, err)) {
        fprintf(stderr, "Init: %s\n", err);
        return finish(false, "init");
    }
    ISteamNetworkingSockets *s = SteamAPI_SteamNetworkingSockets_v009();
    SteamNetworkingConfigValue_t opt;
    opt.m_eValue = k_ESteamNetworkingConfig_Callback_ConnectionStatusChanged;
    opt.m_eDataType = k_ESteamNetworkingConfig_Ptr;
    opt.m_val.m_ptr = (void *)on_status;

    if (SteamAPI_ISteamNetworkingSockets_ConnectP2PCustomSignaling(s, NULL, &me, 0, 0, NULL) != 0)
        return finish(false, "null_signaling_accepted");
    if (SteamAPI_ISteamNetworkingSockets_ReceivedP2PCustomSignal2(s, "garbage", 7, NULL, on_connect_request, NULL))
        return finish(false, "garbage_accepted");
    HSteamListenSocket listen = SteamAPI_ISteamNetworkingSockets_CreateListenSocketP2P(s, 0, 1, &opt);
    if (listen == 0)
        return finish(false, "listen");
    ISteamNetworkingConnectionSignaling *sig =
        SteamAPI_ISteamNetworkingSockets_CreateCustomSignaling(NULL, send_signal, release);
    g_client = SteamAPI_ISteamNetworkingSockets_ConnectP2PCustomSignaling(s, sig, &me, 0, 1, &opt);
    if (g_client == 0)
        return finish(false, "connect");

    while (!(g_connected[0] && g_connected[1])) {
        if (!deliver(s))
            return finish(false, "signal_refused");
        SteamAPI_ISteamNetworkingSockets_RunCallbacks(s);
        if (now_ms() > deadline)
            return finish(false, "timeout_connecting");
        sleep_ms(2);
    }
    static const char hello[] = "hello over ICE";
    SteamAPI_ISteamNetworkingSockets_SendMessageToConnection(s, g_client, hello, sizeof hello,
                                                             k_nSteamNetworkingSend_Reliable, NULL);
    char buf[64];
    int n;
    while ((n = receive(s, g_server, buf, sizeof buf)) < 0) {
        deliver(s);
        SteamAPI_ISteamNetworkingSockets_RunCallbacks(s);
        if (now_ms() > deadline)
            return finish(false, "timeout_message");
        sleep_ms(2);
    }
    if (n != (int)sizeof hello || memcmp(buf, hello, sizeof hello) != 0)
        return finish(false, "message_mismatch");
    printf("EVENT message bytes=%d\n", n);
    fflush(stdout);
    SteamAPI_ISteamNetworkingSockets_CloseConnection(s, g_client, 0, NULL, false);
    SteamAPI_ISteamNetworkingSockets_CloseConnection(s, g_server, 0, NULL, false);
    SteamAPI_ISteamNetworkingSockets_CloseListenSocket(s, listen);
    /* Release comes once the connections are destroyed, after FinWait (about 5 s). */
    for (;;) {
        pthread_mutex_lock(&g_lock);
        int released = g_released;
        pthread_mutex_unlock(&g_lock);
        if (released >= 2)
            break;
        deliver(s);
        SteamAPI_ISteamNetworkingSockets_RunCallbacks(s);
        if (now_ms() > deadline)
            return finish(false, "timeout_release");
        sleep_ms(10);
    }
    return finish(g_released == 2, "done");
}
