/* listen_address_parse(); what parses must format, and the formatted text
 * must parse again to the same kind and port. */
#include <stdlib.h>

#include "sockherd/address.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > 4096)
                return 0;
        char *s = fuzz_strndup(data, size);
        ListenAddress a, b;

        if (listen_address_parse(s, &a) >= 0) {
                char buf[128];
                const char *f = listen_address_format(&a, buf);
                if (!f)
                        abort();
                if (a.kind != LISTEN_UNIX_ABSTRACT && a.kind != LISTEN_UNIX_PATH) {
                        /* TCP forms parse back to a TCP address with the same port
                         * (":80" formats as "[::]:80", which is LISTEN_TCP) */
                        if (listen_address_parse(f, &b) < 0 ||
                            (b.kind != LISTEN_TCP && b.kind != LISTEN_TCP_ANY) || b.port != a.port)
                                abort();
                }
        }
        free(s);
        return 0;
}
