/*
 * Publication of the current metadata image to reader threads without locks.
 *
 * The hard part of "load a pointer, then take a reference" is that the writer may drop the
 * last reference in between. The cell closes that window with two reader counters used in
 * alternation (a minimal grace-period scheme): a reader announces itself in the counter of the
 * current parity, loads the pointer, takes its reference and leaves. The writer swaps the
 * pointer, flips the parity, and waits for the old parity's counter to drain before dropping
 * the old image's reference. Readers never wait or lock; the writer waits at most for readers
 * that are a few instructions into image_cell_acquire. One writer (the controller thread).
 */
#ifndef GREGOR_CLUSTER_IMAGE_CELL_H
#define GREGOR_CLUSTER_IMAGE_CELL_H

#include <stdatomic.h>

#include "cluster/image.h"

struct image_cell {
    _Atomic(const struct metadata_image *) current;
    atomic_uint parity;
    atomic_uint readers[2];
};

/* Starts the cell with `img` (the cell takes over the caller's reference). */
void image_cell_init(struct image_cell *cell, const struct metadata_image *img);

/* Any thread: a new reference to the current image; release with metadata_image_release. */
const struct metadata_image *image_cell_acquire(struct image_cell *cell);

/* Writer thread only: makes `img` current (taking over the caller's reference). */
void image_cell_publish(struct image_cell *cell, const struct metadata_image *img);

/* Drops the cell's reference; no reader may be inside image_cell_acquire. */
void image_cell_destroy(struct image_cell *cell);

#endif
