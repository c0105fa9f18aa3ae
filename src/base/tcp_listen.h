/*
 * A listening TCP socket for the broker's HTTP listeners (metrics.listener, console.listener):
 * resolve, bind and listen, with the start-up error naming the property. Any thread.
 */
#ifndef GREGOR_BASE_TCP_LISTEN_H
#define GREGOR_BASE_TCP_LISTEN_H

#include <stddef.h>

/*
 * Binds host:port ("" or NULL host: any address; the callers pass loopback by default) with
 * SO_REUSEADDR and listens. Returns the fd (close-on-exec) and *family, or a negative errno
 * with "configuration property '<property>' <listener>: ..." in err.
 */
int tcp_listen(const char *property, const char *listener, const char *host, int port, int *family,
               char *err, size_t errlen);

#endif
