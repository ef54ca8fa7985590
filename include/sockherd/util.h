/* Small helpers shared by every module: cleanup attributes, ownership
 * transfer, and a few size and time constants. Nothing here allocates or
 * logs. */
#pragma once

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define USEC_PER_SEC  UINT64_C(1000000)
#define USEC_PER_MSEC UINT64_C(1000)
#define USEC_INFINITY UINT64_MAX

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

static inline void freep(void *p) {
        free(*(void **) p);
}

static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}

static inline void strv_free(char **v) {
        if (!v)
                return;
        for (char **i = v; *i; i++)
                free(*i);
        free(v);
}

static inline void strv_freep(char ***v) {
        strv_free(*v);
}

static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_strv_free_ _cleanup_(strv_freep)
#define _cleanup_fclose_ _cleanup_(fclosep)
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))

/* Hand ownership on: returns the value and leaves the variable empty, so
 * the cleanup attribute does nothing. */
#define TAKE_FD(fd) ({ int _fd_ = (fd); (fd) = -1; _fd_; })
#define TAKE_PTR(p) ({ __typeof__(p) _p_ = (p); (p) = NULL; _p_; })

/* The one growable array: append a value (the rest of the arguments, so a
 * compound literal may hold commas) to array, which holds n elements;
 * grows it by one. 0, or -ENOMEM with array and n unchanged. array and n
 * are evaluated more than once: plain lvalues only. */
#define ARRAY_APPEND(array, n, ...) ({                                                  \
        __typeof__(array) _grown_ = (n) < SIZE_MAX / sizeof(*(array)) ?                 \
                realloc((array), ((n) + 1) * sizeof(*(array))) : NULL;                  \
        if (_grown_) {                                                                  \
                (array) = _grown_;                                                      \
                (array)[(n)++] = (__VA_ARGS__);                                         \
        }                                                                               \
        _grown_ ? 0 : -ENOMEM;                                                          \
})

static inline int safe_close(int fd) {
        if (fd >= 0)
                closep(&fd);
        return -1;
}

static inline size_t strv_length(char *const *v) {
        size_t n = 0;
        while (v && v[n])
                n++;
        return n;
}

/* Append word to the NULL-terminated list *v, taking it over (freed when
 * the list cannot grow: -ENOMEM). */
static inline int strv_push(char ***v, char *word) {
        size_t n = strv_length(*v);
        char **nv = word ? realloc(*v, (n + 2) * sizeof(char *)) : NULL;
        if (!nv) {
                free(word);
                return -ENOMEM;
        }
        nv[n] = word;
        nv[n + 1] = NULL;
        *v = nv;
        return 0;
}

/* Append a copy of s. */
static inline int strv_extend(char ***v, const char *s) {
        return strv_push(v, strdup(s));
}

static inline unsigned online_cpus(void) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 ? (unsigned) n : 1;
}
