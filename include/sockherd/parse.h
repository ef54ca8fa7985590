/* Parsers for the small value types that appear in the config file and on
 * the command line: durations, counts, quoted command lines, signal names.
 * Pure functions: no logging, no global state; errors are negative errno. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* "1.5s", "500ms", "2min", "1h 30min", "250" (seconds). Units: us, ms, s,
 * sec, m, min, h. -EINVAL on a malformed value, -ERANGE on overflow. */
int parse_duration(const char *s, uint64_t *ret_usec);

/* Decimal unsigned in [min, max]; -EINVAL or -ERANGE. */
int parse_uint_range(const char *s, unsigned min, unsigned max, unsigned *ret);

/* Split a command line into words. Single quotes keep everything literal,
 * double quotes honour \" and \\, a backslash outside quotes escapes the
 * next character. No variable or glob expansion. -EINVAL on an unterminated
 * quote or an empty command. The result is a NULL-terminated vector. */
int split_quoted(const char *s, char ***ret_argv);

/* "512M", "2G", "1048576", "64KiB": bytes, base 1024. */
int parse_size(const char *s, uint64_t *ret_bytes);

/* yes/true/on/1 -> 1, no/false/off/0 -> 0 (any case), else -EINVAL. */
int parse_boolean(const char *s);

/* "TERM", "SIGTERM", "15" -> signal number. */
int parse_signal(const char *s, int *ret_sig);

/* Format a duration for humans ("1.5s", "200ms"); buf needs 32 bytes. */
const char *format_duration(uint64_t usec, char buf[static 32]);
