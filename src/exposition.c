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
        strbuf_done(&e->text);
        *e = (Exposition) {};
}

/* How a label value writes c: its escape, or NULL for c itself. In HELP
 * text (quotes == false) a double quote is not escaped. */
static const char *escape_char(char c, bool quotes) {
        return c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '"' && quotes ? "\\\"" : NULL;
}

static void expo_put_escaped(Exposition *e, const char *s, bool quotes) {
        for (const char *p = s; *p; p++) {
                const char *esc = escape_char(*p, quotes);
                if (esc)
                        strbuf_puts(&e->text, esc);
                else
                        strbuf_append(&e->text, p, 1);
        }
}

void expo_escape_label(const char *in, char *out, size_t out_size) {
        size_t o = 0;

        if (out_size == 0)
                return;
        for (const char *p = in; *p; p++) {
                const char *esc = escape_char(*p, true);
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
        strbuf_printf(&e->text, "# HELP %s ", name);
        /* in HELP text only backslash and newline are escaped */
        expo_put_escaped(e, help, false);
        strbuf_printf(&e->text, "\n# TYPE %s %s\n", name, type);
}

void expo_sample(Exposition *e, const char *name, const char *const *labels, const char *value_fmt, ...) {
        va_list ap;

        strbuf_puts(&e->text, name);
        if (labels && labels[0]) {
                strbuf_puts(&e->text, "{");
                for (size_t i = 0; labels[i] && labels[i + 1]; i += 2) {
                        strbuf_printf(&e->text, "%s%s=\"", i ? "," : "", labels[i]);
                        expo_put_escaped(e, labels[i + 1], true);
                        strbuf_puts(&e->text, "\"");
                }
                strbuf_puts(&e->text, "}");
        }
        strbuf_puts(&e->text, " ");
        va_start(ap, value_fmt);
        strbuf_vprintf(&e->text, value_fmt, ap);
        va_end(ap);
        strbuf_puts(&e->text, "\n");
}
