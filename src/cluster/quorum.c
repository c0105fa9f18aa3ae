/* controller.quorum.voters parsing (see quorum.h). */
#include "cluster/quorum.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_voter(const char *s, size_t len, struct quorum_voter *v, char *err, size_t errlen)
{
    char entry[QUORUM_ADDRESS_MAX + 16];
    if (len >= sizeof(entry)) {
        snprintf(err, errlen, "controller.quorum.voters: entry too long");
        return -EINVAL;
    }
    memcpy(entry, s, len);
    entry[len] = 0;
    char *at = strchr(entry, '@');
    char *colon = at ? strrchr(at, ':') : NULL;
    char *end;
    long id = at ? strtol(entry, &end, 10) : 0;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (at == NULL || colon == NULL || colon == at + 1 || id <= 0 || id > INT32_MAX || port <= 0 ||
        port > 65535 || *end != 0) {
        snprintf(err, errlen,
                 "controller.quorum.voters: invalid entry '%s' (expected id@host:port)", entry);
        return -EINVAL;
    }
    *at = 0;
    for (const char *p = entry; *p; p++) {
        if (*p < '0' || *p > '9') {
            snprintf(err, errlen, "controller.quorum.voters: invalid node id in '%s'", s);
            return -EINVAL;
        }
    }
    v->id = (int32_t)id;
    snprintf(v->address, sizeof(v->address), "%s", at + 1);
    return 0;
}

int quorum_parse(const char *spec, struct quorum *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (spec == NULL)
        return 0;
    const char *p = spec;
    while (*p) {
        while (*p == ' ')
            p++;
        size_t len = strcspn(p, ",");
        while (len > 0 && p[len - 1] == ' ')
            len--;
        if (out->n == QUORUM_MAX_VOTERS) {
            snprintf(err, errlen, "controller.quorum.voters: more than %d voters",
                     QUORUM_MAX_VOTERS);
            return -EINVAL;
        }
        struct quorum_voter *v = &out->voters[out->n];
        int rc = parse_voter(p, len, v, err, errlen);
        if (rc)
            return rc;
        for (size_t i = 0; i < out->n; i++) {
            if (out->voters[i].id == v->id || strcmp(out->voters[i].address, v->address) == 0) {
                snprintf(err, errlen, "controller.quorum.voters: duplicate voter %d@%s", v->id,
                         v->address);
                return -EINVAL;
            }
        }
        out->n++;
        p += strcspn(p, ",");
        if (*p == ',')
            p++;
    }
    return 0;
}

const struct quorum_voter *quorum_find(const struct quorum *q, int32_t id)
{
    for (size_t i = 0; i < q->n; i++)
        if (q->voters[i].id == id)
            return &q->voters[i];
    return NULL;
}
