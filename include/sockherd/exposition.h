/* The Prometheus text exposition format (version 0.0.4), as read by
 * Prometheus and node_exporter's textfile collector: a growable text
 * buffer with "# HELP", "# TYPE" and sample lines. Pure text building. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "sockherd/strbuf.h"
#include "sockherd/util.h"

typedef struct Exposition {
        StrBuf text;            /* its error sticks: an append failed, the text is incomplete */
} Exposition;

void expo_init(Exposition *e);
void expo_done(Exposition *e);

/* The HELP and TYPE lines of a metric family; call before its samples.
 * type: "counter", "gauge", "untyped". */
void expo_family(Exposition *e, const char *name, const char *type, const char *help);

/* One sample: name{k="v",...} VALUE. labels is NULL or a NULL-terminated
 * list of alternating label names and values; values are escaped. */
_printf_(4, 5)
void expo_sample(Exposition *e, const char *name, const char *const *labels, const char *value_fmt, ...);

/* A label value escaped: backslash as \\, double quote as \", newline as \n.
 * Truncated to fit out_size. */
void expo_escape_label(const char *in, char *out, size_t out_size);
