/*
 * Fuzz target: server.properties text and --override values (base/properties.h) applied to the
 * broker configuration table (broker/config.h), plus the listener list parser.
 *
 * Properties: no crash or sanitizer report; properties_parse either succeeds or names a line
 * inside the text; every parsed key reads back (properties_get) as its last value; config_apply
 * either succeeds or writes a NUL-terminated error naming the property; after success every
 * property describes into a NUL-terminated buffer of any size, and the one floating-point
 * property (log.cleaner.min.cleanable.ratio) is a number in [0, 1] (not NaN).
 * config_validate is not called: it creates the configured log directories.
 *
 * FUZZ_WRITE_SEEDS=DIR writes a seed naming every known property with a plausible value.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "base/properties.h"
#include "broker/config.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *dir = getenv("FUZZ_WRITE_SEEDS");
    if (dir && *dir) {
        mkdir(dir, 0755);
        char path[4096];
        snprintf(path, sizeof(path), "%s/all_properties", dir);
        FILE *f = fopen(path, "w");
        struct broker_config c;
        config_defaults(&c);
        for (size_t i = 0; f && config_property_name(i); i++) {
            char v[1200];
            if (config_describe(&c, config_property_name(i), v, sizeof(v)) == 0)
                fprintf(f, "%s=%s\n", config_property_name(i), v);
        }
        if (f)
            fclose(f);
        exit(0);
    }
    return 0;
}

static int count_lines(const char *s)
{
    int n = 1;
    for (; *s; s++)
        n += *s == '\n' || (*s == '\r' && s[1] != '\n');
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';

    struct properties p;
    properties_init(&p);
    int bad = -1;
    int rc = properties_parse(&p, text, &bad);
    if (rc != 0) {
        FUZZ_CHECK(rc == -22, "properties_parse returned %d", rc);
        FUZZ_CHECK(bad >= 1 && bad <= count_lines(text) + 1, "bad line %d of %d", bad,
                   count_lines(text));
    } else {
        for (size_t i = 0; i < p.n; i++) {
            const char *v = properties_get(&p, p.items[i].key);
            FUZZ_CHECK(v != NULL && strcmp(v, p.items[i].value) == 0,
                       "key '%s' reads back '%s', stored '%s'", p.items[i].key, v ? v : "(null)",
                       p.items[i].value);
        }
        struct broker_config c;
        config_defaults(&c);
        char err[256];
        memset(err, 'x', sizeof(err));
        if (config_apply(&c, &p, err, sizeof(err)) != 0) {
            FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL, "error not terminated");
        } else {
            for (size_t i = 0; config_property_name(i); i++) {
                char small[8], big[2048];
                config_describe(&c, config_property_name(i), small, sizeof(small));
                config_describe(&c, config_property_name(i), big, sizeof(big));
                FUZZ_CHECK(memchr(small, '\0', sizeof(small)) && memchr(big, '\0', sizeof(big)),
                           "describe of %s not terminated", config_property_name(i));
            }
            double r = c.log_cleaner_min_cleanable_ratio;
            FUZZ_CHECK(!isnan(r) && r >= 0 && r <= 1,
                       "log.cleaner.min.cleanable.ratio accepted as %g", r);
        }
    }
    properties_free(&p);

    /* Each line as an --override, then as a listener list. */
    properties_init(&p);
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        (void)properties_set_override(&p, line);
        struct listener_config ls[CONFIG_MAX_LISTENERS];
        int n = config_parse_listeners(line, ls, CONFIG_MAX_LISTENERS);
        FUZZ_CHECK(n <= CONFIG_MAX_LISTENERS, "%d listeners", n);
        for (int i = 0; i < n; i++)
            FUZZ_CHECK(memchr(ls[i].name, '\0', sizeof(ls[i].name)) &&
                           memchr(ls[i].host, '\0', sizeof(ls[i].host)) && ls[i].port >= 0 &&
                           ls[i].port <= 65535,
                       "listener %d malformed", i);
    }
    properties_free(&p);
    free(text);
    return 0;
}
