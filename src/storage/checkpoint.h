/*
 * Kafka's checkpoint text files, written atomically (write <name>.tmp, fsync, rename over
 * <name>, fsync the directory) so a crash leaves either the old or the new file:
 *
 *   offset checkpoints (per log dir: recovery-point-offset-checkpoint,
 *   log-start-offset-checkpoint, replication-offset-checkpoint):
 *       0\n COUNT\n then "TOPIC PARTITION OFFSET\n" per entry
 *   leader-epoch-checkpoint (per partition): 0\n COUNT\n then "EPOCH START_OFFSET\n"
 *
 * Readers accept any whitespace between fields and reject a version other than 0 or a count
 * that does not match the lines. Pure file I/O; callers serialise writers of the same file.
 */
#ifndef GREGOR_STORAGE_CHECKPOINT_H
#define GREGOR_STORAGE_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#define CHECKPOINT_RECOVERY_POINT "recovery-point-offset-checkpoint"
#define CHECKPOINT_LOG_START "log-start-offset-checkpoint"
#define CHECKPOINT_REPLICATION "replication-offset-checkpoint"
#define CHECKPOINT_LEADER_EPOCH "leader-epoch-checkpoint"
#define CLEAN_SHUTDOWN_MARKER ".kafka_cleanshutdown"

struct checkpoint_entry {
    char *topic; /* owned by the array returned from checkpoint_read_offsets */
    int32_t partition;
    int64_t offset;
};

struct epoch_entry {
    int32_t epoch;
    int64_t start_offset;
};

/* Replaces path with data[0..len) atomically and durably. Negative errno on failure (the old
 * file is untouched then). */
int checkpoint_write_file_atomic(const char *path, const void *data, size_t len);

int checkpoint_write_offsets(const char *path, const struct checkpoint_entry *entries, size_t n);

/* Reads an offset checkpoint; *out is malloc'ed (free with checkpoint_free_offsets).
 * -ENOENT when missing, -EBADMSG when malformed. */
int checkpoint_read_offsets(const char *path, struct checkpoint_entry **out, size_t *n);
void checkpoint_free_offsets(struct checkpoint_entry *entries, size_t n);

/* Looks up (topic, partition) in entries; returns its offset or `dflt`. Linear. */
int64_t checkpoint_find(const struct checkpoint_entry *entries, size_t n, const char *topic,
                        int32_t partition, int64_t dflt);

int checkpoint_write_epochs(const char *path, const struct epoch_entry *entries, size_t n);
/* *out malloc'ed (free()). -ENOENT / -EBADMSG as above. */
int checkpoint_read_epochs(const char *path, struct epoch_entry **out, size_t *n);

/* fsync of a directory (after creating, renaming or deleting entries in it). */
int checkpoint_sync_dir(const char *dir);

#endif
