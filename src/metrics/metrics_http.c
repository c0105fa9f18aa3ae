/*
 * The HTTP endpoint: libmicrohttpd with one internal epoll thread, on a socket we bind
 * ourselves (so a bind failure is reported with its errno and the property name). Serves
 * GET/HEAD /metrics (Prometheus text 0.0.4) and /health; anything else is 404 or 405.
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
#include "base/dynlib.h"
#include "base/tcp_listen.h"
#include "metrics/metrics_internal.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

int metrics_parse_listener(const char *s, char *host, size_t hostlen, int *port)
{
    if (s == NULL || strncasecmp(s, "http://", 7) != 0)
        return -EINVAL;
    const char *h = s + 7;
    const char *hend, *colon;
    if (*h == '[') {
        hend = strchr(h, ']');
        if (hend == NULL || hend[1] != ':')
            return -EINVAL;
        colon = hend + 1;
        h++;
    } else {
        colon = strrchr(h, ':');
        if (colon == NULL)
            return -EINVAL;
        hend = colon;
        if (memchr(h, '/', (size_t)(hend - h)) || memchr(h, ':', (size_t)(hend - h)))
            return -EINVAL;
    }
    const char *p = colon + 1;
    if (*p == '\0' || strlen(p) > 5)
        return -EINVAL;
    long v = 0;
    for (const char *c = p; *c; c++) {
        if (*c < '0' || *c > '9')
            return -EINVAL;
        v = v * 10 + (*c - '0');
    }
    size_t hl = (size_t)(hend - h);
    if (v > 65535 || hl >= 256)
        return -EINVAL;
    if (host != NULL) {
        if (hl >= hostlen)
            return -EINVAL;
        memcpy(host, h, hl);
        host[hl] = '\0';
    }
    if (port != NULL)
        *port = (int)v;
    return 0;
}

static enum MHD_Result metrics_http_send(struct MHD_Connection *c, unsigned status, char *body,
                                         size_t len, const char *type)
{
    struct MHD_Response *resp =
        DYNLIB(MHD_create_response_from_buffer)(len, body, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }
    DYNLIB(MHD_add_response_header)(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result r = DYNLIB(MHD_queue_response)(c, status, resp);
    DYNLIB(MHD_destroy_response)(resp);
    return r;
}

static enum MHD_Result metrics_http_text(struct MHD_Connection *c, unsigned status,
                                         const char *text)
{
    char *body = strdup(text);
    if (body == NULL)
        return MHD_NO;
    return metrics_http_send(c, status, body, strlen(body), "text/plain; charset=utf-8");
}

static enum MHD_Result metrics_http_handle(void *cls, struct MHD_Connection *c, const char *url,
                                           const char *method, const char *version,
                                           const char *upload_data, size_t *upload_data_size,
                                           void **req_cls)
{
    struct metrics *m = cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return metrics_http_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    struct expo e;
    expo_init(&e);
    unsigned status;
    const char *type;
    if (strcmp(url, "/metrics") == 0) {
        metrics_render(m, &e);
        status = MHD_HTTP_OK;
        type = METRICS_CONTENT_TYPE;
    } else if (strcmp(url, "/health") == 0) {
        status = m->src.health ? (unsigned)m->src.health(m->src.ctx, &e) : MHD_HTTP_OK;
        if (!m->src.health)
            expo_printf(&e, "ok\n");
        type = "text/plain; charset=utf-8";
    } else {
        return metrics_http_text(c, MHD_HTTP_NOT_FOUND, "not found: try /metrics or /health\n");
    }
    if (e.oom) {
        expo_free(&e);
        return metrics_http_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    }
    size_t len;
    char *body = expo_take(&e, &len);
    if (body == NULL)
        body = strdup("");
    return metrics_http_send(c, status, body, len, type);
}

static void metrics_http_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    logger_warn("metrics", "%s", msg);
}

int metrics_serve(struct metrics *m, const char *listener, const struct metrics_source *src,
                  char *err, size_t errlen)
{
    char host[256];
    int port;
    if (metrics_parse_listener(listener, host, sizeof(host), &port) != 0) {
        snprintf(err, errlen,
                 "invalid value '%s' for configuration property 'metrics.listener' "
                 "(expected http://HOST:PORT)",
                 listener);
        return -EINVAL;
    }
    int family = AF_INET;
    int fd = tcp_listen("metrics.listener", listener, host, port, &family, err, errlen);
    if (fd < 0)
        return fd;
    m->src = *src;
    /* epoll, not MHD's default select(): a broker with many partitions or connections holds
     * more than FD_SETSIZE (1024) descriptors, and select() cannot watch a scrape's connection
     * numbered above that (MHD refused it with a reset). */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (family == AF_INET6)
        flags |= MHD_USE_IPv6;
    char why[256];
    if (dynlib_load(DYNLIB_MICROHTTPD, why, sizeof(why)) != 0) {
        close(fd);
        snprintf(err, errlen, "configuration property 'metrics.listener' %s: %s", listener, why);
        return -EIO;
    }
    /* The logger first, so MHD prints nothing of its own. */
    m->daemon = DYNLIB(MHD_start_daemon)(
        flags, 0, NULL, NULL, metrics_http_handle, m, MHD_OPTION_EXTERNAL_LOGGER, metrics_http_log,
        NULL, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (m->daemon == NULL) {
        close(fd);
        snprintf(err, errlen,
                 "configuration property 'metrics.listener' %s: cannot start the HTTP server",
                 listener);
        return -EIO;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    m->port = port;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        m->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    logger_info("metrics", "serving /metrics and /health on http://%s:%d",
                host[0] ? host : "0.0.0.0", m->port);
    return 0;
}

int metrics_port(const struct metrics *m)
{
    return m && m->daemon ? m->port : 0;
}

void metrics_stop_serving(struct metrics *m)
{
    if (m == NULL || m->daemon == NULL)
        return;
    DYNLIB(MHD_stop_daemon)(m->daemon); /* joins the thread and closes the listening socket */
    m->daemon = NULL;
    m->port = 0;
}
