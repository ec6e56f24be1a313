/* A ZooKeeper-aware TCP proxy for connection-loss tests.
 *
 * One proxy listens on a free 127.0.0.1 port and forwards to one upstream
 * server; build a connect string from one proxy per server. It parses the
 * length-prefixed framing in both directions, so faults hit exact requests:
 * a dropped request is never applied, a dropped reply belongs to a request
 * that was applied. Opcodes are those of <zookeeper/proto.h> (1 create,
 * 2 delete, 5 setData, 14 multi, 15 create2, 19 createContainer, ...).
 *
 * Control calls are thread-safe and synchronous: when zkh_proxy_cut or
 * zkh_proxy_blackhole returns, the proxy thread has acted on it.
 */
#ifndef ZKH_PROXY_H
#define ZKH_PROXY_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zkh_proxy zkh_proxy;

int zkh_proxy_start(zkh_proxy **out, const char *upstream_hostport); /* 0 or -errno */
const char *zkh_proxy_hostport(zkh_proxy *p); /* "127.0.0.1:port" */

/* Close every live connection now (the client sees a reset). */
void zkh_proxy_cut(zkh_proxy *p);
/* on: forward nothing either way and hold new connections without an
 * upstream, sockets kept open, so clients see silence and time out.
 * off: cut every held connection and resume normal service. */
void zkh_proxy_blackhole(zkh_proxy *p, int on);
/* The next `count` requests of op_type are not forwarded; the connection is
 * cut right there (not applied, client sees ZCONNECTIONLOSS). Replaces any
 * count armed before; 0 disarms. */
void zkh_proxy_drop_request(zkh_proxy *p, int op_type, int count);
/* As zkh_proxy_drop_request, after the next `skip` requests of op_type have
 * passed (a reply drop armed for the same type applies to those). Lets a test
 * lose one request's reply and then the requests that follow it, without a
 * race between the two. */
void zkh_proxy_drop_request_after(zkh_proxy *p, int op_type, int skip, int count);
/* The next `count` requests of op_type are forwarded; each one's reply is
 * discarded and the connection cut (applied, client sees ZCONNECTIONLOSS). */
void zkh_proxy_drop_reply(zkh_proxy *p, int op_type, int count);
/* The next `count` requests of op_type are forwarded; when the reply to one
 * of them comes, the server-to-client stream of that connection is held for
 * `ms` milliseconds (replies stay in order, so everything behind it waits
 * too, pings included), then delivered. Held longer than about 2/3 of the
 * session timeout, the ZooKeeper client gives up first: it fails the request
 * with ZOPERATIONTIMEOUT and drops the connection, and the held bytes go with
 * it. The write itself was applied. Replaces any count armed before; 0 disarms. */
void zkh_proxy_delay_reply(zkh_proxy *p, int op_type, int count, int ms);
long zkh_proxy_requests_seen(zkh_proxy *p, int op_type); /* forwarded or dropped */
int zkh_proxy_faults_fired(zkh_proxy *p);
int zkh_proxy_connections(zkh_proxy *p); /* open client connections (live or held) */

void zkh_proxy_stop(zkh_proxy *p); /* NULL is a no-op */

#ifdef __cplusplus
}
#endif
#endif
