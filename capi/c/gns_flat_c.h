/*
 * gns_flat_c.h: the C-compatible subset of GameNetworkingSockets' flat API.
 *
 * Valve's steam/steamnetworkingsockets_flat.h has C linkage but is C++ code (it includes the
 * C++ interface headers and passes structs by reference), so a C program cannot include it.
 * This header declares the functions the example programs need, with every C++ reference
 * (`const T &`) written as the pointer it is in the ABI, and the structs with the layouts of
 * GNS 1.6 on Linux x86_64 (checked by the static asserts at the bottom):
 *
 *   - SteamNetworkingIPAddr and SteamNetworkingIdentity are `#pragma pack(1)`;
 *   - SteamNetConnectionInfo_t and the status-changed callback are `#pragma pack(4)`
 *     (VALVE_CALLBACK_PACK_SMALL on Linux), so an int64 after an odd number of 4-byte fields
 *     is NOT padded to 8;
 *   - SteamNetworkingMessage_t and SteamNetworkingConfigValue_t have natural alignment.
 *
 * Only public GNS names are used; nothing here is specific to one implementation.
 */
#ifndef GNS_FLAT_C_H
#define GNS_FLAT_C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint32_t HSteamNetConnection;
typedef uint32_t HSteamListenSocket;
typedef uint32_t HSteamNetPollGroup;
typedef int64_t SteamNetworkingMicroseconds;
typedef int EResult; /* enum EResult: 1 = OK, 2 = Fail, 3 = NoConnection, 8 = InvalidParam ... */

#define k_HSteamNetConnection_Invalid 0u
#define k_HSteamListenSocket_Invalid 0u
#define k_HSteamNetPollGroup_Invalid 0u

#define k_EResultOK 1
#define k_EResultNoConnection 3
#define k_EResultInvalidParam 8
#define k_EResultInvalidState 11

#define k_nSteamNetworkingSend_Unreliable 0
#define k_nSteamNetworkingSend_NoNagle 1
#define k_nSteamNetworkingSend_NoDelay 4
#define k_nSteamNetworkingSend_Reliable 8

/* ESteamNetworkingConnectionState */
#define k_ESteamNetworkingConnectionState_None 0
#define k_ESteamNetworkingConnectionState_Connecting 1
#define k_ESteamNetworkingConnectionState_FindingRoute 2
#define k_ESteamNetworkingConnectionState_Connected 3
#define k_ESteamNetworkingConnectionState_ClosedByPeer 4
#define k_ESteamNetworkingConnectionState_ProblemDetectedLocally 5

/* ESteamNetworkingConfigDataType and the few ESteamNetworkingConfigValue used here */
#define k_ESteamNetworkingConfig_Int32 1
#define k_ESteamNetworkingConfig_Int64 2
#define k_ESteamNetworkingConfig_Float 3
#define k_ESteamNetworkingConfig_String 4
#define k_ESteamNetworkingConfig_Ptr 5
#define k_ESteamNetworkingConfig_TimeoutInitial 24
#define k_ESteamNetworkingConfig_TimeoutConnected 25
#define k_ESteamNetworkingConfig_Callback_ConnectionStatusChanged 201

#define k_cchMaxSteamNetworkingErrMsg 1024
typedef char SteamNetworkingErrMsg[k_cchMaxSteamNetworkingErrMsg];

#pragma pack(push, 1)

/* An IPv6 address (IPv4 as ::ffff:a.b.c.d) and a port in host byte order: 18 bytes. */
typedef struct SteamNetworkingIPAddr {
    uint8_t m_ipv6[16];
    uint16_t m_port;
} SteamNetworkingIPAddr;

/* Who is on the other end: a tag, a size and a 128-byte union. 136 bytes. */
typedef struct SteamNetworkingIdentity {
    int m_eType;
    int m_cbSize;
    uint8_t m_data[128];
} SteamNetworkingIdentity;

#pragma pack(pop)

#pragma pack(push, 4)

typedef struct SteamNetConnectionInfo_t {
    SteamNetworkingIdentity m_identityRemote;
    int64_t m_nUserData;
    HSteamListenSocket m_hListenSocket;
    SteamNetworkingIPAddr m_addrRemote;
    uint16_t m__pad1;
    uint32_t m_idPOPRemote;
    uint32_t m_idPOPRelay;
    int m_eState;     /* ESteamNetworkingConnectionState */
    int m_eEndReason; /* ESteamNetConnectionEnd, or the application's close reason */
    char m_szEndDebug[128];
    char m_szConnectionDescription[128];
    int m_nFlags;
    uint32_t reserved[63];
} SteamNetConnectionInfo_t;

/* Passed to the ConnectionStatusChanged callback. */
typedef struct SteamNetConnectionStatusChangedCallback_t {
    HSteamNetConnection m_hConn;
    SteamNetConnectionInfo_t m_info;
    int m_eOldState;
} SteamNetConnectionStatusChangedCallback_t;

#pragma pack(pop)

/* Messages and config values have natural alignment (declared after the pack(4) region). */
typedef struct SteamNetworkingMessage_t SteamNetworkingMessage_t;
struct SteamNetworkingMessage_t {
    void *m_pData;
    int m_cbSize;
    HSteamNetConnection m_conn;
    SteamNetworkingIdentity m_identityPeer;
    int64_t m_nConnUserData;
    SteamNetworkingMicroseconds m_usecTimeReceived;
    int64_t m_nMessageNumber;
    void (*m_pfnFreeData)(SteamNetworkingMessage_t *pMsg);
    void (*m_pfnRelease)(SteamNetworkingMessage_t *pMsg);
    int m_nChannel;
    int m_nFlags; /* k_nSteamNetworkingSend_*; on received messages only Reliable is valid */
    int64_t m_nUserData;
    uint16_t m_idxLane;
    uint16_t _pad1__;
};

/* One option passed to CreateListenSocketIP / ConnectByIPAddress. */
typedef struct SteamNetworkingConfigValue_t {
    int m_eValue;    /* ESteamNetworkingConfigValue */
    int m_eDataType; /* ESteamNetworkingConfigDataType */
    union {
        int32_t m_int32;
        int64_t m_int64;
        float m_float;
        const char *m_string;
        void *m_ptr;
    } m_val;
} SteamNetworkingConfigValue_t;


typedef void (*FnSteamNetConnectionStatusChanged)(SteamNetConnectionStatusChangedCallback_t *);

/* The interface objects are opaque to C: the flat functions take them as `self`. */
typedef struct ISteamNetworkingSockets ISteamNetworkingSockets;
typedef struct ISteamNetworkingUtils ISteamNetworkingUtils;

/* steam/steamnetworkingsockets.h */
bool GameNetworkingSockets_Init(const SteamNetworkingIdentity *pIdentity, SteamNetworkingErrMsg errMsg);
void GameNetworkingSockets_Kill(void);

/* steam/steamnetworkingsockets_flat.h: ISteamNetworkingSockets */
ISteamNetworkingSockets *SteamAPI_SteamNetworkingSockets_v009(void);
HSteamListenSocket SteamAPI_ISteamNetworkingSockets_CreateListenSocketIP(
    ISteamNetworkingSockets *self, const SteamNetworkingIPAddr *localAddress, int nOptions,
    const SteamNetworkingConfigValue_t *pOptions);
HSteamNetConnection SteamAPI_ISteamNetworkingSockets_ConnectByIPAddress(
    ISteamNetworkingSockets *self, const SteamNetworkingIPAddr *address, int nOptions,
    const SteamNetworkingConfigValue_t *pOptions);
EResult SteamAPI_ISteamNetworkingSockets_AcceptConnection(ISteamNetworkingSockets *self, HSteamNetConnection hConn);
bool SteamAPI_ISteamNetworkingSockets_CloseConnection(ISteamNetworkingSockets *self, HSteamNetConnection hPeer,
                                                      int nReason, const char *pszDebug, bool bEnableLinger);
bool SteamAPI_ISteamNetworkingSockets_CloseListenSocket(ISteamNetworkingSockets *self, HSteamListenSocket hSocket);
bool SteamAPI_ISteamNetworkingSockets_SetConnectionUserData(ISteamNetworkingSockets *self, HSteamNetConnection hPeer,
                                                            int64_t nUserData);
int64_t SteamAPI_ISteamNetworkingSockets_GetConnectionUserData(ISteamNetworkingSockets *self, HSteamNetConnection hPeer);
bool SteamAPI_ISteamNetworkingSockets_GetConnectionName(ISteamNetworkingSockets *self, HSteamNetConnection hPeer,
                                                        char *pszName, int nMaxLen);
EResult SteamAPI_ISteamNetworkingSockets_SendMessageToConnection(ISteamNetworkingSockets *self, HSteamNetConnection hConn,
                                                                 const void *pData, uint32_t cbData, int nSendFlags,
                                                                 int64_t *pOutMessageNumber);
void SteamAPI_ISteamNetworkingSockets_SendMessages(ISteamNetworkingSockets *self, int nMessages,
                                                   SteamNetworkingMessage_t **pMessages,
                                                   int64_t *pOutMessageNumberOrResult, bool bDeleteFailedMessages);
EResult SteamAPI_ISteamNetworkingSockets_FlushMessagesOnConnection(ISteamNetworkingSockets *self, HSteamNetConnection hConn);
int SteamAPI_ISteamNetworkingSockets_ReceiveMessagesOnConnection(ISteamNetworkingSockets *self, HSteamNetConnection hConn,
                                                                 SteamNetworkingMessage_t **ppOutMessages, int nMaxMessages);
bool SteamAPI_ISteamNetworkingSockets_GetConnectionInfo(ISteamNetworkingSockets *self, HSteamNetConnection hConn,
                                                        SteamNetConnectionInfo_t *pInfo);
int SteamAPI_ISteamNetworkingSockets_GetDetailedConnectionStatus(ISteamNetworkingSockets *self, HSteamNetConnection hConn,
                                                                 char *pszBuf, int cbBuf);
bool SteamAPI_ISteamNetworkingSockets_GetListenSocketAddress(ISteamNetworkingSockets *self, HSteamListenSocket hSocket,
                                                             SteamNetworkingIPAddr *address);
EResult SteamAPI_ISteamNetworkingSockets_ConfigureConnectionLanes(ISteamNetworkingSockets *self, HSteamNetConnection hConn,
                                                                  int nNumLanes, const int *pLanePriorities,
                                                                  const uint16_t *pLaneWeights);
HSteamNetPollGroup SteamAPI_ISteamNetworkingSockets_CreatePollGroup(ISteamNetworkingSockets *self);
bool SteamAPI_ISteamNetworkingSockets_DestroyPollGroup(ISteamNetworkingSockets *self, HSteamNetPollGroup hPollGroup);
bool SteamAPI_ISteamNetworkingSockets_SetConnectionPollGroup(ISteamNetworkingSockets *self, HSteamNetConnection hConn,
                                                             HSteamNetPollGroup hPollGroup);
int SteamAPI_ISteamNetworkingSockets_ReceiveMessagesOnPollGroup(ISteamNetworkingSockets *self, HSteamNetPollGroup hPollGroup,
                                                                SteamNetworkingMessage_t **ppOutMessages, int nMaxMessages);
void SteamAPI_ISteamNetworkingSockets_RunCallbacks(ISteamNetworkingSockets *self);

/* ISteamNetworkingUtils */
ISteamNetworkingUtils *SteamAPI_SteamNetworkingUtils_v003(void);
SteamNetworkingMessage_t *SteamAPI_ISteamNetworkingUtils_AllocateMessage(ISteamNetworkingUtils *self, int cbAllocateBuffer);
SteamNetworkingMicroseconds SteamAPI_ISteamNetworkingUtils_GetLocalTimestamp(ISteamNetworkingUtils *self);

/* SteamNetworkingIPAddr and SteamNetworkingMessage_t helpers */
void SteamAPI_SteamNetworkingIPAddr_Clear(SteamNetworkingIPAddr *self);
bool SteamAPI_SteamNetworkingIPAddr_ParseString(SteamNetworkingIPAddr *self, const char *pszStr);
void SteamAPI_SteamNetworkingIPAddr_ToString(const SteamNetworkingIPAddr *self, char *buf, size_t cbBuf, bool bWithPort);
void SteamAPI_SteamNetworkingMessage_t_Release(SteamNetworkingMessage_t *self);

/* P2P custom signaling (steamnetworkingcustomsignaling.h; the C adapters of the flat header).
 * The signaling and receive-context objects are C++ objects: C only passes their pointers. */
typedef struct ISteamNetworkingConnectionSignaling ISteamNetworkingConnectionSignaling;
typedef bool (*FSteamNetworkingSocketsCustomSignaling_SendSignal)(void *ctx, HSteamNetConnection hConn,
                                                                 const SteamNetConnectionInfo_t *info,
                                                                 const void *pMsg, int cbMsg);
typedef void (*FSteamNetworkingSocketsCustomSignaling_Release)(void *ctx);
typedef ISteamNetworkingConnectionSignaling *(*FSteamNetworkingCustomSignalingRecvContext_OnConnectRequest)(
    void *ctx, HSteamNetConnection hConn, const SteamNetworkingIdentity *identityPeer, int nLocalVirtualPort);
typedef void (*FSteamNetworkingCustomSignalingRecvContext_SendRejectionSignal)(
    void *ctx, const SteamNetworkingIdentity *identityPeer, const void *pMsg, int cbMsg);
HSteamListenSocket SteamAPI_ISteamNetworkingSockets_CreateListenSocketP2P(ISteamNetworkingSockets *self,
                                                                          int nLocalVirtualPort, int nOptions,
                                                                          const SteamNetworkingConfigValue_t *pOptions);
HSteamNetConnection SteamAPI_ISteamNetworkingSockets_ConnectP2PCustomSignaling(
    ISteamNetworkingSockets *self, ISteamNetworkingConnectionSignaling *pSignaling,
    const SteamNetworkingIdentity *pPeerIdentity, int nRemoteVirtualPort, int nOptions,
    const SteamNetworkingConfigValue_t *pOptions);
ISteamNetworkingConnectionSignaling *SteamAPI_ISteamNetworkingSockets_CreateCustomSignaling(
    void *ctx, FSteamNetworkingSocketsCustomSignaling_SendSignal fnSendSignal,
    FSteamNetworkingSocketsCustomSignaling_Release fnRelease);
bool SteamAPI_ISteamNetworkingSockets_ReceivedP2PCustomSignal2(
    ISteamNetworkingSockets *self, const void *pMsg, int cbMsg, void *ctx,
    FSteamNetworkingCustomSignalingRecvContext_OnConnectRequest fnOnConnectRequest,
    FSteamNetworkingCustomSignalingRecvContext_SendRejectionSignal fnSendRejectionSignal);
bool SteamAPI_SteamNetworkingIdentity_ParseString(SteamNetworkingIdentity *self, size_t sizeofIdentity,
                                                  const char *pszStr);

#ifdef __cplusplus
}
#endif

/* The layouts GNS 1.6 has on Linux x86_64 (see the top of this file). */
#if defined(__x86_64__) && defined(__linux__) && !defined(__cplusplus)
_Static_assert(sizeof(SteamNetworkingIPAddr) == 18, "SteamNetworkingIPAddr layout");
_Static_assert(sizeof(SteamNetworkingIdentity) == 136, "SteamNetworkingIdentity layout");
_Static_assert(sizeof(SteamNetConnectionInfo_t) == 696, "SteamNetConnectionInfo_t layout");
_Static_assert(offsetof(SteamNetConnectionInfo_t, m_eEndReason) == 180, "m_eEndReason offset");
_Static_assert(offsetof(SteamNetConnectionStatusChangedCallback_t, m_info) == 4, "m_info offset");
_Static_assert(sizeof(SteamNetConnectionStatusChangedCallback_t) == 704, "callback layout");
_Static_assert(offsetof(SteamNetworkingMessage_t, m_nFlags) == 196, "m_nFlags offset");
_Static_assert(offsetof(SteamNetworkingMessage_t, m_idxLane) == 208, "m_idxLane offset");
_Static_assert(sizeof(SteamNetworkingMessage_t) == 216, "SteamNetworkingMessage_t layout");
_Static_assert(sizeof(SteamNetworkingConfigValue_t) == 16, "SteamNetworkingConfigValue_t layout");
#endif

#endif /* GNS_FLAT_C_H */
