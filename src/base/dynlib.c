/* Libraries loaded at run time; see dynlib.h. */
#include "base/dynlib.h"

#include <assert.h>
#include <dlfcn.h>
#include <stdio.h>

int dynlib_load(const char *soname, char *err, size_t errlen)
{
    /* RTLD_GLOBAL: dynlib_sym finds the symbols by name, with no handle to keep. */
    if (dlopen(soname, RTLD_NOW | RTLD_GLOBAL) != NULL)
        return 0;
    const char *why = dlerror();
    if (err != NULL)
        snprintf(err, errlen, "cannot load %s: %s", soname, why ? why : "unknown error");
    return -1;
}

void *dynlib_sym(const char *name)
{
    void *fn = dlsym(RTLD_DEFAULT, name);
    assert(fn != NULL); /* its library was loaded before any call */
    return fn;
}
