/* notify_message_parse() on a datagram payload of exactly `size` bytes, in
 * its own allocation (no terminator), as notify_receive() hands it over. */
#include <stdlib.h>
#include <string.h>

#include "sockherd/notify.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > NOTIFY_MESSAGE_MAX * 2)
                return 0;
        char *buf = malloc(size ? size : 1);
        if (!buf)
                abort();
        if (size)
                memcpy(buf, data, size);
        NotifyMessage m;
        if (notify_message_parse(buf, size, &m) >= 0) {
                if (m.has_status && strnlen(m.status, sizeof m.status) >= sizeof m.status)
                        abort(); /* status must stay terminated */
        }
        free(buf);
        return 0;
}
