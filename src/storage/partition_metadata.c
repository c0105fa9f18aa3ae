/* Kafka's partition.metadata file (see partition_metadata.h). */
#include "storage/partition_metadata.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "storage/checkpoint.h"

#define ID_CHARS 22 /* 16 bytes in base64 without padding */

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void id_encode(const uint8_t id[PARTITION_METADATA_ID_LEN], char out[ID_CHARS + 1])
{
    int k = 0;
    for (int i = 0; i < PARTITION_METADATA_ID_LEN; i += 3) {
        uint32_t v = (uint32_t)id[i] << 16;
        if (i + 1 < PARTITION_METADATA_ID_LEN)
            v |= (uint32_t)id[i + 1] << 8;
        if (i + 2 < PARTITION_METADATA_ID_LEN)
            v |= id[i + 2];
        for (int j = 3; j >= 0 && k < ID_CHARS; j--)
            out[k++] = B64URL[(v >> (6 * j)) & 63];
    }
    assert(k == ID_CHARS);
    out[ID_CHARS] = '\0';
}

static int b64_value(char c)
{
    const char *p = c ? strchr(B64URL, c) : NULL;
    return p ? (int)(p - B64URL) : -1;
}

/* Decodes exactly ID_CHARS characters; false if any is not base64url or the spare bits of the
 * last one are set (Kafka's decoder would give another id for them). */
static bool id_decode(const char *s, uint8_t id[PARTITION_METADATA_ID_LEN])
{
    uint32_t acc = 0;
    int bits = 0, n = 0;
    for (int i = 0; i < ID_CHARS; i++) {
        int v = b64_value(s[i]);
        if (v < 0)
            return false;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            id[n++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    assert(n == PARTITION_METADATA_ID_LEN);
    return acc == 0;
}

/* "KEY: VALUE" with any blanks between; returns VALUE's start or NULL. */
static const char *field_value(const char *line, const char *key)
{
    size_t n = strlen(key);
    if (strncmp(line, key, n) != 0 || (line[n] != ' ' && line[n] != '\t'))
        return NULL;
    line += n;
    while (*line == ' ' || *line == '\t')
        line++;
    return line;
}

static int parse(char *text, uint8_t id[PARTITION_METADATA_ID_LEN])
{
    char *nl = strchr(text, '\n');
    if (nl == NULL)
        return -EBADMSG;
    *nl = '\0';
    const char *version = field_value(text, "version:");
    if (version == NULL || strcmp(version, "0") != 0)
        return -EBADMSG;
    const char *tid = field_value(nl + 1, "topic_id:");
    if (tid == NULL)
        return -EBADMSG;
    size_t len = strcspn(tid, "\r\n");
    if (len != ID_CHARS || tid[len + strspn(tid + len, "\r\n")] != '\0' || !id_decode(tid, id))
        return -EBADMSG;
    static const uint8_t zero[PARTITION_METADATA_ID_LEN];
    return memcmp(id, zero, sizeof(zero)) == 0 ? -EBADMSG : 0;
}

int partition_metadata_read(const char *dir, uint8_t id[PARTITION_METADATA_ID_LEN])
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, PARTITION_METADATA_FILE) >= sizeof(path))
        return -ENAMETOOLONG;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char text[128];
    ssize_t n = read(fd, text, sizeof(text) - 1);
    int rc = n < 0 ? -errno : 0;
    close(fd);
    if (rc != 0)
        return rc;
    if ((size_t)n == sizeof(text) - 1)
        return -EBADMSG; /* far longer than the two lines */
    text[n] = '\0';
    return parse(text, id);
}

int partition_metadata_write(const char *dir, const uint8_t id[PARTITION_METADATA_ID_LEN])
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, PARTITION_METADATA_FILE) >= sizeof(path))
        return -ENAMETOOLONG;
    char enc[ID_CHARS + 1];
    id_encode(id, enc);
    char text[64];
    int len = snprintf(text, sizeof(text), "version: 0\ntopic_id: %s", enc);
    assert(len > 0 && (size_t)len < sizeof(text));
    return checkpoint_write_file_atomic(path, text, (size_t)len);
}
