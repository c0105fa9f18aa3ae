/*
 * The console's login sessions and its failed-login throttle, kept in the console context
 * (struct console owns one of each; no global state).
 *
 * A session is a random 128-bit id (getrandom), sent to the browser as a cookie, with the
 * user's name, a random 128-bit CSRF token the pages send back with every change, and an
 * absolute expiry (session_ms after the login). The table is bounded: when it is full a new
 * login takes the slot of the session closest to expiring. Ids are compared in constant time.
 *
 * The throttle counts failed logins per client address: after CONSOLE_LOGIN_FREE_FAILURES
 * failures in a row the address is refused for 1 s, then 2 s, 4 s, ... up to 60 s after each
 * further failure, without the password even being checked; a successful login clears it.
 *
 * Threads: the console's HTTP thread only (libmicrohttpd's single internal thread), so there is
 * no lock. Times are CLOCK_MONOTONIC milliseconds passed in by the caller.
 */
#ifndef GREGOR_CONSOLE_CONSOLE_SESSION_H
#define GREGOR_CONSOLE_CONSOLE_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONSOLE_SESSIONS_MAX 256
#define CONSOLE_SESSION_ID_LEN 16 /* bytes; 32 hex characters in the cookie */
#define CONSOLE_SESSION_HEX_LEN (2 * CONSOLE_SESSION_ID_LEN)
#define CONSOLE_USER_MAX 255
#define CONSOLE_THROTTLE_SLOTS 64
#define CONSOLE_LOGIN_FREE_FAILURES 3
#define CONSOLE_LOGIN_MAX_LOCK_MS 60000

struct console_session {
    uint8_t id[CONSOLE_SESSION_ID_LEN];
    char csrf[CONSOLE_SESSION_HEX_LEN + 1];
    char user[CONSOLE_USER_MAX + 1]; /* "" = a free slot */
    int64_t expires_ms;
};

struct console_sessions {
    struct console_session slot[CONSOLE_SESSIONS_MAX];
    int64_t lifetime_ms;
};

struct console_throttle_entry {
    char addr[64]; /* "" = free */
    uint32_t failures;
    int64_t locked_until_ms, last_ms;
};

struct console_throttle {
    struct console_throttle_entry slot[CONSOLE_THROTTLE_SLOTS];
};

/* Empties the table; sessions live lifetime_ms (> 0) from their login. */
void console_sessions_init(struct console_sessions *t, int64_t lifetime_ms);

/*
 * Opens a session for user (1 to CONSOLE_USER_MAX bytes) and writes its cookie value (32 hex
 * characters + NUL) to cookie. Returns the session (valid until the next call that changes the
 * table), or NULL when the random source failed.
 */
const struct console_session *console_session_open(struct console_sessions *t, const char *user,
                                                   int64_t now_ms,
                                                   char cookie[CONSOLE_SESSION_HEX_LEN + 1]);

/* The live session whose id the cookie value names, or NULL (absent, malformed, unknown,
 * expired: an expired session is freed here). */
const struct console_session *console_session_find(struct console_sessions *t, const char *cookie,
                                                   int64_t now_ms);

/* Ends the session named by cookie; false when there was none. */
bool console_session_close(struct console_sessions *t, const char *cookie);

/* True when token equals the session's CSRF token (constant time). */
bool console_session_csrf_ok(const struct console_session *s, const char *token);

/* Milliseconds `addr` must still wait before its next login attempt; 0 when it may try. */
int64_t console_throttle_wait(const struct console_throttle *t, const char *addr, int64_t now_ms);

/* Records a failed (ok false) or successful login from addr. */
void console_throttle_note(struct console_throttle *t, const char *addr, bool ok, int64_t now_ms);

#endif
