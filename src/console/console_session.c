/*
 * Login sessions and the failed-login throttle (console_session.h). Invariants: a used slot
 * has a non-empty user and an expiry in the future of its login; no two used slots share an
 * id (128 random bits; a collision is not checked for, it does not happen).
 */
#include "console/console_session.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

void console_sessions_init(struct console_sessions *t, int64_t lifetime_ms)
{
    assert(lifetime_ms > 0);
    memset(t, 0, sizeof(*t));
    t->lifetime_ms = lifetime_ms;
}

/* Equality of n bytes whose time depends only on n. */
static bool console_ct_equal(const void *a, const void *b, size_t n)
{
    const volatile uint8_t *x = a, *y = b;
    uint8_t d = 0;
    for (size_t i = 0; i < n; i++)
        d |= x[i] ^ y[i];
    return d == 0;
}

static void console_hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int console_unhex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decodes exactly CONSOLE_SESSION_HEX_LEN lower-case hex digits; false for anything else. */
static bool console_cookie_id(const char *cookie, uint8_t id[CONSOLE_SESSION_ID_LEN])
{
    if (cookie == NULL || strlen(cookie) != CONSOLE_SESSION_HEX_LEN)
        return false;
    for (size_t i = 0; i < CONSOLE_SESSION_ID_LEN; i++) {
        int hi = console_unhex_digit(cookie[2 * i]), lo = console_unhex_digit(cookie[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        id[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static bool console_random(void *p, size_t n)
{
    return getrandom(p, n, 0) == (ssize_t)n;
}

/* A free or expired slot, else the one closest to expiring. */
static struct console_session *console_session_slot(struct console_sessions *t, int64_t now_ms)
{
    struct console_session *victim = &t->slot[0];
    for (size_t i = 0; i < CONSOLE_SESSIONS_MAX; i++) {
        struct console_session *s = &t->slot[i];
        if (s->user[0] == '\0' || s->expires_ms <= now_ms)
            return s;
        if (s->expires_ms < victim->expires_ms)
            victim = s;
    }
    return victim;
}

const struct console_session *console_session_open(struct console_sessions *t, const char *user,
                                                   int64_t now_ms,
                                                   char cookie[CONSOLE_SESSION_HEX_LEN + 1])
{
    size_t n = strlen(user);
    assert(n >= 1 && n <= CONSOLE_USER_MAX);
    struct console_session *s = console_session_slot(t, now_ms);
    uint8_t csrf[CONSOLE_SESSION_ID_LEN];
    if (!console_random(s->id, sizeof(s->id)) || !console_random(csrf, sizeof(csrf))) {
        memset(s, 0, sizeof(*s));
        return NULL;
    }
    console_hex(csrf, sizeof(csrf), s->csrf);
    memcpy(s->user, user, n + 1);
    s->expires_ms = now_ms + t->lifetime_ms;
    assert(s->user[0] != '\0' && s->expires_ms > now_ms);
    console_hex(s->id, sizeof(s->id), cookie);
    return s;
}

/* The used slot with this id, scanning every slot whatever matches (constant time). */
static struct console_session *console_session_lookup(struct console_sessions *t,
                                                      const char *cookie)
{
    uint8_t id[CONSOLE_SESSION_ID_LEN];
    if (!console_cookie_id(cookie, id))
        return NULL;
    struct console_session *found = NULL;
    for (size_t i = 0; i < CONSOLE_SESSIONS_MAX; i++) {
        struct console_session *s = &t->slot[i];
        bool eq = console_ct_equal(s->id, id, sizeof(id));
        if (eq && s->user[0] != '\0')
            found = s;
    }
    return found;
}

const struct console_session *console_session_find(struct console_sessions *t, const char *cookie,
                                                   int64_t now_ms)
{
    struct console_session *s = console_session_lookup(t, cookie);
    if (s != NULL && s->expires_ms <= now_ms) {
        memset(s, 0, sizeof(*s));
        return NULL;
    }
    return s;
}

bool console_session_close(struct console_sessions *t, const char *cookie)
{
    struct console_session *s = console_session_lookup(t, cookie);
    if (s == NULL)
        return false;
    memset(s, 0, sizeof(*s));
    return true;
}

bool console_session_csrf_ok(const struct console_session *s, const char *token)
{
    return token != NULL && strlen(token) == CONSOLE_SESSION_HEX_LEN &&
           console_ct_equal(s->csrf, token, CONSOLE_SESSION_HEX_LEN);
}

static const struct console_throttle_entry *console_throttle_get(const struct console_throttle *t,
                                                                 const char *addr)
{
    for (size_t i = 0; i < CONSOLE_THROTTLE_SLOTS; i++)
        if (t->slot[i].addr[0] != '\0' && strcmp(t->slot[i].addr, addr) == 0)
            return &t->slot[i];
    return NULL;
}

int64_t console_throttle_wait(const struct console_throttle *t, const char *addr, int64_t now_ms)
{
    const struct console_throttle_entry *e = console_throttle_get(t, addr);
    return e != NULL && e->locked_until_ms > now_ms ? e->locked_until_ms - now_ms : 0;
}

/* addr's entry, or a new one in a free slot or the one least recently used. */
static struct console_throttle_entry *console_throttle_take(struct console_throttle *t,
                                                            const char *addr)
{
    struct console_throttle_entry *e =
        (struct console_throttle_entry *)console_throttle_get(t, addr);
    if (e != NULL)
        return e;
    e = &t->slot[0];
    for (size_t i = 0; i < CONSOLE_THROTTLE_SLOTS; i++) {
        if (t->slot[i].addr[0] == '\0') {
            e = &t->slot[i];
            break;
        }
        if (t->slot[i].last_ms < e->last_ms)
            e = &t->slot[i];
    }
    memset(e, 0, sizeof(*e));
    snprintf(e->addr, sizeof(e->addr), "%s", addr);
    return e;
}

void console_throttle_note(struct console_throttle *t, const char *addr, bool ok, int64_t now_ms)
{
    if (ok) {
        struct console_throttle_entry *e =
            (struct console_throttle_entry *)console_throttle_get(t, addr);
        if (e != NULL)
            memset(e, 0, sizeof(*e));
        return;
    }
    struct console_throttle_entry *e = console_throttle_take(t, addr);
    e->failures++;
    e->last_ms = now_ms;
    if (e->failures >= CONSOLE_LOGIN_FREE_FAILURES) {
        uint32_t k = e->failures - CONSOLE_LOGIN_FREE_FAILURES;
        int64_t lock = k >= 6 ? CONSOLE_LOGIN_MAX_LOCK_MS : (int64_t)1000 << k;
        e->locked_until_ms =
            now_ms + (lock < CONSOLE_LOGIN_MAX_LOCK_MS ? lock : CONSOLE_LOGIN_MAX_LOCK_MS);
    }
}
