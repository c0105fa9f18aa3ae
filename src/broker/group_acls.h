/*
 * ACL checks of the group APIs (Kafka's KafkaApis), around the calls handed to the group
 * coordinator (groups.c): before the call, a request the principal may not make is answered
 * at once and topics it may not touch are taken out of it; after the call, the response gets
 * those topics back with TOPIC_AUTHORIZATION_FAILED, or loses topics it may not see.
 *
 *   JoinGroup, SyncGroup, Heartbeat, LeaveGroup   READ on the group
 *   OffsetCommit                                  READ on the group, READ on each topic
 *   OffsetFetch                                   DESCRIBE on the group, DESCRIBE on each topic
 *   OffsetDelete                                  DELETE on the group, READ on each topic
 *   DescribeGroups                                DESCRIBE on each group
 *   DeleteGroups                                  DELETE on each group
 *   ListGroups                                    DESCRIBE on the cluster, else the groups the
 *                                                 principal may DESCRIBE
 *
 * Only with an authorizer; the request's worker thread.
 */
#ifndef GREGOR_BROKER_GROUP_ACLS_H
#define GREGOR_BROKER_GROUP_ACLS_H

#include <stdbool.h>

#include "broker/request.h"

/* What `before` took out of a request, for `after`. Zeroed by the caller. */
struct group_acl_state {
    int32_t n_denied;
    void *denied; /* OffsetCommit: the request topics taken out */
};

/* Returns true when resp is complete (the principal may not make this request at all). */
bool group_acl_before(struct broker_req *r, void *req, void *resp, struct group_acl_state *st);

/* Completes resp after the coordinator answered the (filtered) request. */
void group_acl_after(struct broker_req *r, const void *req, void *resp, struct group_acl_state *st);

#endif
