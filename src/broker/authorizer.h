/*
 * The broker's authorizer (authorizer.class.name): Kafka's StandardAuthorizer rules
 * (security/acl.h) applied to the ACLs of the current metadata image, for the principal of a
 * request's connection and the address it comes from.
 *
 * Without authorizer.class.name every check allows and authorized operations are all the
 * resource's operations, which is Gregor's behaviour before ACLs existed.
 *
 * Inter-broker traffic is authorized as Kafka authorizes it: a broker's requests need
 * CLUSTER_ACTION on the cluster, which in practice means the broker principal is a super user.
 * Gregor's nodes talk to each other over the PLAINTEXT inter-broker listener, so their principal
 * is User:ANONYMOUS, and a cluster with the authorizer on lists it in super.users (then clients
 * must use another, authenticated listener).
 *
 * Hot path: a check takes a reference on the current image, scans its ACLs and drops the
 * reference; nothing is allocated. Threads: any worker; the authorizer is read-only after
 * start.
 */
#ifndef GREGOR_BROKER_AUTHORIZER_H
#define GREGOR_BROKER_AUTHORIZER_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/request.h"
#include "cluster/image.h"
#include "security/acl.h"

struct broker;

/* Parses super.users; b->authz stays NULL without authorizer.class.name. Returns 0 or -ENOMEM. */
int broker_authorizer_start(struct broker *b, char *err, size_t errlen);
void broker_authorizer_stop(struct broker *b);

/* True when authorizer.class.name is set. */
bool broker_authorizer_on(const struct broker *b);

/* May r's principal do `op` on the resource? img: the caller's image, or NULL to use the
 * current one. */
bool broker_authorize(struct broker_req *r, const struct metadata_image *img, int resource_type,
                      const char *name, int op);

/* The same for a principal ("User:NAME") and host given by the caller rather than a Kafka
 * connection: the web console's signed-in user. Any thread. */
bool broker_authorize_subject(struct broker *b, const char *principal, const char *host,
                              const struct metadata_image *img, int resource_type, const char *name,
                              int op);

/* The same on the cluster resource ("kafka-cluster"). */
bool broker_authorize_cluster(struct broker_req *r, int op);

/* Kafka's authorizeByResourceType: `op` on at least one resource of the type. */
bool broker_authorize_any(struct broker_req *r, int resource_type, int op);

/* KIP-430: the operations of `supported` r's principal may do on the resource. */
int32_t broker_authorized_operations(struct broker_req *r, const struct metadata_image *img,
                                     int resource_type, const char *name, int32_t supported);

#endif
