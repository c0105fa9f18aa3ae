/*
 * TxnOffsetCommit's member check (KIP-447), on the group's owner worker. Kafka's
 * ClassicGroup.validateOffsetCommit with isTransactional: a v3+ request that names a generation,
 * a member or a static instance must come from the group's current member in the current
 * generation (UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, ILLEGAL_GENERATION); one that names none of
 * them (what clients before KIP-447 send) is accepted even while the group has members. Only
 * the check runs here: txn_offset_commit.c writes the offsets once it passed. As in Kafka's
 * new coordinator, a group that does not exist accepts generation -1 only. A consumer group
 * (KIP-848) checks the member epoch instead (STALE_MEMBER_EPOCH).
 */
#include "group/consumer_group.h"
#include "group/group_internal.h"
#include "proto/gen/errors.h"
#include "proto/gen/txn_offset_commit.h"

/* Kafka's validateMember: the static instance, if named, must be held by this member id; the
 * member must be in the group. */
static int16_t txn_check_member(struct group *g, struct kstr member, struct kstr instance)
{
    if (instance.len >= 0) {
        struct member *bi = group_member_by_instance(g, instance);
        if (bi == NULL)
            return KAFKA_ERR_UNKNOWN_MEMBER_ID;
        if (!gstr_eq(&bi->id, member))
            return KAFKA_ERR_FENCED_INSTANCE_ID;
    }
    return group_find_member(g, member) == NULL ? KAFKA_ERR_UNKNOWN_MEMBER_ID : 0;
}

static int16_t txn_check(struct shard *s, const struct kmsg_txn_offset_commit_request *req)
{
    int32_t gen = req->generation_id;
    struct kstr member = req->member_id.len >= 0 ? req->member_id : KSTR_LIT("");
    struct kstr instance = req->group_instance_id;
    struct group *g = group_find(s, req->group_id);
    if (g == NULL)
        return gen >= 0 ? KAFKA_ERR_ILLEGAL_GENERATION : 0;
    if (g->state == GS_DEAD)
        return KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
    if (g->cg != NULL) /* a consumer group (KIP-848): ConsumerGroup.validateOffsetCommit */
        return cg_check_commit(g, member, gen, true, 5);
    if (gen < 0 && g->state == GS_EMPTY)
        return 0;
    if (gen < 0 && member.len == 0 && instance.len < 0)
        return 0; /* a transactional commit that names nobody: not checked */
    int16_t err = txn_check_member(g, member, instance);
    if (err == 0 && gen != g->generation)
        err = KAFKA_ERR_ILLEGAL_GENERATION;
    return err;
}

void group_handle_txn_commit_check(struct shard *s, struct group_call *c)
{
    int16_t *err = c->resp;
    *err = shard_error(s);
    if (*err == 0)
        *err = txn_check(s, c->req);
    call_finish(c);
}
