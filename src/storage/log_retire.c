/* Retiring a log's directory (see log.h): rename to "-delete", discard, remove. */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/logger.h"
#include "storage/log_internal.h"

char *log_retire_dir(struct log *log)
{
    uint8_t id[16];
    if (getrandom(id, sizeof(id), 0) != (ssize_t)sizeof(id))
        return NULL;
    size_t n = strlen(log->dir) + 1 + 2 * sizeof(id) + sizeof("-delete");
    char *trash = malloc(n);
    if (trash == NULL)
        return NULL;
    int k = snprintf(trash, n, "%s.", log->dir);
    for (size_t i = 0; i < sizeof(id); i++)
        k += snprintf(trash + k, n - (size_t)k, "%02x", id[i]);
    snprintf(trash + k, n - (size_t)k, "-delete");
    if (rename(log->dir, trash) != 0) {
        logger_warn("storage", "cannot rename %s for deletion: %s", log->dir, strerror(errno));
        free(trash);
        return NULL;
    }
    return trash;
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
