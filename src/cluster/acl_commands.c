/*
 * CreateAcls and DeleteAcls on the controller: the broker's handler has already checked each
 * binding (acl_binding_check), chosen ids and resolved DeleteAcls filters to ids; here the
 * changes are checked against the scratch image and turned into METADATA_REC_ACL records.
 * As Kafka's AclControlManager, adding a binding equal to one present and removing an id that
 * is gone (a concurrent DeleteAcls won) change nothing and are not errors.
 */
#include <string.h>

#include "cluster/commands.h"
#include "proto/gen/errors.h"

struct command *command_new_alter_acls(const struct controller_acl_change *changes, size_t n)
{
    struct command *cmd = command_alloc(COMMAND_ALTER_ACLS, n);
    if (cmd == NULL)
        return NULL;
    cmd->acls = arena_calloc(&cmd->arena, n ? n : 1, sizeof(*cmd->acls));
    if (cmd->acls == NULL)
        goto err;
    for (size_t i = 0; i < n; i++) {
        struct controller_acl_change *c = &cmd->acls[i];
        *c = changes[i];
        if (c->remove)
            continue;
        c->binding.resource_name = command_strdup(cmd, changes[i].binding.resource_name);
        c->binding.principal = command_strdup(cmd, changes[i].binding.principal);
        c->binding.host = command_strdup(cmd, changes[i].binding.host);
        if (!c->binding.resource_name || !c->binding.principal || !c->binding.host)
            goto err;
    }
    return cmd;
err:
    command_free(cmd);
    return NULL;
}

static bool acl_binding_equal(const struct acl_binding *a, const struct acl_binding *b)
{
    return a->resource_type == b->resource_type && a->pattern_type == b->pattern_type &&
           a->operation == b->operation && a->permission == b->permission &&
           strcmp(a->resource_name, b->resource_name) == 0 &&
           strcmp(a->principal, b->principal) == 0 && strcmp(a->host, b->host) == 0;
}

static bool acl_present(const struct metadata_image *img, const struct acl_binding *b)
{
    size_t n;
    const struct acl_binding *v = metadata_image_acls(img, &n);
    for (size_t i = 0; i < n; i++)
        if (acl_binding_equal(&v[i], b))
            return true;
    return false;
}

int command_validate_alter_acls(struct command *cmd, struct metadata_image *scratch,
                                struct metadata_buf *out)
{
    int emitted = 0;
    for (size_t i = 0; i < cmd->n; i++) {
        const struct controller_acl_change *c = &cmd->acls[i];
        char msg[256];
        if (!c->remove && acl_binding_check(&c->binding, msg, sizeof(msg)) != 0) {
            command_set_error(cmd, &cmd->results[i], KAFKA_ERR_INVALID_REQUEST, "%s", msg);
            continue;
        }
        long at = metadata_image_acl_index(scratch, c->id);
        if (c->remove ? at < 0 : (at >= 0 || acl_present(scratch, &c->binding)))
            continue;
        struct metadata_record rec = {.type = METADATA_REC_ACL};
        memcpy(rec.acl.id, c->id, METADATA_UUID_LEN);
        rec.acl.remove = c->remove;
        rec.acl.binding = c->binding;
        int rc = command_emit(scratch, out, &rec);
        if (rc < 0)
            return rc;
        emitted++;
    }
    return emitted;
}
