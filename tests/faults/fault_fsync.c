/*
 * LD_PRELOAD shim for tests/faults/test_fault_fsync.py: fsync(2) and fdatasync(2) fail with
 * EIO for file descriptors whose path (readlink /proc/self/fd/N) contains the substring in
 * GREGOR_FAULT_FSYNC_MATCH, once the file named by GREGOR_FAULT_FSYNC_TRIGGER exists (the test
 * creates it after start-up, so the broker's own start-up syncs succeed). Without both
 * variables every call passes through. Each injected failure is counted by appending one line
 * to $GREGOR_FAULT_FSYNC_TRIGGER.log when that variable names a trigger.
 * With GREGOR_FAULT_FSYNC_DELAY_MS=N the armed calls do not fail: they sleep N ms, then sync
 * (a slow disk; tests/interop/test_replication.py's follower_sync_holds_the_high_watermark).
 *
 * Build: cc -shared -fPIC -O1 -o fault_fsync.so fault_fsync.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef int (*sync_fn)(int);

static long delay_ms(void)
{
    const char *d = getenv("GREGOR_FAULT_FSYNC_DELAY_MS");
    return d ? strtol(d, NULL, 10) : 0;
}

/* Armed: either fails (returns 1, errno EIO) or sleeps and lets the call through (0). */
static int inject(void)
{
    long ms = delay_ms();
    if (ms <= 0) {
        errno = EIO;
        return 1;
    }
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    return 0;
}

static int armed_for(int fd)
{
    const char *match = getenv("GREGOR_FAULT_FSYNC_MATCH");
    const char *trigger = getenv("GREGOR_FAULT_FSYNC_TRIGGER");
    if (match == NULL || *match == '\0' || trigger == NULL || *trigger == '\0')
        return 0;
    if (access(trigger, F_OK) != 0)
        return 0;
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof(path) - 1);
    if (n < 0)
        return 0;
    path[n] = '\0';
    if (strstr(path, match) == NULL)
        return 0;
    char logp[PATH_MAX];
    snprintf(logp, sizeof(logp), "%s.log", trigger);
    int lfd = open(logp, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (lfd >= 0) {
        char line[PATH_MAX + 32];
        int len = snprintf(line, sizeof(line), "%s fd=%d %s\n", delay_ms() > 0 ? "SLOW" : "EIO", fd,
                           path);
        if (len > 0 && write(lfd, line, (size_t)len) < 0) {
            /* best effort */
        }
        close(lfd);
    }
    return 1;
}

static int call_next(const char *name, int fd)
{
    sync_fn next = (sync_fn)dlsym(RTLD_NEXT, name);
    if (next == NULL) {
        errno = ENOSYS;
        return -1;
    }
    return next(fd);
}

int fsync(int fd)
{
    int saved = errno;
    if (armed_for(fd) && inject())
        return -1;
    errno = saved;
    return call_next("fsync", fd);
}

int fdatasync(int fd)
{
    int saved = errno;
    if (armed_for(fd) && inject())
        return -1;
    errno = saved;
    return call_next("fdatasync", fd);
}
