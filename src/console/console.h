/*
 * The web console: an HTTP server (libmicrohttpd, one internal polling thread) serving the
 * console's static pages, compiled into the binary (assets.c), and JSON under /api/, which it
 * asks its owner (the broker) to answer through a console_source callback.
 *
 * Knows nothing of Kafka: the owner renders every /api/ answer. POST and DELETE reach the
 * owner only from the console's own pages (a custom header and same origin, no CORS).
 * Client input never makes a 500: the owner answers 4xx with a JSON {"error": ...} body.
 *
 * Threads. console_serve(), console_stop() and console_port() belong to the controlling
 * thread; the source callback runs on the HTTP thread between console_serve() and
 * console_stop(), one request at a time.
 */
#ifndef GREGOR_CONSOLE_CONSOLE_H
#define GREGOR_CONSOLE_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>

#include "metrics/expo.h"

struct console;

/* One /api/ request as the owner sees it. */
struct console_request {
    const char *path;   /* after "/api", e.g. "/topics/orders"; already URL-decoded */
    const char *method; /* GET (also for HEAD), POST or DELETE */
    /* The query argument `name`, or NULL when absent. */
    const char *(*arg)(const struct console_request *req, const char *name);
    void *conn; /* for arg() */
};

struct console_source {
    /* Writes a JSON body to out and returns the HTTP status. */
    int (*handle)(void *ctx, const struct console_request *req, struct expo *out);
    void *ctx;
};

/*
 * Parses a console.listener value "http://HOST:PORT" (as metrics.listener). An empty HOST
 * means loopback (127.0.0.1), never every interface: the console has no authentication, so
 * binding elsewhere needs an explicit host. Returns 0 or -EINVAL.
 */
int console_parse_listener(const char *s, char *host, size_t hostlen, int *port);

/*
 * Binds `listener` and starts the HTTP thread; *out is the running console. On failure writes
 * one line naming console.listener to err and returns < 0. src is copied.
 */
int console_serve(const char *listener, const struct console_source *src, struct console **out,
                  char *err, size_t errlen);

/* The bound port (0 when c is NULL). */
int console_port(const struct console *c);

/* Stops the HTTP thread (waits for a request in progress) and frees c. NULL is a no-op. */
void console_stop(struct console *c);

/* Finds a static asset by URL path ("/assets/app.js"); false when there is none. */
struct console_asset {
    const char *path;
    const char *type;
    const unsigned char *data;
    size_t len;
};
bool console_asset_find(const char *path, struct console_asset *out);

#endif
