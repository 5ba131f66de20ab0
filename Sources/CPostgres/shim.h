#ifndef OCSS_CPOSTGRES_SHIM_H
#define OCSS_CPOSTGRES_SHIM_H
#include <libpq-fe.h>
#endif
