/*
 * The web console: an HTTP server (libmicrohttpd, one internal epoll thread) serving the
 * console's static pages, compiled into the binary (assets.c), and JSON under /api/, which it
 * asks its owner (the broker) to answer through a console_source callback.
 *
 * Knows nothing of Kafka: the owner renders every /api/ answer and decides who may see what.
 * POST and DELETE reach the owner only from the console's own pages (a custom header and same
 * origin, no CORS). Client input never makes a 500: the owner answers 4xx with a JSON
 * {"error": ...} body.
 *
 * Security (console_login.c, console_session.c). When the owner gives a login callback, every
 * page and /api/ request needs a session: GET /login shows a form, POST /login checks the user
 * and password with the owner and sets an HttpOnly, SameSite=Strict session cookie, POST
 * /logout ends it. Without a session /api/ answers 401 and a page redirects to /login; a change
 * also needs the session's CSRF token (header X-Gregor-CSRF, from GET /api/session). The owner
 * gets the session's principal ("User:NAME") and the browser's address with each request and
 * applies its ACLs. Without a login callback the console is open to whoever reaches it, which
 * is why an empty host binds to loopback and the pages say so.
 *
 * Threads. console_serve(), console_stop() and console_port() belong to the controlling
 * thread; the source callbacks run on the HTTP thread between console_serve() and
 * console_stop(), one request at a time.
 */
#ifndef GREGOR_CONSOLE_CONSOLE_H
#define GREGOR_CONSOLE_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics/expo.h"

struct console;

/* One /api/ request as the owner sees it. */
struct console_request {
    const char *path;   /* after "/api", e.g. "/topics/orders"; already URL-decoded */
    const char *method; /* GET (also for HEAD), POST or DELETE */
    /* The query argument `name`, or NULL when absent. */
    const char *(*arg)(const struct console_request *req, const char *name);
    void *conn; /* for arg() */
    /* With security on, the session's principal ("User:NAME") and the browser's address (for
     * ACLs that name hosts); both NULL without security. */
    const char *principal;
    const char *host;
};

struct console_source {
    /* Writes a JSON body to out and returns the HTTP status. */
    int (*handle)(void *ctx, const struct console_request *req, struct expo *out);
    /* Security on when set: 0 when password is user's, < 0 otherwise. May take milliseconds
     * (a key derivation), never blocks on the network. */
    int (*login)(void *ctx, const char *user, const char *password);
    int64_t session_ms; /* a session's lifetime from its login (security on) */
    void *ctx;
};

/*
 * Parses a console.listener value "http://HOST:PORT" (as metrics.listener). An empty HOST
 * means loopback (127.0.0.1), never every interface: without security the console is open to
 * whoever reaches it, so binding elsewhere needs an explicit host. Returns 0 or -EINVAL.
 */
int console_parse_listener(const char *s, char *host, size_t hostlen, int *port);

/*
 * Binds `listener` and starts the HTTP thread; *out is the running console. On failure writes
 * one line naming console.listener to err and returns < 0. src is copied. Logs the address and
 * whether it needs a login; a warning when it is reachable from the network over plain HTTP.
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
