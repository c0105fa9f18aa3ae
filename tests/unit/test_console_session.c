/*
 * The console's sessions and failed-login throttle (src/console/console_session.c): cookies
 * are 32 random hex digits naming one session until it expires or is closed; forged,
 * malformed and expired cookies find nothing; a full table evicts the session closest to
 * expiring; CSRF tokens compare exactly; failures lock an address out for growing times.
 */
#include <stdlib.h>
#include <string.h>

#include "console/console_session.h"
#include "test.h"

static struct console_sessions *sessions_new(int64_t lifetime)
{
    struct console_sessions *t = malloc(sizeof(*t));
    console_sessions_init(t, lifetime);
    return t;
}

TEST(test_console_session_cookie_finds_its_session_until_it_expires)
{
    struct console_sessions *t = sessions_new(1000);
    char cookie[CONSOLE_SESSION_HEX_LEN + 1];
    const struct console_session *s = console_session_open(t, "alice", 5000, cookie);
    CHECK(s != NULL);
    CHECK_EQ_INT((int)strlen(cookie), CONSOLE_SESSION_HEX_LEN);
    CHECK(strspn(cookie, "0123456789abcdef") == CONSOLE_SESSION_HEX_LEN);
    CHECK(strcmp(s->csrf, cookie) != 0);
    const struct console_session *f = console_session_find(t, cookie, 5999);
    CHECK(f != NULL && strcmp(f->user, "alice") == 0);
    CHECK(console_session_find(t, cookie, 6000) == NULL); /* expired, and freed */
    CHECK(console_session_find(t, cookie, 5001) == NULL);
    free(t);
}

TEST(test_console_session_forged_and_malformed_cookies_find_nothing)
{
    struct console_sessions *t = sessions_new(1000);
    char cookie[CONSOLE_SESSION_HEX_LEN + 1];
    CHECK(console_session_open(t, "bob", 0, cookie) != NULL);
    char forged[CONSOLE_SESSION_HEX_LEN + 1];
    memcpy(forged, cookie, sizeof(forged));
    forged[0] = forged[0] == '0' ? '1' : '0';
    CHECK(console_session_find(t, forged, 1) == NULL);
    CHECK(console_session_find(t, NULL, 1) == NULL);
    CHECK(console_session_find(t, "", 1) == NULL);
    char upper[CONSOLE_SESSION_HEX_LEN + 1];
    for (int i = 0; i <= CONSOLE_SESSION_HEX_LEN; i++)
        upper[i] = (char)(cookie[i] >= 'a' && cookie[i] <= 'f' ? cookie[i] - 32 : cookie[i]);
    if (strcmp(upper, cookie) != 0)
        CHECK(console_session_find(t, upper, 1) == NULL);
    char longer[CONSOLE_SESSION_HEX_LEN + 2];
    snprintf(longer, sizeof(longer), "%s0", cookie);
    CHECK(console_session_find(t, longer, 1) == NULL);
    /* an all-zero id must not match a free slot */
    CHECK(console_session_find(t, "00000000000000000000000000000000", 1) == NULL);
    CHECK(console_session_find(t, cookie, 1) != NULL);
    free(t);
}

TEST(test_console_session_close_and_csrf)
{
    struct console_sessions *t = sessions_new(1000);
    char cookie[CONSOLE_SESSION_HEX_LEN + 1];
    const struct console_session *s = console_session_open(t, "carol", 0, cookie);
    char token[CONSOLE_SESSION_HEX_LEN + 1];
    memcpy(token, s->csrf, sizeof(token));
    CHECK(console_session_csrf_ok(s, token));
    CHECK(!console_session_csrf_ok(s, NULL));
    CHECK(!console_session_csrf_ok(s, ""));
    token[5] ^= 1;
    CHECK(!console_session_csrf_ok(s, token));
    CHECK(console_session_close(t, cookie));
    CHECK(!console_session_close(t, cookie));
    CHECK(console_session_find(t, cookie, 1) == NULL);
    free(t);
}

TEST(test_console_session_full_table_evicts_the_one_closest_to_expiry)
{
    struct console_sessions *t = sessions_new(100000);
    char first[CONSOLE_SESSION_HEX_LEN + 1], c[CONSOLE_SESSION_HEX_LEN + 1];
    CHECK(console_session_open(t, "u0", 0, first) != NULL);
    for (int i = 1; i < CONSOLE_SESSIONS_MAX; i++)
        CHECK(console_session_open(t, "u", i, c) != NULL);
    CHECK(console_session_find(t, first, 10) != NULL);
    char extra[CONSOLE_SESSION_HEX_LEN + 1];
    CHECK(console_session_open(t, "late", 1000, extra) != NULL);
    CHECK(console_session_find(t, first, 1001) == NULL); /* the oldest went */
    CHECK(console_session_find(t, extra, 1001) != NULL);
    CHECK(console_session_find(t, c, 1001) != NULL);
    free(t);
}

TEST(test_console_throttle_locks_after_failures_and_clears_on_success)
{
    struct console_throttle *t = calloc(1, sizeof(*t));
    for (int i = 0; i < CONSOLE_LOGIN_FREE_FAILURES - 1; i++) {
        console_throttle_note(t, "10.0.0.1", false, 0);
        CHECK_EQ_INT((int)console_throttle_wait(t, "10.0.0.1", 0), 0);
    }
    console_throttle_note(t, "10.0.0.1", false, 0);
    CHECK_EQ_INT((int)console_throttle_wait(t, "10.0.0.1", 0), 1000);
    CHECK_EQ_INT((int)console_throttle_wait(t, "10.0.0.2", 0), 0); /* per address */
    console_throttle_note(t, "10.0.0.1", false, 1000);
    CHECK_EQ_INT((int)console_throttle_wait(t, "10.0.0.1", 1000), 2000);
    for (int i = 0; i < 20; i++)
        console_throttle_note(t, "10.0.0.1", false, 5000);
    CHECK_EQ_INT((int)console_throttle_wait(t, "10.0.0.1", 5000), CONSOLE_LOGIN_MAX_LOCK_MS);
    console_throttle_note(t, "10.0.0.1", true, 70000);
    CHECK_EQ_INT((int)console_throttle_wait(t, "10.0.0.1", 70000), 0);
    /* more addresses than slots: the table stays bounded and keeps working */
    char addr[32];
    for (int i = 0; i < 3 * CONSOLE_THROTTLE_SLOTS; i++) {
        snprintf(addr, sizeof(addr), "10.1.%d.%d", i / 256, i % 256);
        for (int k = 0; k < CONSOLE_LOGIN_FREE_FAILURES; k++)
            console_throttle_note(t, addr, false, i);
    }
    CHECK((int)console_throttle_wait(t, addr, 3 * CONSOLE_THROTTLE_SLOTS) > 0);
    free(t);
}

TEST_MAIN
