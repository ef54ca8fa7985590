/* The one way to build text: a buffer that grows (or a caller's fixed
 * array), with printf-style and raw-byte appends, a limit on its size so
 * that outside input cannot make it grow without bound, and an error that
 * sticks: append freely, check strbuf_error() (or strbuf_steal()) once at
 * the end, as with systemd's and dbus-broker's string helpers.
 *
 * After the first failure every append does nothing and returns the same
 * error, so the text is always a prefix of what was asked for:
 *   -ENOBUFS  the text reached its limit: it holds what fitted (cut at any
 *             byte, even inside an escape or a UTF-8 sequence);
 *   -ENOMEM   memory ran out: it holds what was there before the append;
 *   -EINVAL   a format the C library refused.
 *
 * data is NUL-terminated whenever it is not NULL; a growable buffer has
 * data NULL until the first append (strbuf_str() gives "" then). A zeroed
 * StrBuf is an empty growable buffer without a limit. A fixed buffer never
 * allocates: safe in a child between fork and exec. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "sockherd/util.h"

typedef struct StrBuf {
        char *data;
        size_t size;            /* bytes of text, without the NUL */
        size_t allocated;       /* bytes data holds, the NUL included */
        size_t max;             /* the most bytes of text; 0: no limit but memory */
        int error;              /* 0, or the first failure (see above) */
        bool fixed;             /* data is the caller's array: never grown or freed */
} StrBuf;

#define STRBUF_UNLIMITED ((size_t) 0)

void strbuf_init(StrBuf *b, size_t max);
/* Text in the caller's array of size bytes (at least 1): at most size - 1
 * bytes of text, always NUL-terminated, even if nothing is appended. */
void strbuf_init_fixed(StrBuf *b, char *array, size_t size);
/* Frees a growable buffer's text (a fixed one's is cleared), and empties
 * b with its error, keeping its limit; accepts an emptied b. */
void strbuf_done(StrBuf *b);

/* Each returns b->error after the append: 0 or negative errno. */
int strbuf_append(StrBuf *b, const void *bytes, size_t n);
int strbuf_puts(StrBuf *b, const char *s);
_printf_(2, 3) int strbuf_printf(StrBuf *b, const char *fmt, ...);
_printf_(2, 0) int strbuf_vprintf(StrBuf *b, const char *fmt, va_list ap);

/* For filling from read(2) and the like: room for at least n bytes after
 * the text (the NUL's byte not counted), or NULL with b->error set
 * (-ENOBUFS when even one more byte would pass the limit; fewer than n
 * bytes of room when the limit is near: *ret_room says how many). Then
 * strbuf_commit(b, k) with the k bytes actually written there. */
char *strbuf_reserve(StrBuf *b, size_t n, size_t *ret_room);
void strbuf_commit(StrBuf *b, size_t k);

static inline int strbuf_error(const StrBuf *b) {
        return b->error;
}

/* The text so far, "" when there is none. */
static inline const char *strbuf_str(const StrBuf *b) {
        return b->data ? b->data : "";
}

/* Hands the text over to *ret (freed by the caller; "" when nothing was
 * appended) and empties b; ret_size may be NULL. A growable buffer only.
 * On a sticky error, returns it, frees the text and leaves *ret alone. */
int strbuf_steal(StrBuf *b, char **ret, size_t *ret_size);

static inline void strbuf_donep(StrBuf *b) {
        strbuf_done(b);
}
#define _cleanup_strbuf_ _cleanup_(strbuf_donep)
