/* Prometheus text format building (see exposition.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sockherd/exposition.h"

void expo_init(Exposition *e) {
        *e = (Exposition) {};
}

void expo_done(Exposition *e) {
        free(e->data);
        *e = (Exposition) {};
}

static void expo_append(Exposition *e, const char *s, size_t n) {
        if (e->oom)
                return;
        if (e->size + n + 1 > e->allocated) {
                size_t want = e->allocated ? e->allocated : 4096;
                while (want < e->size + n + 1)
                        want *= 2;
                char *nd = realloc(e->data, want);
                if (!nd) {
                        e->oom = true;
                        return;
                }
                e->data = nd;
                e->allocated = want;
        }
        memcpy(e->data + e->size, s, n);
        e->size += n;
        e->data[e->size] = '\0';
}

static void expo_puts(Exposition *e, const char *s) {
        expo_append(e, s, strlen(s));
}

_printf_(2, 0)
static void expo_vprintf(Exposition *e, const char *fmt, va_list ap) {
        char *s = NULL;
        int n = vasprintf(&s, fmt, ap);
        if (n < 0) {
                e->oom = true;
                return;
        }
        expo_append(e, s, (size_t) n);
        free(s);
}

void expo_escape_label(const char *in, char *out, size_t out_size) {
        size_t o = 0;

        if (out_size == 0)
                return;
        for (const char *p = in; *p; p++) {
                const char *esc = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;
                size_t need = esc ? 2 : 1;
                if (o + need >= out_size)
                        break;
                if (esc) {
                        memcpy(out + o, esc, 2);
                        o += 2;
                } else
                        out[o++] = *p;
        }
        out[o] = '\0';
}

void expo_family(Exposition *e, const char *name, const char *type, const char *help) {
        expo_puts(e, "# HELP ");
        expo_puts(e, name);
        expo_puts(e, " ");
        /* in HELP text only backslash and newline are escaped */
        for (const char *p = help; *p; p++)
                expo_puts(e, *p == '\\' ? "\\\\" : *p == '\n' ? "\\n" : (char[2]) { *p, 0 });
        expo_puts(e, "\n# TYPE ");
        expo_puts(e, name);
        expo_puts(e, " ");
        expo_puts(e, type);
        expo_puts(e, "\n");
}

void expo_sample(Exposition *e, const char *name, const char *const *labels, const char *value_fmt, ...) {
        va_list ap;

        expo_puts(e, name);
        if (labels && labels[0]) {
                expo_puts(e, "{");
                for (size_t i = 0; labels[i] && labels[i + 1]; i += 2) {
                        size_t n = strlen(labels[i + 1]);
                        char *v = malloc(2 * n + 1);
                        if (!v) {
                                e->oom = true;
                                return;
                        }
                        expo_escape_label(labels[i + 1], v, 2 * n + 1);
                        expo_puts(e, i ? "," : "");
                        expo_puts(e, labels[i]);
                        expo_puts(e, "=\"");
                        expo_puts(e, v);
                        expo_puts(e, "\"");
                        free(v);
                }
                expo_puts(e, "}");
        }
        expo_puts(e, " ");
        va_start(ap, value_fmt);
        expo_vprintf(e, value_fmt, ap);
        va_end(ap);
        expo_puts(e, "\n");
}
