/*
 * Lock-free image publication (see image_cell.h for the scheme). All operations are seq_cst:
 * the correctness argument needs the reader's "announce, re-check parity, load pointer" and
 * the writer's "swap pointer, flip parity, read counter" to be totally ordered.
 */
#include "cluster/image_cell.h"

#include <sched.h>

void image_cell_init(struct image_cell *cell, const struct metadata_image *img)
{
    atomic_init(&cell->current, img);
    atomic_init(&cell->parity, 0);
    atomic_init(&cell->readers[0], 0);
    atomic_init(&cell->readers[1], 0);
}

const struct metadata_image *image_cell_acquire(struct image_cell *cell)
{
    unsigned p;
    for (;;) {
        p = atomic_load(&cell->parity);
        atomic_fetch_add(&cell->readers[p], 1);
        if (atomic_load(&cell->parity) == p)
            break;
        atomic_fetch_sub(&cell->readers[p], 1);
    }
    /* While counted in readers[p], the writer will not drop the image we load here. */
    const struct metadata_image *img = metadata_image_ref(atomic_load(&cell->current));
    atomic_fetch_sub(&cell->readers[p], 1);
    return img;
}

/*
 * After the swap, a reader can still hold the old pointer only if it announced itself before
 * the parity flip, i.e. in readers[old]. Readers that announce in readers[new] re-checked the
 * parity after the flip and so load the new pointer. Waiting for readers[old] to drain is
 * therefore enough before releasing the old image.
 */
void image_cell_publish(struct image_cell *cell, const struct metadata_image *img)
{
    const struct metadata_image *old = atomic_exchange(&cell->current, img);
    unsigned p = atomic_load(&cell->parity);
    atomic_store(&cell->parity, p ^ 1u);
    while (atomic_load(&cell->readers[p]) != 0)
        sched_yield();
    metadata_image_release(old);
}

void image_cell_destroy(struct image_cell *cell)
{
    metadata_image_release(atomic_exchange(&cell->current, NULL));
}
