// PROJ, wrapped so Swift can import it as the module `CPROJ` (Debian libproj-dev).
#ifndef CPROJ_SHIM_H
#define CPROJ_SHIM_H
#include <proj.h>
#endif
