// zlib (Debian zlib1g-dev), wrapped so Swift can import it as the module `CGzip`: gzip input read
// as a stream.
#ifndef CZLIB_SHIM_H
#define CZLIB_SHIM_H
#include <zlib.h>
#endif
