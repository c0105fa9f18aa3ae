/*
 * The console's HTTP server: libmicrohttpd with one internal polling thread on a socket bound
 * here (so a bind failure names console.listener and its errno). Routes:
 *   GET /api/...            the owner's JSON (console_source), 4xx on bad input
 *   POST, DELETE /api/...   changes (console_change_allowed guards them), same source
 *   GET /assets/<file>      compiled-in static files (assets.c)
 *   GET /, /topics[/...], /groups[/...]  the single page (index.html), which routes on
 * location.pathname Anything else is 404; other methods are 405.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/logger.h"
#include "base/tcp_listen.h"
#include "console/console.h"
#include "console/json.h"
#include "metrics/metrics.h"

struct console {
    struct MHD_Daemon *daemon;
    struct console_source src;
    int port;
};

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

/* Queues body (malloc'ed, taken over) with status and content type. */
static enum MHD_Result console_send(struct MHD_Connection *c, unsigned status, char *body,
                                    size_t len, const char *type)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    enum MHD_Result r = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return r;
}

static enum MHD_Result console_send_expo(struct MHD_Connection *c, unsigned status, struct expo *e,
                                         const char *type)
{
    if (e->oom) {
        expo_free(e);
        char *msg = strdup("{\"error\":\"out of memory\",\"status\":503}");
        if (msg == NULL)
            return MHD_NO;
        return console_send(c, MHD_HTTP_SERVICE_UNAVAILABLE, msg, strlen(msg), "application/json");
    }
    size_t len = 0;
    char *body = expo_take(e, &len);
    if (body == NULL)
        body = strdup("");
    if (body == NULL)
        return MHD_NO;
    return console_send(c, status, body, len, type);
}

/* Static assets live in the binary's read-only data: sent without copying. */
static enum MHD_Result console_send_asset(struct MHD_Connection *c, const struct console_asset *a)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, a->type);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; style-src 'self'");
    enum MHD_Result r = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return r;
}

static const char *console_request_arg(const struct console_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

static enum MHD_Result console_serve_api(struct console *con, struct MHD_Connection *c,
                                         const char *path, const char *method)
{
    struct console_request req = {
        .path = path, .method = method, .arg = console_request_arg, .conn = c};
    struct expo e;
    expo_init(&e);
    int status = con->src.handle(con->src.ctx, &req, &e);
    return console_send_expo(c, (unsigned)status, &e, "application/json; charset=utf-8");
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
    return console_send_expo(c, MHD_HTTP_NOT_FOUND, &e, "application/json; charset=utf-8");
}

static enum MHD_Result console_refuse(struct MHD_Connection *c, unsigned status, const char *msg)
{
    struct expo e;
    expo_init(&e);
    json_error(&e, (int)status, "%s", msg);
    return console_send_expo(c, status, &e, "application/json; charset=utf-8");
}

/*
 * A request that changes something must come from the console's own pages: they send the
 * header X-Gregor-Console (a custom header, so another site's page cannot send it without a
 * CORS preflight, which is never granted), and a browser's Origin, when present, must be this
 * server. Without authentication this is what stops a web page from deleting topics through a
 * developer's browser.
 */
static bool console_change_allowed(struct MHD_Connection *c)
{
    const char *mark = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Gregor-Console");
    if (mark == NULL)
        return false;
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (origin == NULL)
        return true;
    return host != NULL && strncmp(origin, "http://", 7) == 0 && strcmp(origin + 7, host) == 0;
}

static bool console_is_change(const char *method)
{
    return strcmp(method, MHD_HTTP_METHOD_POST) == 0 || strcmp(method, MHD_HTTP_METHOD_DELETE) == 0;
}

static enum MHD_Result console_handle(void *cls, struct MHD_Connection *c, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **req_cls)
{
    struct console *con = cls;
    bool api = strcmp(url, "/api") == 0 || strncmp(url, "/api/", 5) == 0;
    if (console_is_change(method) && api) {
        /* MHD calls again for each piece of a body: the console's changes take their
         * arguments from the query string, so a body is read and dropped (bounded by the
         * connection timeout), and the answer comes on the last call. */
        if (*req_cls == NULL) {
            *req_cls = con;
            return MHD_YES;
        }
        if (*upload_data_size != 0) {
            *upload_data_size = 0;
            return MHD_YES;
        }
        if (!console_change_allowed(c))
            return console_refuse(c, MHD_HTTP_FORBIDDEN,
                                  "changes need the console's own page (header "
                                  "X-Gregor-Console, same origin)");
        return console_serve_api(con, c, url + 4, method);
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return console_refuse(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
    if (api)
        return console_serve_api(con, c, url + 4, MHD_HTTP_METHOD_GET);
    struct console_asset a;
    if (!console_asset_find(url, &a) &&
        !(console_is_page(url) && console_asset_find("/index.html", &a)))
        return console_not_found(c, url);
    return console_send_asset(c, &a);
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
    /* epoll, not MHD's default select(): a broker with many partitions has thousands of
     * descriptors open, and select() cannot watch one numbered FD_SETSIZE (1024) or more, so
     * the browser's connections would be dropped. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* The logger first, so MHD prints nothing of its own. */
    con->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, console_handle, con, MHD_OPTION_EXTERNAL_LOGGER, console_http_log,
        NULL, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned)32,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (con->daemon == NULL) {
        close(fd);
        free(con);
        snprintf(err, errlen,
                 "configuration property 'console.listener' %s: cannot start the HTTP server",
                 listener);
        return -EIO;
    }
    logger_info("console", "web console on http://%s%s%s:%d/%s", family == AF_INET6 ? "[" : "",
                host, family == AF_INET6 ? "]" : "", con->port,
                console_is_loopback(host) ? " (loopback only; no authentication)"
                                          : " (no authentication: reachable from the network)");
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
    MHD_stop_daemon(c->daemon); /* joins the thread and closes the listening socket */
    free(c);
}
