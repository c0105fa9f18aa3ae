/*
 * The console's JSON writing (src/console/json.c): escaping, UTF-8 validation, text-or-hex
 * rendering of record bytes with truncation, error bodies; and console.listener parsing
 * (an empty host is loopback, never every interface).
 */
#include <stdint.h>
#include <string.h>

#include "console/console.h"
#include "console/json.h"
#include "test.h"

/* Renders with fn into a fresh buffer and compares with want. */
static int json_matches(struct expo *e, const char *want)
{
    int ok = !e->oom && e->buf != NULL && strcmp(e->buf, want) == 0;
    if (!ok)
        printf("  got  %s\n  want %s\n", e->buf ? e->buf : "(null)", want);
    expo_free(e);
    return ok;
}

TEST(test_json_string_escapes_quotes_backslashes_and_controls)
{
    struct expo e;
    expo_init(&e);
    json_string(&e, "a\"b\\c\nd\te\x7f");
    CHECK(json_matches(&e, "\"a\\\"b\\\\c\\nd\\u0009e\\u007f\""));
}

TEST(test_json_string_shows_invalid_utf8_as_latin1_escapes)
{
    struct expo e;
    expo_init(&e);
    json_string(&e, "x\xff");
    CHECK(json_matches(&e, "\"x\\u00ff\""));
}

TEST(test_json_utf8_valid_rejects_overlongs_surrogates_and_cuts)
{
    CHECK(json_utf8_valid((const uint8_t *)"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15));
    CHECK(!json_utf8_valid((const uint8_t *)"\xc0\xaf", 2));     /* overlong '/' */
    CHECK(!json_utf8_valid((const uint8_t *)"\xed\xa0\x80", 3)); /* surrogate */
    CHECK(!json_utf8_valid((const uint8_t *)"\xe2\x82", 2));     /* cut sequence */
    CHECK(!json_utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4));
}

TEST(test_json_bytes_field_text_hex_null_and_truncation)
{
    struct expo e;
    expo_init(&e);
    json_bytes_field(&e, "v", (const uint8_t *)"hi", 2, 100);
    CHECK(json_matches(&e, "\"v\":{\"encoding\":\"text\",\"data\":\"hi\",\"length\":2,"
                           "\"truncated\":false}"));
    expo_init(&e);
    json_bytes_field(&e, "v", (const uint8_t *)"\x00\xff\x10", 3, 100);
    CHECK(json_matches(&e, "\"v\":{\"encoding\":\"hex\",\"data\":\"00ff10\",\"length\":3,"
                           "\"truncated\":false}"));
    expo_init(&e);
    json_bytes_field(&e, "v", NULL, -1, 100);
    CHECK(json_matches(&e, "\"v\":{\"encoding\":\"null\",\"data\":null,\"length\":-1,"
                           "\"truncated\":false}"));
    expo_init(&e);
    json_bytes_field(&e, "v", (const uint8_t *)"ab\xc3\xa9", 4, 3); /* never splits é */
    CHECK(json_matches(&e, "\"v\":{\"encoding\":\"text\",\"data\":\"ab\",\"length\":4,"
                           "\"truncated\":true}"));
    expo_init(&e);
    json_bytes_field(&e, "v", (const uint8_t *)"\x01\x02\x03", 3, 4); /* 2 bytes as hex */
    CHECK(json_matches(&e, "\"v\":{\"encoding\":\"hex\",\"data\":\"0102\",\"length\":3,"
                           "\"truncated\":true}"));
}

TEST(test_json_error_returns_status_with_message)
{
    struct expo e;
    expo_init(&e);
    CHECK_EQ_INT(json_error(&e, 404, "unknown topic '%s'", "t\"x"), 404);
    CHECK(json_matches(&e, "{\"error\":\"unknown topic 't\\\"x'\",\"status\":404}"));
}

TEST(test_console_listener_empty_host_is_loopback)
{
    char host[64];
    int port = -1;
    CHECK_EQ_INT(console_parse_listener("http://:9644", host, sizeof(host), &port), 0);
    CHECK(strcmp(host, "127.0.0.1") == 0);
    CHECK_EQ_INT(port, 9644);
    CHECK_EQ_INT(console_parse_listener("http://0.0.0.0:0", host, sizeof(host), &port), 0);
    CHECK(strcmp(host, "0.0.0.0") == 0);
    CHECK_EQ_INT(port, 0);
    CHECK(console_parse_listener("127.0.0.1:9644", NULL, 0, NULL) != 0);
    CHECK(console_parse_listener("http://h:99999", NULL, 0, NULL) != 0);
}

TEST_MAIN
