/*
 * Libraries loaded at run time, on first use, instead of at every start-up.
 *
 * Why: a library linked normally is mapped, relocated and initialised when the broker starts,
 * used or not. Two cost an idle broker most of its resident memory beyond its own: libmicrohttpd,
 * whose constructor initialises GnuTLS (GnuTLS, p11-kit, nettle, gmp and their friends: 2.4 MB of
 * an idle broker's 11 MB RSS) for HTTP listeners that are off by default, and libsnappy, a C++
 * library that brings libstdc++ and its initialisation (1 MB) for a codec most topics never
 * decompress. Gregor is not linked against them: dynlib_load() loads one into the global scope
 * when it is first needed, and code calls its functions through DYNLIB(fn), which the dynamic
 * linker resolves by name. Nothing is cached in Gregor's own state; a lookup costs about a
 * microsecond, against an HTTP request or a whole compressed batch.
 */
#ifndef GREGOR_BASE_DYNLIB_H
#define GREGOR_BASE_DYNLIB_H

#include <stddef.h>

/* Run-time names of the libraries whose headers Gregor compiles against (Debian 12). */
#define DYNLIB_MICROHTTPD "libmicrohttpd.so.12"
#define DYNLIB_SNAPPY "libsnappy.so.1"

/*
 * Loads soname (again: only a reference more; never unloaded, as threads may run its code).
 * Any thread. 0, or -1 with the loader's message in err (err may be NULL).
 */
int dynlib_load(const char *soname, char *err, size_t errlen);

/* The function `name` of a loaded library. Only after its dynlib_load() succeeded (asserted). */
void *dynlib_sym(const char *name);

/* fn, typed as its header declares it: DYNLIB(MHD_stop_daemon)(d). */
#define DYNLIB(fn) ((__typeof__(&fn))dynlib_sym(#fn))

#endif
