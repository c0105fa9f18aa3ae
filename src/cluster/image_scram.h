/*
 * The SCRAM credentials of the metadata image (KIP-554): per user and mechanism the salt,
 * iterations, StoredKey and ServerKey replayed from METADATA_REC_SCRAM_CREDENTIAL records.
 *
 * The set is immutable once published and shared between successive images (refcounted):
 * image_clone() takes a reference, and the first credential change on a clone copies the set,
 * so an image that changes no credential costs nothing extra. Readers (SASL authentication
 * on I/O workers, DescribeUserScramCredentials) hold an image reference, which keeps the set
 * alive: no lock on any path.
 */
#ifndef GREGOR_CLUSTER_IMAGE_SCRAM_H
#define GREGOR_CLUSTER_IMAGE_SCRAM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/records.h"

struct metadata_image;

struct metadata_scram_credential {
    char *name;
    uint8_t mechanism; /* METADATA_SCRAM_SHA_256 or _512 */
    int32_t iterations;
    uint32_t salt_len, key_len;
    uint8_t salt[METADATA_SCRAM_SALT_MAX];
    uint8_t stored_key[METADATA_SCRAM_KEY_MAX];
    uint8_t server_key[METADATA_SCRAM_KEY_MAX];
};

struct metadata_scram_set {
    atomic_uint refcount;
    size_t n;
    struct metadata_scram_credential *v; /* sorted by (name, mechanism), unique */
};

/* ---- reading (any thread holding an image reference) ---- */

/* The credential of user `name` for `mechanism`, or NULL. */
const struct metadata_scram_credential *metadata_image_scram(const struct metadata_image *img,
                                                             const char *name, uint8_t mechanism);

/* Index of the first credential of `name` (or where it would be) in the sorted set. */
size_t metadata_image_scram_first(const struct metadata_image *img, const char *name);

/* Number of credentials in the image (all users and mechanisms). */
size_t metadata_image_scram_count(const struct metadata_image *img);

/* The i-th credential in (name, mechanism) order, i < metadata_image_scram_count(). */
const struct metadata_scram_credential *metadata_image_scram_at(const struct metadata_image *img,
                                                                size_t i);

/* ---- building (controller thread, on an unpublished image) ---- */

/* dst (a fresh clone) shares src's set. */
void image_scram_share(struct metadata_image *dst, const struct metadata_image *src);
/* Drops the image's reference to its set. */
void image_scram_release(struct metadata_image *img);
/* Replays one record: 0 applied, 1 skipped (removing a credential that is not there), -ENOMEM. */
int image_scram_apply(struct metadata_image *img, const struct metadata_rec_scram_credential *r);
/* Appends one METADATA_REC_SCRAM_CREDENTIAL per credential (snapshots). 0 or -ENOMEM. */
int image_scram_encode(const struct metadata_image *img, struct metadata_buf *out);

#endif
