/* One table of error codes and the per-thread message behind zkc_errmsg(). */
#include "internal.h"

#include <stdio.h>
#include <string.h>

static const struct {
    int code;
    const char *name; /* the macro's name, lower case, without ZKC_E: metrics' result label */
    const char *text;
} errtab[] = {
    {ZKC_OK, "ok", "success"},
    {ZKC_EINVAL, "inval", "invalid argument"},
    {ZKC_ENOMEM, "nomem", "out of memory"},
    {ZKC_ETIMEDOUT, "timedout", "timed out"},
    {ZKC_ECANCELED, "canceled", "cancelled"},
    {ZKC_ECONNLOSS, "connloss", "no ZooKeeper server reachable"},
    {ZKC_ESESSIONLOST, "sessionlost", "ZooKeeper session lost"},
    {ZKC_ENOTHELD, "notheld", "lock not held by this object"},
    {ZKC_ECONTENDED, "contended", "too much contention: compare-and-swap attempts exhausted"},
    {ZKC_EBOUND, "bound", "bounded update refused: result outside the allowed range"},
    {ZKC_EOVERFLOW, "overflow", "result does not fit the counter's format"},
    {ZKC_EBADDATA, "baddata", "malformed node data"},
    {ZKC_EVERSIONWRAP, "versionwrap", "node version wrapped to -1: rebase required"},
    {ZKC_ENONODE, "nonode", "no such node"},
    {ZKC_EEXISTS, "exists", "node already exists"},
    {ZKC_EAUTH, "auth", "authentication failed"},
    {ZKC_ENOAUTH, "noauth", "not authorized by the node's ACL"},
    {ZKC_EDEADLK, "deadlk", "call would deadlock from this thread"},
    {ZKC_ECLOSED, "closed", "client is closing"},
    {ZKC_EBUSY, "busy", "operation already in progress on this object"},
    {ZKC_EUNKNOWN, "unknown", "outcome unknown"},
    {ZKC_EMISMATCH, "mismatch", "current value differs from the expected value"},
    {ZKC_ECONFIG, "config", "clients disagree about the recipe's configuration"},
    {ZKC_ESERVER, "server", "unexpected ZooKeeper error"},
    {ZKC_ELIMIT, "limit", "size or count limit reached"},
    {ZKC_EOUTOFSTOCK, "outofstock", "not enough stock"},
    {ZKC_EFENCED, "fenced", "lock no longer held: guarded write refused, nothing written"},
};

const char *zkc_strerror(int err)
{
    for (size_t i = 0; i < sizeof errtab / sizeof errtab[0]; i++)
        if (errtab[i].code == err)
            return errtab[i].text;
    return "unknown error code";
}

const char *zkc__errname(int err)
{
    for (size_t i = 0; i < sizeof errtab / sizeof errtab[0]; i++)
        if (errtab[i].code == err)
            return errtab[i].name;
    return NULL;
}

const char *zkc_version(void)
{
    return ZKC_VERSION_STRING;
}

static __thread char tls_msg[512];

const char *zkc_errmsg(void)
{
    return tls_msg[0] ? tls_msg : "no error";
}

void zkc__set_errmsg(const char *msg)
{
    snprintf(tls_msg, sizeof tls_msg, "%s", msg ? msg : "");
}

int zkc__err(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tls_msg, sizeof tls_msg, fmt, ap);
    va_end(ap);
    return err;
}

int zkc__map_zrc(int zrc)
{
    switch (zrc) {
    case ZR_OK: return ZKC_OK;
    case ZR_CONNLOSS:
    case ZR_OPTIMEOUT:
    case ZR_INVALIDSTATE: return ZKC_ECONNLOSS;
    case ZR_NONODE: return ZKC_ENONODE;
    case ZR_NODEEXISTS: return ZKC_EEXISTS;
    case ZR_NOAUTH: return ZKC_ENOAUTH;
    case ZR_AUTHFAILED: return ZKC_EAUTH;
    case ZR_SESSIONEXPIRED:
    case ZR_SESSIONLOST: return ZKC_ESESSIONLOST;
    case ZR_CLOSING: return ZKC_ECLOSED;
    case ZR_BADARGS: return ZKC_EINVAL;
    default: return ZKC_ESERVER;
    }
}

/* zookeeper.h's ZSYSTEMERROR; recipes do not include that header. */
#define ZR_SYSTEMERROR (-1)

int zkc__zrc_indeterminate(int zrc)
{
    switch (zrc) {
    /* The request may have reached the leader before the connection died. */
    case ZR_CONNLOSS:
    /* The C client fails every in-flight request with this when it has heard
     * nothing for 2/3 of the session timeout (an overloaded server, a stalled
     * link): sent, and possibly applied, exactly as after a connection loss. */
    case ZR_OPTIMEOUT:
    /* The C client's catch-all for local failures; some (a send or receive
     * that failed half-way) can strike a request already on the wire. When it
     * was not, the only cost of asking is one look-up. */
    case ZR_SYSTEMERROR:
        return 1;
    /* Everything else is decided: a server's answer, or our own "never sent"
     * (ZR_NOTSENT, ZR_SESSIONLOST, ZR_CLOSING, ZR_INVALIDSTATE). req.c turns
     * the C client's post-takeover ZRUNTIMEINCONSISTENCY and a close after a
     * presumed loss into ZR_CONNLOSS before anyone sees them. */
    default:
        return 0;
    }
}

const char *zkc__zrc_name(int zrc)
{
    switch (zrc) {
    case ZR_OK: return "ok";
    case ZR_CONNLOSS: return "connection loss";
    case ZR_OPTIMEOUT: return "operation timeout";
    case ZR_BADARGS: return "bad arguments";
    case ZR_INVALIDSTATE: return "invalid handle state";
    case ZR_NONODE: return "no node";
    case ZR_NOAUTH: return "not authorized";
    case ZR_BADVERSION: return "bad version";
    case ZR_NOCHILDRENFOREPHEMERALS: return "ephemeral nodes may not have children";
    case ZR_NODEEXISTS: return "node exists";
    case ZR_NOTEMPTY: return "node has children";
    case ZR_SESSIONEXPIRED: return "session expired";
    case ZR_AUTHFAILED: return "authentication failed";
    case ZR_CLOSING: return "client closing";
    case ZR_NOWATCHER: return "no such watcher";
    case ZR_RUNTIMEINCONSISTENCY: return "not run: an earlier op of the transaction failed";
    case ZR_SESSIONLOST: return "session lost";
    case ZR_NOTSENT: return "not sent within the operation timeout";
    case ZR_SYSTEMERROR: return "system error in the ZooKeeper client";
    case ZR_APIERROR: return "ZooKeeper API error";
    case ZR_SESSIONMOVED: return "session moved to another server";
    /* zookeeper.h's other codes: recipes never expect them, so when one
     * comes back the message must say which it was. */
    case -3: return "data inconsistency (ZDATAINCONSISTENCY)";
    case -5: return "marshalling error (ZMARSHALLINGERROR)";
    case -6: return "unimplemented (ZUNIMPLEMENTED)";
    case -13: return "no quorum of the new configuration (ZNEWCONFIGNOQUORUM)";
    case -14: return "reconfiguration in progress (ZRECONFIGINPROGRESS)";
    case -114: return "invalid ACL (ZINVALIDACL)";
    case -119: return "server is read-only (ZNOTREADONLY)";
    case -120: return "ephemeral node on a local session (ZEPHEMERALONLOCALSESSION)";
    case -123: return "reconfiguration disabled (ZRECONFIGDISABLED)";
    case -124: return "session closed: the server requires SASL (ZSESSIONCLOSEDREQUIRESASLAUTH)";
    case -127: return "throttled by the server, not executed (ZTHROTTLEDOP)";
    default: {
        static __thread char unnamed[48];
        snprintf(unnamed, sizeof unnamed, "ZooKeeper error %d", zrc);
        return unnamed;
    }
    }
}
