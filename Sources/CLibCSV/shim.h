// libcsv, wrapped so Swift can import it as the module `CLibCSV`.
// libcsv ships no pkg-config file; the header is /usr/include/csv.h (Debian libcsv-dev).
#ifndef CLIBCSV_SHIM_H
#define CLIBCSV_SHIM_H
#include <csv.h>
#endif
