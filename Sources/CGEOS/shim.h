// GEOS's C API, wrapped so Swift can import it as the module `CGEOS` (Debian libgeos-dev). Only
// the reentrant `_r` functions: one context per thread.
#ifndef CGEOS_SHIM_H
#define CGEOS_SHIM_H
#define GEOS_USE_ONLY_R_API
#include <geos_c.h>
#endif
