/* Runs sa_fuzz_rpc_frame over a file of records (uint32 big-endian length,
 * then that many bytes), each copied into a heap block of exactly its size
 * so AddressSanitizer catches a read one byte past the end. Built by
 * tests/test_fuzz_sanitizers.py with -fsanitize=address,undefined; the same
 * entry point serves a libFuzzer harness (LLVMFuzzerTestOneInput below):
 *   clang -std=c99 -D_DEFAULT_SOURCE -DSA_LIBFUZZER -g -O1 \
 *         -fsanitize=fuzzer,address,undefined -Icsrc SOURCES -o fz
 * with SOURCES = every .c file in csrc plus this file; then
 *   ./fz -max_total_time=60 CORPUS_DIR */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    (void)sa_fuzz_rpc_frame(data, len);
    return 0;
}

#ifndef SA_LIBFUZZER
int main(int argc, char **argv)
{
    FILE *f;
    uint8_t hdr[4];
    unsigned long n = 0, ok = 0;

    if (argc != 2 || !(f = fopen(argv[1], "rb"))) {
        fprintf(stderr, "usage: %s RECORDS\n", argv[0]);
        return 2;
    }
    while (fread(hdr, 1, 4, f) == 4) {
        size_t len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
        uint8_t *buf = malloc(len ? len : 1);
        if (!buf || fread(buf, 1, len, f) != len) {
            fprintf(stderr, "bad record %lu\n", n);
            return 2;
        }
        if (sa_fuzz_rpc_frame(buf, len) == 0)
            ok++;
        free(buf);
        n++;
    }
    fclose(f);
    printf("%lu records, %lu passed every check\n", n, ok);
    return 0;
}
#endif
