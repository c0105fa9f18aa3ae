/*
 * The console's HTTP server: libmicrohttpd with one internal epoll thread on a socket bound
 * here (so a bind failure names console.listener and its errno). Routes:
 *   GET /api/...            the owner's JSON (console_source), 4xx on bad input
 *   GET /api/session        who is signed in, the CSRF token, or that security is off
 *   POST, DELETE /api/...   changes (console_change_allowed guards them), same source
 *   GET, POST /login, POST /logout   signing in and out (console_login.c), security on only
 *   GET /assets/<file>      compiled-in static files (assets.c), never behind a login
 *   GET /, /topics[/...], /groups[/...]  the single page (index.html), which routes on
 *                           location.pathname
 * Anything else is 404; other methods are 405. With security on, /api/ without a session is
 * 401 and a page redirects to /login?next=PATH.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/logger.h"
#include "base/dynlib.h"
#include "base/tcp_listen.h"
#include "console/console_internal.h"
#include "console/json.h"
#include "metrics/metrics.h"

#define CONSOLE_OPEN_NOTICE_LOOPBACK "no security: console open to anyone on this host"
#define CONSOLE_OPEN_NOTICE_NETWORK "no security: console open to anyone who can reach this address"

int console_parse_listener(const char *s, char *host, size_t hostlen, int *port)
{
    char h[256];
    int rc = metrics_parse_listener(s, h, sizeof(h), port);
    if (rc != 0)
        return rc;
    if (host != NULL) {
        if (strlen(h) >= hostlen)
            return -EINVAL;
        snprintf(host, hostlen, "%s", h[0] ? h : "127.0.0.1");
    }
    return 0;
}

/* What every page and asset carries: no MIME sniffing, no framing, scripts and styles only from
 * the console itself. */
static void console_add_security_headers(struct MHD_Response *resp)
{
    __typeof__(&MHD_add_response_header) add = DYNLIB(MHD_add_response_header);
    add(resp, "X-Content-Type-Options", "nosniff");
    add(resp, "X-Frame-Options", "DENY");
    add(resp, "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'");
}

enum MHD_Result console_send(struct MHD_Connection *c, unsigned status, char *body, size_t len,
                             const char *type, const char *hname, const char *hvalue)
{
    struct MHD_Response *resp =
        DYNLIB(MHD_create_response_from_buffer)(len, body, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }
    DYNLIB(MHD_add_response_header)(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    DYNLIB(MHD_add_response_header)(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    console_add_security_headers(resp);
    if (hname != NULL)
        DYNLIB(MHD_add_response_header)(resp, hname, hvalue);
    enum MHD_Result r = DYNLIB(MHD_queue_response)(c, status, resp);
    DYNLIB(MHD_destroy_response)(resp);
    return r;
}

enum MHD_Result console_send_expo(struct MHD_Connection *c, unsigned status, struct expo *e,
                                  const char *type, const char *hname, const char *hvalue)
{
    if (e->oom) {
        expo_free(e);
        char *msg = strdup("{\"error\":\"out of memory\",\"status\":503}");
        if (msg == NULL)
            return MHD_NO;
        return console_send(c, MHD_HTTP_SERVICE_UNAVAILABLE, msg, strlen(msg), "application/json",
                            NULL, NULL);
    }
    size_t len = 0;
    char *body = expo_take(e, &len);
    if (body == NULL)
        body = strdup("");
    if (body == NULL)
        return MHD_NO;
    return console_send(c, status, body, len, type, hname, hvalue);
}

static enum MHD_Result console_send_json(struct MHD_Connection *c, unsigned status, struct expo *e)
{
    return console_send_expo(c, status, e, "application/json; charset=utf-8", NULL, NULL);
}

/* Static assets live in the binary's read-only data: sent without copying. */
static enum MHD_Result console_send_asset(struct MHD_Connection *c, const struct console_asset *a)
{
    struct MHD_Response *resp =
        DYNLIB(MHD_create_response_from_buffer)(a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    DYNLIB(MHD_add_response_header)(resp, MHD_HTTP_HEADER_CONTENT_TYPE, a->type);
    console_add_security_headers(resp);
    enum MHD_Result r = DYNLIB(MHD_queue_response)(c, MHD_HTTP_OK, resp);
    DYNLIB(MHD_destroy_response)(resp);
    return r;
}

enum MHD_Result console_refuse(struct MHD_Connection *c, unsigned status, const char *msg)
{
    struct expo e;
    expo_init(&e);
    json_error(&e, (int)status, "%s", msg);
    return console_send_json(c, status, &e);
}

enum MHD_Result console_redirect(struct MHD_Connection *c, const char *location, const char *cookie)
{
    struct MHD_Response *resp =
        DYNLIB(MHD_create_response_from_buffer)(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    DYNLIB(MHD_add_response_header)(resp, MHD_HTTP_HEADER_LOCATION, location);
    DYNLIB(MHD_add_response_header)(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (cookie != NULL)
        DYNLIB(MHD_add_response_header)(resp, MHD_HTTP_HEADER_SET_COOKIE, cookie);
    enum MHD_Result r = DYNLIB(MHD_queue_response)(c, MHD_HTTP_SEE_OTHER, resp);
    DYNLIB(MHD_destroy_response)(resp);
    return r;
}

void console_client_addr(struct MHD_Connection *c, char *out, size_t len)
{
    const union MHD_ConnectionInfo *ci =
        DYNLIB(MHD_get_connection_info)(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    out[0] = '\0';
    if (ci == NULL || ci->client_addr == NULL)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)len);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)len);
}

bool console_same_origin(struct MHD_Connection *c)
{
    const char *origin = DYNLIB(MHD_lookup_connection_value)(c, MHD_HEADER_KIND, "Origin");
    const char *host =
        DYNLIB(MHD_lookup_connection_value)(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (origin == NULL)
        return true;
    return host != NULL && strncmp(origin, "http://", 7) == 0 && strcmp(origin + 7, host) == 0;
}

const struct console_session *console_request_session(struct console *con, struct MHD_Connection *c)
{
    const char *cookie = DYNLIB(MHD_lookup_connection_value)(c, MHD_COOKIE_KIND, CONSOLE_COOKIE);
    return console_session_find(&con->sessions, cookie, clock_mono_ms());
}

static const char *console_request_arg(const struct console_request *req, const char *name)
{
    return DYNLIB(MHD_lookup_connection_value)(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

static enum MHD_Result console_serve_api(struct console *con, struct MHD_Connection *c,
                                         const char *path, const char *method,
                                         const struct console_session *s)
{
    char principal[CONSOLE_USER_MAX + 8], host[64];
    struct console_request req = {
        .path = path, .method = method, .arg = console_request_arg, .conn = c};
    if (s != NULL) {
        snprintf(principal, sizeof(principal), "User:%s", s->user);
        console_client_addr(c, host, sizeof(host));
        req.principal = principal;
        req.host = host;
    }
    struct expo e;
    expo_init(&e);
    int status = con->src.handle(con->src.ctx, &req, &e);
    return console_send_json(c, (unsigned)status, &e);
}

/* GET /api/session: who is signed in and the CSRF token, or that security is off. */
static enum MHD_Result console_serve_session(struct console *con, struct MHD_Connection *c,
                                             const struct console_session *s)
{
    struct expo e;
    expo_init(&e);
    if (s == NULL) {
        expo_printf(&e, "{\"security\":false,\"loopback\":%s,\"notice\":\"%s\"}",
                    con->loopback ? "true" : "false",
                    con->loopback ? CONSOLE_OPEN_NOTICE_LOOPBACK : CONSOLE_OPEN_NOTICE_NETWORK);
        return console_send_json(c, MHD_HTTP_OK, &e);
    }
    expo_printf(&e, "{\"security\":true,\"user\":");
    json_string(&e, s->user);
    expo_printf(&e, ",\"principal\":");
    char principal[CONSOLE_USER_MAX + 8];
    snprintf(principal, sizeof(principal), "User:%s", s->user);
    json_string(&e, principal);
    expo_printf(&e, ",\"csrf\":\"%s\",\"expires_in_ms\":%lld}", s->csrf,
                (long long)(s->expires_ms - clock_mono_ms()));
    return console_send_json(c, MHD_HTTP_OK, &e);
}

/* The pages the single-page script knows how to draw. */
static bool console_is_page(const char *url)
{
    return strcmp(url, "/") == 0 || strcmp(url, "/topics") == 0 ||
           strncmp(url, "/topics/", 8) == 0 || strcmp(url, "/groups") == 0 ||
           strncmp(url, "/groups/", 8) == 0;
}

static enum MHD_Result console_not_found(struct MHD_Connection *c, const char *url)
{
    struct expo e;
    expo_init(&e);
    json_error(&e, MHD_HTTP_NOT_FOUND, "no such page: %.200s", url);
    return console_send_json(c, MHD_HTTP_NOT_FOUND, &e);
}

/*
 * A request that changes something must come from the console's own pages: they send the
 * header X-Gregor-Console (a custom header, so another site's page cannot send it without a
 * CORS preflight, which is never granted), and a browser's Origin, when present, must be this
 * server. With security on the session's CSRF token must come too (X-Gregor-CSRF).
 */
static bool console_change_allowed(struct MHD_Connection *c)
{
    const char *mark = DYNLIB(MHD_lookup_connection_value)(c, MHD_HEADER_KIND, "X-Gregor-Console");
    return mark != NULL && console_same_origin(c);
}

static bool console_is_change(const char *method)
{
    return strcmp(method, MHD_HTTP_METHOD_POST) == 0 || strcmp(method, MHD_HTTP_METHOD_DELETE) == 0;
}

static bool console_is_api(const char *url)
{
    return strcmp(url, "/api") == 0 || strncmp(url, "/api/", 5) == 0;
}

/* The declared body length is over the limit (a chunked body is counted as it comes). */
static bool console_body_too_large(struct MHD_Connection *c)
{
    const char *cl = DYNLIB(MHD_lookup_connection_value)(c, MHD_HEADER_KIND, "Content-Length");
    if (cl == NULL)
        return false;
    size_t n = strlen(cl);
    return n > 9 || strtoul(cl, NULL, 10) > CONSOLE_BODY_MAX;
}

/* Stores a piece of a body (bytes past CONSOLE_BODY_MAX are dropped and noted). */
static void console_body_add(struct console_body *b, const char *data, size_t n)
{
    size_t room = CONSOLE_BODY_MAX - b->len;
    if (n > room) {
        b->overflow = true;
        n = room;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

/* POST and DELETE once the whole body is in. */
static enum MHD_Result console_handle_change(struct console *con, struct MHD_Connection *c,
                                             const char *url, const char *method,
                                             const struct console_body *body)
{
    bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    if (post && strcmp(url, "/login") == 0)
        return con->secure ? console_login_post(con, c, body) : console_redirect(c, "/", NULL);
    if (post && strcmp(url, "/logout") == 0)
        return con->secure ? console_logout_post(con, c, body) : console_redirect(c, "/", NULL);
    if (!console_is_api(url))
        return console_refuse(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
    const struct console_session *s = NULL;
    if (con->secure && (s = console_request_session(con, c)) == NULL)
        return console_refuse(c, MHD_HTTP_UNAUTHORIZED, "sign in first: POST /login");
    if (!console_change_allowed(c))
        return console_refuse(c, MHD_HTTP_FORBIDDEN,
                              "changes need the console's own page (header "
                              "X-Gregor-Console, same origin)");
    if (s != NULL && !console_session_csrf_ok(s, DYNLIB(MHD_lookup_connection_value)(
                                                     c, MHD_HEADER_KIND, "X-Gregor-CSRF")))
        return console_refuse(c, MHD_HTTP_FORBIDDEN,
                              "changes need the session's CSRF token (header X-Gregor-CSRF, "
                              "from GET /api/session)");
    return console_serve_api(con, c, url + 4, method, s);
}

static enum MHD_Result console_handle_get(struct console *con, struct MHD_Connection *c,
                                          const char *url)
{
    if (strcmp(url, "/login") == 0) {
        if (!con->secure)
            return console_redirect(c, "/", NULL);
        const char *out =
            DYNLIB(MHD_lookup_connection_value)(c, MHD_GET_ARGUMENT_KIND, "signed_out");
        return console_login_form(
            con, c, MHD_HTTP_OK, out ? "You are signed out." : NULL,
            DYNLIB(MHD_lookup_connection_value)(c, MHD_GET_ARGUMENT_KIND, "next"));
    }
    struct console_asset a;
    if (console_asset_find(url, &a)) /* static files hold no data: no session needed */
        return console_send_asset(c, &a);
    bool api = console_is_api(url);
    if (!api && !console_is_page(url))
        return console_not_found(c, url);
    const struct console_session *s = NULL;
    if (con->secure && (s = console_request_session(con, c)) == NULL) {
        if (api)
            return console_refuse(c, MHD_HTTP_UNAUTHORIZED, "sign in first: POST /login");
        char next[600];
        snprintf(next, sizeof(next), "/login?next=%.500s", url);
        return console_redirect(c, strpbrk(url, "\r\n&?#") ? "/login" : next, NULL);
    }
    if (strcmp(url, "/api/session") == 0)
        return console_serve_session(con, c, s);
    if (api)
        return console_serve_api(con, c, url + 4, MHD_HTTP_METHOD_GET, s);
    if (!console_asset_find("/index.html", &a))
        return console_not_found(c, url);
    return console_send_asset(c, &a);
}

static enum MHD_Result console_handle(void *cls, struct MHD_Connection *c, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **req_cls)
{
    struct console *con = cls;
    if (!console_is_change(method)) {
        if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
            return console_refuse(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
        return console_handle_get(con, c, url);
    }
    /* MHD calls again for each piece of a body, then once more with none: the answer comes on
     * that last call. A body declared too large is refused before it is read. */
    if (*req_cls == NULL) {
        if (console_body_too_large(c))
            return console_refuse(c, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large");
        struct console_body *b = calloc(1, sizeof(*b));
        if (b == NULL)
            return MHD_NO;
        *req_cls = b;
        return MHD_YES;
    }
    struct console_body *b = *req_cls;
    if (*upload_data_size != 0) {
        console_body_add(b, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (b->overflow && console_is_api(url))
        return console_refuse(c, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large");
    return console_handle_change(con, c, url, method, b);
}

/* Frees a request's body buffer. */
static void console_request_done(void *cls, struct MHD_Connection *c, void **req_cls,
                                 enum MHD_RequestTerminationCode toe)
{
    free(*req_cls);
    *req_cls = NULL;
}

static void console_http_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    logger_warn("console", "%s", msg);
}

static int console_bound_port(int fd, int fallback)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        return fallback;
    return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
}

static bool console_is_loopback(const char *host)
{
    return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
           strcmp(host, "::1") == 0;
}

/* The start-up line: the address and what protects it; a warning when it is open to the
 * network, or takes passwords over plain HTTP from the network. */
static void console_log_start(const struct console *con, const char *host, bool v6)
{
    char addr[300];
    snprintf(addr, sizeof(addr), "http://%s%s%s:%d/", v6 ? "[" : "", host, v6 ? "]" : "",
             con->port);
    if (con->secure) {
        logger_info("console",
                    "web console on %s (%slogin required: the broker's SASL users, "
                    "its ACLs applied)",
                    addr, con->loopback ? "loopback only; " : "");
        if (!con->loopback)
            logger_warn("console",
                        "console.listener %s is not a loopback address and serves plain HTTP: "
                        "passwords and session cookies cross the network in clear; bind it to "
                        "127.0.0.1 or put a TLS proxy in front",
                        addr);
        return;
    }
    if (con->loopback) {
        logger_info("console",
                    "web console on %s (loopback only; " CONSOLE_OPEN_NOTICE_LOOPBACK ")", addr);
        return;
    }
    logger_info("console", "web console on %s (" CONSOLE_OPEN_NOTICE_NETWORK ")", addr);
    logger_warn("console",
                "console.listener %s is reachable from the network and there is no security "
                "(no SASL listener, no authorizer): anyone who reaches it can read every "
                "record and delete topics",
                addr);
}

int console_serve(const char *listener, const struct console_source *src, struct console **out,
                  char *err, size_t errlen)
{
    char host[256];
    int port;
    if (console_parse_listener(listener, host, sizeof(host), &port) != 0) {
        snprintf(err, errlen,
                 "invalid value '%s' for configuration property 'console.listener' "
                 "(expected http://HOST:PORT)",
                 listener);
        return -EINVAL;
    }
    struct console *con = calloc(1, sizeof(*con));
    if (con == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int family = AF_INET;
    int fd = tcp_listen("console.listener", listener, host, port, &family, err, errlen);
    if (fd < 0) {
        free(con);
        return fd;
    }
    con->src = *src;
    con->port = console_bound_port(fd, port);
    con->secure = src->login != NULL;
    con->loopback = console_is_loopback(host);
    console_sessions_init(&con->sessions, src->session_ms > 0 ? src->session_ms : 3600000);
    /* epoll, not MHD's default select(): a broker with many partitions has thousands of
     * descriptors open, and select() cannot watch one numbered FD_SETSIZE (1024) or more, so
     * the browser's connections would be dropped. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (family == AF_INET6)
        flags |= MHD_USE_IPv6;
    char why[256];
    if (dynlib_load(DYNLIB_MICROHTTPD, why, sizeof(why)) != 0) {
        close(fd);
        free(con);
        snprintf(err, errlen, "configuration property 'console.listener' %s: %s", listener, why);
        return -EIO;
    }
    /* The logger first, so MHD prints nothing of its own. */
    con->daemon = DYNLIB(MHD_start_daemon)(
        flags, 0, NULL, NULL, console_handle, con, MHD_OPTION_EXTERNAL_LOGGER, console_http_log,
        NULL, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned)32,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_NOTIFY_COMPLETED,
        console_request_done, NULL, MHD_OPTION_END);
    if (con->daemon == NULL) {
        close(fd);
        free(con);
        snprintf(err, errlen,
                 "configuration property 'console.listener' %s: cannot start the HTTP server",
                 listener);
        return -EIO;
    }
    console_log_start(con, host, family == AF_INET6);
    *out = con;
    return 0;
}

int console_port(const struct console *c)
{
    return c ? c->port : 0;
}

void console_stop(struct console *c)
{
    if (c == NULL)
        return;
    DYNLIB(MHD_stop_daemon)(c->daemon); /* joins the thread and closes the listening socket */
    free(c);
}
