/* The one error convention (see error.h). */
#include <stdarg.h>
#include <stdio.h>

#include "sockherd/error.h"

int error_set(ErrorText *e, int r, const char *fmt, ...) {
        if (e) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(e->message, sizeof(e->message), fmt, ap);
                va_end(ap);
        }
        return r;
}

int error_set_text(ErrorText *e, int r, const char *text) {
        if (e)
                snprintf(e->message, sizeof(e->message), "%s", text);
        return r;
}
