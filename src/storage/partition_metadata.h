/*
 * Kafka's partition.metadata file in each partition directory: the id of the topic the
 * directory belongs to, so a directory left behind by a deleted topic is never taken for a
 * later topic of the same name. Format (no trailing newline), the topic id as Kafka prints a
 * Uuid (URL-safe base64 without padding, 22 characters):
 *
 *     version: 0
 *     topic_id: <id>
 *
 * Pure file I/O; written atomically and durably (checkpoint_write_file_atomic).
 */
#ifndef GREGOR_STORAGE_PARTITION_METADATA_H
#define GREGOR_STORAGE_PARTITION_METADATA_H

#include <stdint.h>

#define PARTITION_METADATA_FILE "partition.metadata"
#define PARTITION_METADATA_ID_LEN 16

/* Reads DIR/partition.metadata into id. 0; -ENOENT when there is none; -EBADMSG when it does
 * not parse (unknown version, bad or zero id); other negative errno on I/O errors. */
int partition_metadata_read(const char *dir, uint8_t id[PARTITION_METADATA_ID_LEN]);

/* Writes DIR/partition.metadata naming id. 0 or negative errno. */
int partition_metadata_write(const char *dir, const uint8_t id[PARTITION_METADATA_ID_LEN]);

#endif
