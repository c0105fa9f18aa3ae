/*
 * CRC-32C throughput (not part of make test; run bash bench/crc32c.sh): crc32c_update (folding
 * on AVX-512 CPUs) against the crc32-instruction path alone, in the same run, for the batch
 * sizes produce requests carry. Each size checks the two results are equal first.
 *
 *   crc32c_bench [SECONDS_PER_CASE]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "record/crc32c.h"

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

/* GB/s of fn over `size`-byte inputs (cache-warm) for about `seconds`. */
static double crc_bench_rate(crc_fn fn, const uint8_t *buf, size_t size, double seconds)
{
    volatile uint32_t sink = 0;
    size_t rounds = 0;
    int64_t start = clock_mono_ns(), end = start + (int64_t)(seconds * 1e9), now;
    do {
        for (int i = 0; i < 64; i++)
            sink ^= fn(sink, buf, size);
        rounds += 64;
        now = clock_mono_ns();
    } while (now < end);
    (void)sink;
    return (double)rounds * (double)size / (double)(now - start);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 0.5;
    const size_t sizes[] = {300, 1024, 16384, 1 << 20};
    uint8_t *buf = malloc(1 << 20);
    if (buf == NULL)
        return 1;
    for (size_t i = 0; i < 1 << 20; i++)
        buf[i] = (uint8_t)(i * 2654435761u >> 13);
    printf("%10s %14s %14s %7s\n", "bytes", "update GB/s", "crc32 GB/s", "ratio");
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        if (crc32c_update(7, buf, sizes[i]) != crc32c_update_sse42_only(7, buf, sizes[i])) {
            fprintf(stderr, "crc32c_update and the crc32 path differ at %zu bytes\n", sizes[i]);
            return 1;
        }
        double a = crc_bench_rate(crc32c_update, buf, sizes[i], seconds);
        double b = crc_bench_rate(crc32c_update_sse42_only, buf, sizes[i], seconds);
        printf("%10zu %14.1f %14.1f %7.2f\n", sizes[i], a, b, a / b);
    }
    free(buf);
    return 0;
}
