/*
 * misuse: calls the flat API wrongly on purpose and prints what each call returns.
 *
 *   misuse <unused_port>
 *
 * Invalid handles (0, which is k_HSteamNetConnection_Invalid, and 12345, which names
 * nothing), a handle that was valid and is closed, a listen socket on port 0, and the null
 * pointers the headers allow (GetConnectionInfo's pInfo, SendMessageToConnection's
 * pOutMessageNumber, SendMessages' pOutMessageNumberOrResult, CloseConnection's pszDebug).
 * A well-behaved library returns the documented failure value and does not crash.
 * <unused_port> is a 127.0.0.1 port nobody listens on (a connect that goes nowhere).
 *
 * Output: one `CHECK <name> <value>` line per call, then `RESULT misuse ok=1 checks=<n>`.
 * This program does not judge the values; the test compares them with real GNS's.
 */
#include "gns_flat_c.h"

#include <stdio.h>
#include <stdlib.h>

static int g_checks;

static void check(const char *name, long long value)
{
    printf("CHECK %s %lld\n", name, value);
    g_checks++;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s <unused_port>\n", argv[0]);
        return 2;
    }
    SteamNetworkingErrMsg err;
    if (!GameNetworkingSockets_Init(NULL, err)) {
        fprintf(stderr, "GameNetworkingSockets_Init: %s\n", err);
        printf("RESULT misuse ok=0 checks=0 error=init\n");
        return 1;
    }
    ISteamNetworkingSockets *s = SteamAPI_SteamNetworkingSockets_v009();
    ISteamNetworkingUtils *u = SteamAPI_SteamNetworkingUtils_v003();
    const HSteamNetConnection bogus[2] = {k_HSteamNetConnection_Invalid, 12345};
    const char *tag[2] = {"invalid", "12345"};
    SteamNetConnectionInfo_t info;
    SteamNetworkingMessage_t *msgs[4];
    char name[64];

    for (int i = 0; i < 2; i++) {
        HSteamNetConnection c = bogus[i];
#define CHECK(what, expr)                                        \
    do {                                                         \
        char key[64];                                            \
        snprintf(key, sizeof key, "%s_%s", what, tag[i]);        \
        check(key, (long long)(expr));                           \
    } while (0)
        CHECK("send", SteamAPI_ISteamNetworkingSockets_SendMessageToConnection(s, c, "x", 1, k_nSteamNetworkingSend_Reliable, NULL));
        CHECK("get_info", SteamAPI_ISteamNetworkingSockets_GetConnectionInfo(s, c, &info));
        CHECK("get_info_null", SteamAPI_ISteamNetworkingSockets_GetConnectionInfo(s, c, NULL));
        CHECK("close", SteamAPI_ISteamNetworkingSockets_CloseConnection(s, c, 0, NULL, false));
        CHECK("close_linger", SteamAPI_ISteamNetworkingSockets_CloseConnection(s, c, 1000, "bye", true));
        CHECK("receive", SteamAPI_ISteamNetworkingSockets_ReceiveMessagesOnConnection(s, c, msgs, 4));
        CHECK("accept", SteamAPI_ISteamNetworkingSockets_AcceptConnection(s, c));
        CHECK("flush", SteamAPI_ISteamNetworkingSockets_FlushMessagesOnConnection(s, c));
        CHECK("set_user_data", SteamAPI_ISteamNetworkingSockets_SetConnectionUserData(s, c, 7));
        CHECK("get_user_data", SteamAPI_ISteamNetworkingSockets_GetConnectionUserData(s, c));
        CHECK("get_name", SteamAPI_ISteamNetworkingSockets_GetConnectionName(s, c, name, sizeof name));
        CHECK("detailed_status", SteamAPI_ISteamNetworkingSockets_GetDetailedConnectionStatus(s, c, name, sizeof name));
        CHECK("lanes", SteamAPI_ISteamNetworkingSockets_ConfigureConnectionLanes(s, c, 1, NULL, NULL));
        CHECK("set_poll_group", SteamAPI_ISteamNetworkingSockets_SetConnectionPollGroup(s, c, k_HSteamNetPollGroup_Invalid));
        CHECK("receive_poll_group", SteamAPI_ISteamNetworkingSockets_ReceiveMessagesOnPollGroup(s, c, msgs, 4));
        CHECK("destroy_poll_group", SteamAPI_ISteamNetworkingSockets_DestroyPollGroup(s, c));
        CHECK("close_listen", SteamAPI_ISteamNetworkingSockets_CloseListenSocket(s, c));
        SteamNetworkingIPAddr where;
        CHECK("listen_address", SteamAPI_ISteamNetworkingSockets_GetListenSocketAddress(s, c, &where));

        /* SendMessages reports each message's failure as a negated EResult. */
        SteamNetworkingMessage_t *m = SteamAPI_ISteamNetworkingUtils_AllocateMessage(u, 4);
        m->m_conn = c;
        m->m_nFlags = k_nSteamNetworkingSend_Reliable;
        int64_t result = 0;
        SteamAPI_ISteamNetworkingSockets_SendMessages(s, 1, &m, &result, true);
        CHECK("send_messages", result);
        m = SteamAPI_ISteamNetworkingUtils_AllocateMessage(u, 4);
        m->m_conn = c;
        SteamAPI_ISteamNetworkingSockets_SendMessages(s, 1, &m, NULL, true); /* must not crash */
#undef CHECK
    }

    /* Listen sockets need a port: port 0 is refused. */
    SteamNetworkingIPAddr addr;
    SteamAPI_SteamNetworkingIPAddr_Clear(&addr);
    SteamAPI_SteamNetworkingIPAddr_ParseString(&addr, "127.0.0.1:0");
    check("listen_port0", SteamAPI_ISteamNetworkingSockets_CreateListenSocketIP(s, &addr, 0, NULL));
    check("parse_garbage", SteamAPI_SteamNetworkingIPAddr_ParseString(&addr, "not an address"));

    /* A handle that was valid: after CloseConnection it is gone for every call. */
    char text[64];
    snprintf(text, sizeof text, "127.0.0.1:%d", atoi(argv[1]));
    SteamAPI_SteamNetworkingIPAddr_ParseString(&addr, text);
    HSteamNetConnection conn = SteamAPI_ISteamNetworkingSockets_ConnectByIPAddress(s, &addr, 0, NULL);
    check("connect_valid", conn != k_HSteamNetConnection_Invalid);
    check("connecting_send_unreliable",
          SteamAPI_ISteamNetworkingSockets_SendMessageToConnection(s, conn, "x", 1, k_nSteamNetworkingSend_Unreliable, NULL));
    check("connecting_receive", SteamAPI_ISteamNetworkingSockets_ReceiveMessagesOnConnection(s, conn, msgs, 4));
    check("connecting_get_info", SteamAPI_ISteamNetworkingSockets_GetConnectionInfo(s, conn, &info));
    check("connecting_state", info.m_eState);
    check("connecting_accept", SteamAPI_ISteamNetworkingSockets_AcceptConnection(s, conn));
    check("close_first", SteamAPI_ISteamNetworkingSockets_CloseConnection(s, conn, 0, NULL, false));
    check("close_again", SteamAPI_ISteamNetworkingSockets_CloseConnection(s, conn, 0, NULL, false));
    check("closed_send", SteamAPI_ISteamNetworkingSockets_SendMessageToConnection(s, conn, "x", 1, k_nSteamNetworkingSend_Reliable, NULL));
    check("closed_get_info", SteamAPI_ISteamNetworkingSockets_GetConnectionInfo(s, conn, &info));
    check("closed_receive", SteamAPI_ISteamNetworkingSockets_ReceiveMessagesOnConnection(s, conn, msgs, 4));

    /* A message of zero bytes has no buffer. */
    SteamNetworkingMessage_t *empty = SteamAPI_ISteamNetworkingUtils_AllocateMessage(u, 0);
    check("alloc0_non_null", empty != NULL);
    check("alloc0_size", empty ? empty->m_cbSize : -1);
    check("alloc0_data_null", empty ? empty->m_pData == NULL : -1);
    if (empty)
        SteamAPI_SteamNetworkingMessage_t_Release(empty);

    SteamAPI_ISteamNetworkingSockets_RunCallbacks(s);
    printf("RESULT misuse ok=1 checks=%d\n", g_checks);
    fflush(stdout);
    GameNetworkingSockets_Kill();
    return 0;
}
