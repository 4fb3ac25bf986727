/* decode_bench.c — frames/s of one decoder on one real frame, on one core, and (under
 * `valgrind --tool=callgrind`) instructions per frame: run with ITERATIONS=1000 there.
 * usage: decode_bench <protocol> <hex frame> [iterations]. Prints figures; asserts nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../src/proto/proto.h"

static struct report reports[PROTO_MAX_REPORTS];

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: decode_bench <protocol> <hex frame> [iterations]\n");
        return 2;
    }
    const struct proto_ops *p = proto_find(argv[1]);
    size_t hexlen = strlen(argv[2]);
    static uint8_t frame[PROTO_FRAME_MAX];
    if (!p || hexlen % 2 || hexlen / 2 > sizeof frame) {
        fprintf(stderr, "decode_bench: unknown protocol or bad frame\n");
        return 2;
    }
    for (size_t i = 0; i < hexlen / 2; i++) {
        unsigned v;
        if (sscanf(argv[2] + 2 * i, "%2x", &v) != 1)
            return 2;
        frame[i] = (uint8_t)v;
    }
    size_t len = hexlen / 2;
    long iterations = argc > 3 ? strtol(argv[3], NULL, 10) : 2000000;
    struct proto_ctx ctx = {.now = 1767225600};
    struct proto_reply reply;
    size_t n = 0, total = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < iterations; i++) {
        if (p->frame(frame, len) != (ptrdiff_t)len ||
            p->decode(&ctx, frame, len, reports, PROTO_MAX_REPORTS, &n, &reply) != 0) {
            fprintf(stderr, "decode_bench: the frame does not decode\n");
            return 1;
        }
        total += n;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("decode %s: %zu-byte frame, %ld frames in %.3f s: %.0f frames/s, %.0f ns/frame "
           "(frame + decode + reply, one core)\n",
           p->name, len, iterations, s, (double)iterations / s, s * 1e9 / (double)iterations);
    return total ? 0 : 1;
}
