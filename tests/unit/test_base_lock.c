/* base/lock.h: the lock-held checks behind the asserts in *_locked functions. */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/lock.h"
#include "storage/log_internal.h"
#include "test.h"
#include "test_storage_util.h"

TEST(test_mutex_held_only_while_locked)
{
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    CHECK(!lock_mutex_held(&mu));
    pthread_mutex_lock(&mu);
    CHECK(lock_mutex_held(&mu));
    pthread_mutex_unlock(&mu);
    CHECK(!lock_mutex_held(&mu)); /* the probe left it unlocked */
    CHECK_EQ_INT(pthread_mutex_trylock(&mu), 0);
    pthread_mutex_unlock(&mu);
}

TEST(test_rwlock_held_for_reading_or_writing)
{
    pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
    CHECK(!lock_rwlock_held(&rw));
    pthread_rwlock_rdlock(&rw);
    CHECK(lock_rwlock_held(&rw));
    pthread_rwlock_unlock(&rw);
    pthread_rwlock_wrlock(&rw);
    CHECK(lock_rwlock_held(&rw));
    pthread_rwlock_unlock(&rw);
    CHECK(!lock_rwlock_held(&rw));
}

/* A *_locked function called without its lock aborts (asserts are on in every build). */
TEST(test_segment_lookup_without_segments_lock_aborts)
{
    char *dir = tmpdir_make();
    CHECK(dir != NULL);
    struct log *log;
    CHECK_EQ_INT(log_open(dir, "t", 0, NULL, NULL, &log), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(STDERR_FILENO); /* the assertion message is expected */
        log_segment_index_locked(log, 0);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    pthread_rwlock_rdlock(&log->segments_lock);
    size_t i = log_segment_index_locked(log, 0);
    pthread_rwlock_unlock(&log->segments_lock);
    log_close(log);
    CHECK_EQ_INT(i, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

TEST_MAIN
