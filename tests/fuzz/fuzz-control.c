/* The control protocol: the first byte picks control_request_parse(),
 * control_reply_parse() or an escape/unescape round trip; the rest is the
 * text, in a NUL-terminated heap copy (both parsers write into it). */
#include <stdlib.h>
#include <string.h>

#include "sockherd/control-protocol.h"
#include "fuzz.h"

static void on_pair(const char *key, const char *value, void *userdata) {
        size_t *n = userdata;
        *n += strlen(key) + strlen(value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1 || size > 8192)
                return 0;
        char *s = fuzz_strndup(data + 1, size - 1);

        switch (data[0] % 3) {
        case 0: {
                char *argv[CONTROL_ARGS_MAX + 1];
                int n = control_request_parse(s, argv);
                if (n > CONTROL_ARGS_MAX)
                        abort();
                for (int i = 0; i < n; i++)
                        if (!argv[i])
                                abort();
                break;
        }
        case 1: {
                const char *error = NULL;
                size_t total = 0;
                (void) control_reply_parse(s, &error, on_pair, &total);
                break;
        }
        case 2: {
                /* escape, then unescape: must give the text back */
                size_t len = strlen(s);
                size_t out_size = len * 4 + 1;
                char *out = malloc(out_size);
                if (!out)
                        abort();
                control_escape(s, out, out_size);
                if (strchr(out, '\n'))
                        abort();
                control_unescape(out);
                if (strcmp(out, s) != 0)
                        abort();
                free(out);
                break;
        }
        }
        free(s);
        return 0;
}
