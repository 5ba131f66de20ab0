#ifndef OCSS_CPROJ_SHIM_H
#define OCSS_CPROJ_SHIM_H
#include <proj.h>
#include <geodesic.h>
#endif
