/* Slurm's buffer format (src/common/pack.c semantics, our code): big-endian
 * integers, packmem = uint32 length + bytes (0 = NULL, at most 1 GiB),
 * packstr = packmem of the string including its NUL. Readers and writers
 * are bounds-checked cursors over caller-owned memory: unpacking never
 * copies (it returns offsets into the input) and never allocates. */
#ifndef SA_PACK_H
#define SA_PACK_H

#include <stddef.h>
#include <stdint.h>

/* cffi:begin */
#define SA_PACK_MAX_MEM 1073741824   /* Slurm's MAX_PACK_MEM_LEN: 1 GiB */

/* Status codes 60-64 (wire range 60-99): the pack primitives. */
#define SA_E_PACK_SHORT       60   /* buffer ends before the field does */
#define SA_E_PACK_MEM_LIMIT   61   /* packmem/packstr length above 1 GiB */
#define SA_E_PACK_STR_NUL     62   /* packstr whose last byte is not NUL */
#define SA_E_PACK_STR_EMBEDDED 63  /* packstr with a NUL before its end */
#define SA_E_PACK_FULL        64   /* writer capacity exhausted */

typedef struct {
    const uint8_t *data;
    size_t len;
    size_t off;          /* next byte to read; never > len */
} sa_reader;

typedef struct {
    uint8_t *data;       /* NULL: measure only (off counts the bytes) */
    size_t cap;
    size_t off;
} sa_writer;

void sa_reader_init(sa_reader *r, const uint8_t *data, size_t len);
int sa_unpack16(sa_reader *r, uint16_t *v);
int sa_unpack32(sa_reader *r, uint32_t *v);
int sa_unpack64(sa_reader *r, uint64_t *v);
/* Zero-copy packmem: the bytes are data[*off .. *off + *len); *len 0 = NULL. */
int sa_unpackmem_view(sa_reader *r, size_t *off, size_t *len);
/* Zero-copy packstr: *wire_len is the packed length (0 = NULL string, else
 * the string is data[*off .. *off + *wire_len - 1) and its NUL follows). */
int sa_unpackstr_view(sa_reader *r, size_t *off, size_t *wire_len);

void sa_writer_init(sa_writer *w, uint8_t *data, size_t cap);
int sa_pack16(sa_writer *w, uint16_t v);
int sa_pack32(sa_writer *w, uint32_t v);
int sa_pack64(sa_writer *w, uint64_t v);
/* packmem(p[0..len)); len 0 packs NULL. */
int sa_packmem(sa_writer *w, const uint8_t *p, size_t len);
/* packstr: s == NULL packs a NULL string, else s[0..len) plus a NUL
 * (s must not contain NUL: SA_E_PACK_STR_EMBEDDED). */
int sa_packstr(sa_writer *w, const uint8_t *s, size_t len);
/* cffi:end */

#endif
