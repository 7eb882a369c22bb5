// libfreexl (Debian libfreexl-dev), GDAL's reader of legacy Excel .xls (BIFF) files, imported by
// Swift as the module `CFreeXL`.
#ifndef CFREEXL_SHIM_H
#define CFREEXL_SHIM_H
#include <freexl.h>
#endif
