/*
 * controller.quorum.voters parsing: "1@host:port,2@host:port" (Kafka's format). Pure; any
 * thread.
 */
#ifndef GREGOR_CLUSTER_QUORUM_H
#define GREGOR_CLUSTER_QUORUM_H

#include <stddef.h>
#include <stdint.h>

#define QUORUM_MAX_VOTERS 16
#define QUORUM_ADDRESS_MAX 256

struct quorum_voter {
    int32_t id;
    char address[QUORUM_ADDRESS_MAX]; /* "host:port" */
};

struct quorum {
    size_t n;
    struct quorum_voter voters[QUORUM_MAX_VOTERS];
};

/*
 * Parses `spec` (NULL or "" gives zero voters). Returns 0 or -EINVAL with a message naming the
 * bad entry: id not a positive integer, missing '@' or ':', port not 1..65535, duplicate id or
 * address, too many voters.
 */
int quorum_parse(const char *spec, struct quorum *out, char *err, size_t errlen);

/* The voter with `id`, or NULL. */
const struct quorum_voter *quorum_find(const struct quorum *q, int32_t id);

#endif
