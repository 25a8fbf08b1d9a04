/* libFuzzer: Slurm's pack primitives. The input is a program: each byte
 * picks an unpack (16/32/64-bit integer, packmem, packstr) applied to the
 * rest of the input. Invariants: the reader never moves past the end; a
 * failing unpack leaves the offset where it was; every view lies inside the
 * buffer; a packstr view ends in NUL; and whatever was unpacked packs back
 * (into an exact-size writer, which refuses one byte less) to exactly the
 * bytes it came from. */
#include "fuzz_common.h"
#include "pack.h"
#include "sa_status.h"

#define MAX_OPS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t nops = size ? (size_t)(data[0] % MAX_OPS) : 0, i;
    const uint8_t *ops = data + (size ? 1 : 0);
    size_t n, start;
    uint8_t *buf, *out;
    sa_reader r;
    sa_writer w, w_short;

    if (size < 1 + nops)
        return 0;
    n = size - 1 - nops;
    buf = fuzz_dup(data + 1 + nops, n);
    out = malloc(n ? n : 1);
    FUZZ_ASSERT(out != NULL);
    sa_reader_init(&r, buf, n);
    sa_writer_init(&w, out, n);
    for (i = 0; i < nops; i++) {
        size_t before = r.off, off = 0, len = 0;
        uint16_t v16 = 0;
        uint32_t v32 = 0;
        uint64_t v64 = 0;
        int rc;

        start = r.off;
        switch (ops[i] % 5) {
        case 0:
            rc = sa_unpack16(&r, &v16);
            if (rc == SA_OK)
                FUZZ_ASSERT(sa_pack16(&w, v16) == SA_OK);
            break;
        case 1:
            rc = sa_unpack32(&r, &v32);
            if (rc == SA_OK)
                FUZZ_ASSERT(sa_pack32(&w, v32) == SA_OK);
            break;
        case 2:
            rc = sa_unpack64(&r, &v64);
            if (rc == SA_OK)
                FUZZ_ASSERT(sa_pack64(&w, v64) == SA_OK);
            break;
        case 3:
            rc = sa_unpackmem_view(&r, &off, &len);
            if (rc == SA_OK) {
                FUZZ_ASSERT(off <= n && len <= n - off && len <= SA_PACK_MAX_MEM);
                FUZZ_ASSERT(sa_packmem(&w, len ? buf + off : NULL, len) == SA_OK);
            }
            break;
        default:
            rc = sa_unpackstr_view(&r, &off, &len);
            if (rc == SA_OK) {
                FUZZ_ASSERT(off <= n && len <= n - off);
                if (len) {
                    FUZZ_ASSERT(buf[off + len - 1] == 0);
                    FUZZ_ASSERT(memchr(buf + off, 0, len - 1) == NULL);
                }
                FUZZ_ASSERT(sa_packstr(&w, len ? buf + off : NULL, len ? len - 1 : 0) == SA_OK);
            }
            break;
        }
        FUZZ_ASSERT(r.off <= n);
        if (rc != SA_OK) {
            FUZZ_ASSERT(r.off == before);
            FUZZ_ASSERT(rc == SA_E_PACK_SHORT || rc == SA_E_PACK_MEM_LIMIT || rc == SA_E_PACK_STR_NUL ||
                        rc == SA_E_PACK_STR_EMBEDDED);
            break;
        }
        /* the writer reproduced exactly the bytes the reader consumed */
        FUZZ_ASSERT(w.off == r.off && memcmp(out + start, buf + start, r.off - start) == 0);
    }
    /* a writer one byte short refuses instead of overflowing */
    if (r.off > 0) {
        uint8_t *small = malloc(r.off - 1 ? r.off - 1 : 1);
        FUZZ_ASSERT(small != NULL);
        sa_writer_init(&w_short, small, r.off - 1);
        FUZZ_ASSERT(sa_packmem(&w_short, buf, r.off) == SA_E_PACK_FULL);
        free(small);
    }
    free(out);
    free(buf);
    return 0;
}
