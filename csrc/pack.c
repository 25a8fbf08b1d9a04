#include "pack.h"

#include <string.h>

#include "sa_status.h"

void sa_reader_init(sa_reader *r, const uint8_t *data, size_t len)
{
    r->data = data;
    r->len = data ? len : 0;
    r->off = 0;
}

static size_t remaining(const sa_reader *r)
{
    return r->len - r->off;
}

int sa_unpack16(sa_reader *r, uint16_t *v)
{
    const uint8_t *p;

    if (remaining(r) < 2)
        return SA_E_PACK_SHORT;
    p = r->data + r->off;
    *v = (uint16_t)((unsigned)p[0] << 8 | p[1]);
    r->off += 2;
    return SA_OK;
}

int sa_unpack32(sa_reader *r, uint32_t *v)
{
    const uint8_t *p;

    if (remaining(r) < 4)
        return SA_E_PACK_SHORT;
    p = r->data + r->off;
    *v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    r->off += 4;
    return SA_OK;
}

int sa_unpack64(sa_reader *r, uint64_t *v)
{
    uint32_t hi, lo;

    if (remaining(r) < 8)
        return SA_E_PACK_SHORT;
    sa_unpack32(r, &hi);
    sa_unpack32(r, &lo);
    *v = (uint64_t)hi << 32 | lo;
    return SA_OK;
}

int sa_unpackmem_view(sa_reader *r, size_t *off, size_t *len)
{
    uint32_t n;
    size_t start = r->off;
    int rc = sa_unpack32(r, &n);

    if (rc != SA_OK)
        return rc;
    /* The limit first, as Slurm does, then the bytes actually present. */
    if (n > SA_PACK_MAX_MEM || n > remaining(r)) {
        r->off = start;
        return n > SA_PACK_MAX_MEM ? SA_E_PACK_MEM_LIMIT : SA_E_PACK_SHORT;
    }
    *off = r->off;
    *len = n;
    r->off += n;
    return SA_OK;
}

int sa_unpackstr_view(sa_reader *r, size_t *off, size_t *wire_len)
{
    size_t start = r->off, o, n;
    int rc = sa_unpackmem_view(r, &o, &n);

    if (rc != SA_OK)
        return rc;
    if (n) {
        rc = r->data[o + n - 1] != 0 ? SA_E_PACK_STR_NUL
           : memchr(r->data + o, 0, n - 1) ? SA_E_PACK_STR_EMBEDDED : SA_OK;
        if (rc != SA_OK) {
            r->off = start;
            return rc;
        }
    }
    *off = o;
    *wire_len = n;
    return SA_OK;
}

void sa_writer_init(sa_writer *w, uint8_t *data, size_t cap)
{
    w->data = data;
    w->cap = data ? cap : 0;
    w->off = 0;
}

/* Reserve n bytes; returns where to write them, or NULL when measuring or full
 * (*rc says which). */
static uint8_t *reserve(sa_writer *w, size_t n, int *rc)
{
    uint8_t *p;

    *rc = SA_OK;
    if (!w->data) {
        w->off += n;
        return NULL;
    }
    if (w->cap - w->off < n) {
        *rc = SA_E_PACK_FULL;
        return NULL;
    }
    p = w->data + w->off;
    w->off += n;
    return p;
}

int sa_pack16(sa_writer *w, uint16_t v)
{
    int rc;
    uint8_t *p = reserve(w, 2, &rc);

    if (p) {
        p[0] = (uint8_t)(v >> 8);
        p[1] = (uint8_t)v;
    }
    return rc;
}

int sa_pack32(sa_writer *w, uint32_t v)
{
    int rc;
    uint8_t *p = reserve(w, 4, &rc);

    if (p) {
        p[0] = (uint8_t)(v >> 24);
        p[1] = (uint8_t)(v >> 16);
        p[2] = (uint8_t)(v >> 8);
        p[3] = (uint8_t)v;
    }
    return rc;
}

int sa_pack64(sa_writer *w, uint64_t v)
{
    int rc;

    if (w->data && w->cap - w->off < 8)
        return SA_E_PACK_FULL;
    rc = sa_pack32(w, (uint32_t)(v >> 32));
    return rc != SA_OK ? rc : sa_pack32(w, (uint32_t)v);
}

int sa_packmem(sa_writer *w, const uint8_t *p, size_t len)
{
    int rc;
    uint8_t *dst;

    if (len > SA_PACK_MAX_MEM)
        return SA_E_PACK_MEM_LIMIT;
    if (!p && len)
        return SA_E_ARG;
    if (w->data && w->cap - w->off < 4 + len)
        return SA_E_PACK_FULL;
    rc = sa_pack32(w, (uint32_t)len);
    if (rc != SA_OK)
        return rc;
    dst = reserve(w, len, &rc);
    if (dst && len)
        memcpy(dst, p, len);
    return rc;
}

int sa_packstr(sa_writer *w, const uint8_t *s, size_t len)
{
    int rc;
    uint8_t *dst;

    if (!s)
        return sa_pack32(w, 0);
    if (len >= SA_PACK_MAX_MEM)
        return SA_E_PACK_MEM_LIMIT;
    if (memchr(s, 0, len))
        return SA_E_PACK_STR_EMBEDDED;
    if (w->data && w->cap - w->off < 4 + len + 1)
        return SA_E_PACK_FULL;
    rc = sa_pack32(w, (uint32_t)(len + 1));
    if (rc != SA_OK)
        return rc;
    dst = reserve(w, len + 1, &rc);
    if (dst) {
        if (len)
            memcpy(dst, s, len);
        dst[len] = 0;
    }
    return rc;
}
