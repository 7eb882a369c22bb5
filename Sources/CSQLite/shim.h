// SQLite, wrapped so Swift can import it as the module `CSQLite` (Debian libsqlite3-dev).
#ifndef CSQLITE_SHIM_H
#define CSQLITE_SHIM_H
#include <sqlite3.h>
#endif
