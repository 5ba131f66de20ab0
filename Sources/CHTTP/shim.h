#ifndef OCSS_CHTTP_SHIM_H
#define OCSS_CHTTP_SHIM_H
#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <microhttpd.h>

// MHD_get_connection_info is variadic, which Swift cannot call.
static inline const struct sockaddr *ocss_mhd_client_address(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *i = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return i ? i->client_addr : 0;
}

// The connection's socket, for the request-head deadline (shutdown(2) ends a client that drips its headers).
static inline int ocss_mhd_connection_fd(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *i = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return i ? i->connect_fd : -1;
}

// MHD_get_daemon_info is variadic too; the bound port matters when listening on port 0.
static inline uint16_t ocss_mhd_bound_port(struct MHD_Daemon *d) {
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    return i ? i->port : 0;
}
#endif
