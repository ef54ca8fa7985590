/* A test that cannot run here: cmocka's skip(), except under
 * SOCKHERD_TEST_STRICT=1 (set by .ci/run), where a skip would go unseen
 * (the binary still exits 0), so it fails with the reason instead. Include
 * after <cmocka.h>. */
#pragma once

#include <stdlib.h>
#include <string.h>

#define skip_or_fail(reason)                                                                            \
        do {                                                                                            \
                const char *strict_ = getenv("SOCKHERD_TEST_STRICT");                                   \
                if (strict_ && strcmp(strict_, "1") == 0)                                               \
                        fail_msg("would skip (%s), and SOCKHERD_TEST_STRICT=1 forbids skipping", reason); \
                skip();                                                                                 \
        } while (0)
