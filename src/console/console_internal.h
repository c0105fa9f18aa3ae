/*
 * What the console's HTTP files share (console_http.c routes, console_login.c signs in and
 * out): the console context and the response helpers. HTTP thread only, except where
 * console.h says otherwise.
 */
#ifndef GREGOR_CONSOLE_CONSOLE_INTERNAL_H
#define GREGOR_CONSOLE_CONSOLE_INTERNAL_H

#include <microhttpd.h>
#include <stdbool.h>

#include "console/console.h"
#include "console/console_session.h"

#define CONSOLE_COOKIE "gregor_session"
/* The largest POST body read (the login form); a larger one is 413. */
#define CONSOLE_BODY_MAX 4096

struct console {
    struct MHD_Daemon *daemon;
    struct console_source src;
    int port;
    bool secure;   /* src.login set: sessions required */
    bool loopback; /* bound to a loopback address */
    struct console_sessions sessions;
    struct console_throttle throttle;
};

/* A POST or DELETE body being received (MHD's per-request pointer); freed when the request
 * completes. Bytes past CONSOLE_BODY_MAX are dropped and set overflow. */
struct console_body {
    size_t len;
    bool overflow;
    char data[CONSOLE_BODY_MAX + 1]; /* NUL-terminated */
};

/* Queues body (malloc'ed, taken over) with status and content type, and a header pair
 * (name NULL for none). */
enum MHD_Result console_send(struct MHD_Connection *c, unsigned status, char *body, size_t len,
                             const char *type, const char *hname, const char *hvalue);

/* Queues e's text (taken over); 503 when e ran out of memory. */
enum MHD_Result console_send_expo(struct MHD_Connection *c, unsigned status, struct expo *e,
                                  const char *type, const char *hname, const char *hvalue);

/* A JSON {"error": msg} with status. */
enum MHD_Result console_refuse(struct MHD_Connection *c, unsigned status, const char *msg);

/* 303 to location (a local path), with an optional Set-Cookie value. */
enum MHD_Result console_redirect(struct MHD_Connection *c, const char *location,
                                 const char *cookie);

/* The browser's address ("127.0.0.1", "::1") into out; "" when unknown. */
void console_client_addr(struct MHD_Connection *c, char *out, size_t len);

/* True when the request's Origin, if sent, is this server (http://HOST as the Host header). */
bool console_same_origin(struct MHD_Connection *c);

/* The live session of the request's cookie, or NULL. */
const struct console_session *console_request_session(struct console *con,
                                                      struct MHD_Connection *c);

/* GET /login: the form (status 200), with an optional message; next: where to go after. */
enum MHD_Result console_login_form(struct console *con, struct MHD_Connection *c, unsigned status,
                                   const char *msg, const char *next);

/* POST /login and POST /logout with their urlencoded bodies. */
enum MHD_Result console_login_post(struct console *con, struct MHD_Connection *c,
                                   const struct console_body *body);
enum MHD_Result console_logout_post(struct console *con, struct MHD_Connection *c,
                                    const struct console_body *body);

#endif
