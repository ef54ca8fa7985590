/* The INI config: config_load_string(), then config_validate() with a
 * command that exists, and config_reload_blocker() against itself. */
#include <stdlib.h>

#include "sockherd/config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > 16384)
                return 0;
        char *text = fuzz_strndup(data, size);
        Config *c = config_new();
        if (!c)
                abort();
        ErrorText err;

        if (config_load_string(c, "fuzz.conf", text, &err) >= 0) {
                if (!c->command)
                        (void) config_set(c, "command", "/bin/true", "fuzz", &err);
                if (config_validate(c, 4, &err) >= 0)
                        (void) config_reload_blocker(c, c, false);
        }
        config_free(c);
        free(text);
        return 0;
}
