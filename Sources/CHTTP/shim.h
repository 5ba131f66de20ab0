#ifndef OCSS_CHTTP_SHIM_H
#define OCSS_CHTTP_SHIM_H
#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <microhttpd.h>
#endif
