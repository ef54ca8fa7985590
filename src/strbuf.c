/* Text building with a limit and a sticky error (see strbuf.h). Pure: no
 * logging; the only allocation is the growable buffer's own. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sockherd/strbuf.h"

#define STRBUF_INITIAL 256
/* "no limit" still keeps every size sum far from overflowing */
#define STRBUF_CEILING (SIZE_MAX / 4)

void strbuf_init(StrBuf *b, size_t max) {
        *b = (StrBuf) { .max = max };
}

void strbuf_init_fixed(StrBuf *b, char *array, size_t size) {
        *b = (StrBuf) { .data = array, .allocated = size, .fixed = true };
        array[0] = '\0';
}

void strbuf_done(StrBuf *b) {
        if (b->fixed) {
                b->data[0] = '\0';
                b->size = 0;
        } else {
                free(b->data);
                *b = (StrBuf) { .max = b->max };
        }
        b->error = 0;
}

static int strbuf_fail(StrBuf *b, int error) {
        if (b->error == 0)
                b->error = error;
        return b->error;
}

static size_t strbuf_limit(const StrBuf *b) {
        if (b->fixed)
                return b->allocated - 1;
        return b->max != STRBUF_UNLIMITED && b->max < STRBUF_CEILING ? b->max : STRBUF_CEILING;
}

/* Grows b so that n more bytes and the NUL fit, or as many as the limit
 * lets; returns how many of the n fit. On -ENOMEM, 0 with b->error set. */
static size_t strbuf_make_room(StrBuf *b, size_t n) {
        size_t limit = strbuf_limit(b);
        size_t fit = n < limit - b->size ? n : limit - b->size;
        size_t need = b->size + fit + 1;

        if (need <= b->allocated)
                return fit;
        size_t allocated = b->allocated ? b->allocated : STRBUF_INITIAL;
        while (allocated < need)
                allocated *= 2;
        if (allocated > limit + 1)
                allocated = limit + 1;
        char *grown = realloc(b->data, allocated);
        if (!grown) {
                strbuf_fail(b, -ENOMEM);
                return 0;
        }
        if (!b->data)
                grown[0] = '\0';
        b->data = grown;
        b->allocated = allocated;
        return fit;
}

int strbuf_append(StrBuf *b, const void *bytes, size_t n) {
        if (b->error)
                return b->error;
        size_t fit = strbuf_make_room(b, n);
        if (b->error)
                return b->error;
        if (fit > 0)
                memcpy(b->data + b->size, bytes, fit);
        b->size += fit;
        b->data[b->size] = '\0';
        return fit < n ? strbuf_fail(b, -ENOBUFS) : 0;
}

int strbuf_puts(StrBuf *b, const char *s) {
        return strbuf_append(b, s, strlen(s));
}

int strbuf_vprintf(StrBuf *b, const char *fmt, va_list ap) {
        va_list again;

        if (b->error)
                return b->error;
        /* first into the room there is; most appends end here */
        size_t room = b->data ? b->allocated - b->size : 0;
        va_copy(again, ap);
        int n = vsnprintf(b->data ? b->data + b->size : NULL, room, fmt, again);
        va_end(again);
        if (n >= 0 && (size_t) n < room) {
                b->size += (size_t) n;
                return 0;
        }
        if (b->data)
                b->data[b->size] = '\0';        /* drop what the first try cut */
        if (n < 0)
                return strbuf_fail(b, -EINVAL);
        size_t fit = strbuf_make_room(b, (size_t) n);
        if (b->error)
                return b->error;
        vsnprintf(b->data + b->size, fit + 1, fmt, ap);
        b->size += fit;
        return fit < (size_t) n ? strbuf_fail(b, -ENOBUFS) : 0;
}

int strbuf_printf(StrBuf *b, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = strbuf_vprintf(b, fmt, ap);
        va_end(ap);
        return r;
}

char *strbuf_reserve(StrBuf *b, size_t n, size_t *ret_room) {
        if (b->error)
                return NULL;
        size_t fit = strbuf_make_room(b, n);
        if (b->error)
                return NULL;
        if (fit == 0 && n > 0) {
                strbuf_fail(b, -ENOBUFS);
                return NULL;
        }
        *ret_room = fit;
        return b->data + b->size;
}

void strbuf_commit(StrBuf *b, size_t k) {
        /* k is at most the room strbuf_reserve() gave */
        b->size += k;
        b->data[b->size] = '\0';
}

int strbuf_steal(StrBuf *b, char **ret, size_t *ret_size) {
        int r = b->error;

        if (r < 0 || b->fixed) {
                strbuf_done(b);
                return r < 0 ? r : -EINVAL;
        }
        char *text = b->data ? b->data : strdup("");
        if (!text)
                return -ENOMEM;
        if (ret_size)
                *ret_size = b->size;
        *ret = text;
        *b = (StrBuf) { .max = b->max };
        return 0;
}
