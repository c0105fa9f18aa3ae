/* Retiring a log's directory (see log.h): rename to "-delete", discard, remove. */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/logger.h"
#include "storage/log_internal.h"

/* Renames DIR to "DIR.<32 hex digits>SUFFIX"; the new path (malloc'ed) or NULL. */
static char *rename_with_suffix(const char *dir, const char *suffix)
{
    uint8_t id[16];
    if (getrandom(id, sizeof(id), 0) != (ssize_t)sizeof(id))
        return NULL;
    size_t n = strlen(dir) + 1 + 2 * sizeof(id) + strlen(suffix) + 1;
    char *to = malloc(n);
    if (to == NULL)
        return NULL;
    int k = snprintf(to, n, "%s.", dir);
    for (size_t i = 0; i < sizeof(id); i++)
        k += snprintf(to + k, n - (size_t)k, "%02x", id[i]);
    snprintf(to + k, n - (size_t)k, "%s", suffix);
    if (rename(dir, to) != 0) {
        logger_warn("storage", "cannot rename %s to %s: %s", dir, to, strerror(errno));
        free(to);
        return NULL;
    }
    return to;
}

char *log_retire_dir(struct log *log)
{
    return rename_with_suffix(log->dir, "-delete");
}

char *log_dir_mark_stray(const char *dir)
{
    return rename_with_suffix(dir, "-stray");
}

void log_discard(struct log *log)
{
    if (log != NULL)
        log_free(log, false);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

int log_remove_tree(const char *path)
{
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -errno;
}
