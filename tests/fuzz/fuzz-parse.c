/* The value parsers of parse.h. The first byte picks the parser, the rest
 * is the text. */
#include <stdlib.h>

#include "sockherd/parse.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1 || size > 4096)
                return 0;
        char *s = fuzz_strndup(data + 1, size - 1);
        uint64_t u64;
        unsigned u;
        int sig;
        char **argv = NULL;
        char buf[32];

        switch (data[0] % 5) {
        case 0:
                if (parse_duration(s, &u64) >= 0)
                        (void) format_duration(u64, buf);
                break;
        case 1:
                (void) parse_size(s, &u64);
                break;
        case 2:
                (void) parse_signal(s, &sig);
                break;
        case 3:
                if (split_quoted(s, &argv) >= 0) {
                        if (!argv || !argv[0])
                                abort(); /* documented: empty command is -EINVAL */
                        for (char **a = argv; *a; a++)
                                free(*a);
                        free(argv);
                }
                break;
        case 4:
                (void) parse_uint_range(s, 1, 1024, &u);
                break;
        }
        /* every parser also sees the whole input as text */
        (void) parse_duration(s, &u64);
        free(s);
        return 0;
}
