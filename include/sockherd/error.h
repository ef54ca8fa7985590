/* The one error convention. A function that can fail returns a negative
 * errno (or, where documented, a positive code: the exit statuses of
 * exit-status.h at the top layer). When the caller needs to say *why* in
 * words (a config file's line, a refused request), the function also fills
 * an ErrorText the caller passes in (or NULL when it does not care): one
 * sentence, for the top layer to log or answer with. Lower layers never log. */
#pragma once

#include "sockherd/util.h"

#define ERROR_TEXT_MAX 512

typedef struct ErrorText {
        char message[ERROR_TEXT_MAX];
} ErrorText;

/* Formats e's message (when e is given) and returns r, so that
 * `return error_set(e, -EINVAL, "...", ...);` reads as one step. */
_printf_(3, 4)
int error_set(ErrorText *e, int r, const char *fmt, ...);
/* The same with a fixed text (no formatting). */
int error_set_text(ErrorText *e, int r, const char *text);
