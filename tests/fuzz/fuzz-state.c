/* state_read() through fmemopen(); a state that reads must write, and what
 * was written must read again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sockherd/state.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size == 0 || size > 65536)
                return 0;
        char *copy = malloc(size);
        if (!copy)
                abort();
        memcpy(copy, data, size);
        FILE *f = fmemopen(copy, size, "r");
        if (!f)
                abort();
        State st = {};
        ErrorText err;
        int r = state_read(f, &st, &err);
        fclose(f);
        if (r >= 0) {
                char *out = NULL;
                size_t out_size = 0;
                FILE *w = open_memstream(&out, &out_size);
                if (!w)
                        abort();
                if (state_write(&st, w) < 0)
                        abort();
                fclose(w);
                FILE *f2 = fmemopen(out, out_size, "r");
                State again = {};
                if (!f2)
                        abort();
                if (state_read(f2, &again, &err) < 0) {
                        fprintf(stderr, "state written does not read back: %s\n", err.message);
                        abort();
                }
                fclose(f2);
                state_done(&again);
                free(out);
        }
        state_done(&st);
        free(copy);
        return 0;
}
