/*
 * Checks that a lock is held, for the asserts at the top of functions named *_locked.
 *
 * POSIX mutexes and rwlocks do not record their holder, so these answer "held by some thread"
 * (a try-lock fails): a caller that forgot the lock is caught whenever no other thread holds
 * it at that moment, which single-threaded tests make certain; a correct caller never trips
 * them. A successful probe is undone at once. Any thread.
 */
#ifndef GREGOR_BASE_LOCK_H
#define GREGOR_BASE_LOCK_H

#include <pthread.h>
#include <stdbool.h>

static inline bool lock_mutex_held(pthread_mutex_t *m)
{
    if (pthread_mutex_trylock(m) != 0)
        return true;
    pthread_mutex_unlock(m);
    return false;
}

/* True when the rwlock is held for reading or writing. */
static inline bool lock_rwlock_held(pthread_rwlock_t *l)
{
    if (pthread_rwlock_trywrlock(l) != 0)
        return true;
    pthread_rwlock_unlock(l);
    return false;
}

#endif
