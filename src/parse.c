/* Value parsers shared by the config file and the command line. Every
 * function here is pure, so the unit tests drive them with plain strings. */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sockherd/parse.h"
#include "sockherd/util.h"

static const struct {
        const char *suffix;
        uint64_t usec;
} duration_units[] = {
        /* longest suffixes first so "ms" wins over "m" and "min" over "m" */
        { "msec", USEC_PER_MSEC },
        { "usec", 1 },
        { "min",  60 * USEC_PER_SEC },
        { "sec",  USEC_PER_SEC },
        { "ms",   USEC_PER_MSEC },
        { "us",   1 },
        { "s",    USEC_PER_SEC },
        { "m",    60 * USEC_PER_SEC },
        { "h",    3600 * USEC_PER_SEC },
};

int parse_duration(const char *s, uint64_t *ret_usec) {
        uint64_t total = 0;
        bool any = false;

        if (!s)
                return -EINVAL;

        for (const char *p = s;;) {
                while (isspace((unsigned char) *p))
                        p++;
                if (*p == '\0')
                        break;
                if (!isdigit((unsigned char) *p) && *p != '.')
                        return -EINVAL;

                char *end;
                errno = 0;
                double value = strtod(p, &end);
                if (errno != 0 || end == p || value < 0)
                        return -EINVAL;
                p = end;
                while (isspace((unsigned char) *p))
                        p++;

                uint64_t unit = USEC_PER_SEC; /* bare numbers are seconds */
                for (size_t i = 0; i < ELEMENTSOF(duration_units); i++) {
                        size_t n = strlen(duration_units[i].suffix);
                        if (strncmp(p, duration_units[i].suffix, n) == 0 &&
                            !isalpha((unsigned char) p[n])) {
                                unit = duration_units[i].usec;
                                p += n;
                                break;
                        }
                }
                if (isalpha((unsigned char) *p))
                        return -EINVAL;

                double usec = value * (double) unit;
                if (usec >= (double) (UINT64_MAX / 2) || total + (uint64_t) usec < total)
                        return -ERANGE;
                total += (uint64_t) (usec + 0.5);
                any = true;
        }

        if (!any)
                return -EINVAL;
        *ret_usec = total;
        return 0;
}

int parse_uint_range(const char *s, unsigned min, unsigned max, unsigned *ret) {
        if (!s || !isdigit((unsigned char) *s))
                return -EINVAL;

        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        if (*end != '\0')
                return -EINVAL;
        if (v < min || v > max)
                return -ERANGE;
        *ret = (unsigned) v;
        return 0;
}

int split_quoted(const char *s, char ***ret_argv) {
        _cleanup_strv_free_ char **argv = NULL;
        size_t n = 0;
        const char *p = s;

        if (!s)
                return -EINVAL;

        for (;;) {
                while (isspace((unsigned char) *p))
                        p++;
                if (*p == '\0')
                        break;

                _cleanup_free_ char *word = malloc(strlen(p) + 1);
                if (!word)
                        return -ENOMEM;
                size_t len = 0;

                while (*p != '\0' && !isspace((unsigned char) *p)) {
                        if (*p == '\'') {
                                const char *close = strchr(p + 1, '\'');
                                if (!close)
                                        return -EINVAL;
                                memcpy(word + len, p + 1, (size_t) (close - p - 1));
                                len += (size_t) (close - p - 1);
                                p = close + 1;
                        } else if (*p == '"') {
                                p++;
                                for (;;) {
                                        if (*p == '\0')
                                                return -EINVAL;
                                        if (*p == '"')
                                                break;
                                        if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
                                                p++;
                                        word[len++] = *p++;
                                }
                                p++;
                        } else if (*p == '\\') {
                                if (p[1] == '\0')
                                        return -EINVAL;
                                word[len++] = p[1];
                                p += 2;
                        } else
                                word[len++] = *p++;
                }
                word[len] = '\0';

                int r = strv_push(&argv, TAKE_PTR(word));
                if (r < 0)
                        return r;
                n++;
        }

        if (n == 0)
                return -EINVAL;
        *ret_argv = TAKE_PTR(argv);
        return 0;
}

int parse_size(const char *s, uint64_t *ret_bytes) {
        static const struct {
                char suffix;
                unsigned shift;
        } units[] = { { 'K', 10 }, { 'M', 20 }, { 'G', 30 }, { 'T', 40 } };
        char *end;

        if (!s || !isdigit((unsigned char) *s))
                return -EINVAL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        unsigned shift = 0;
        if (*end) {
                char u = (char) toupper((unsigned char) *end);
                bool found = false;
                for (size_t i = 0; i < ELEMENTSOF(units); i++)
                        if (units[i].suffix == u) {
                                shift = units[i].shift;
                                found = true;
                        }
                if (!found)
                        return -EINVAL;
                end++;
                if (strcmp(end, "") != 0 && strcasecmp(end, "B") != 0 && strcasecmp(end, "iB") != 0)
                        return -EINVAL;
        }
        if (shift && v > (UINT64_MAX >> shift))
                return -ERANGE;
        *ret_bytes = (uint64_t) v << shift;
        return 0;
}

static const struct {
        const char *name;
        int sig;
} signal_names[] = {
        { "TERM", SIGTERM }, { "INT", SIGINT }, { "QUIT", SIGQUIT },
        { "HUP", SIGHUP },   { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 },
        { "KILL", SIGKILL }, { "WINCH", SIGWINCH },
};

int parse_boolean(const char *s) {
        static const char *const yes[] = { "yes", "true", "on", "1" };
        static const char *const no[] = { "no", "false", "off", "0" };
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(s, yes[i]) == 0)
                        return 1;
                if (strcasecmp(s, no[i]) == 0)
                        return 0;
        }
        return -EINVAL;
}

int parse_signal(const char *s, int *ret_sig) {
        if (!s)
                return -EINVAL;
        if (isdigit((unsigned char) *s)) {
                unsigned v;
                int r = parse_uint_range(s, 1, (unsigned) SIGRTMAX, &v);
                if (r < 0)
                        return -EINVAL;
                *ret_sig = (int) v;
                return 0;
        }
        if (strncasecmp(s, "SIG", 3) == 0)
                s += 3;
        for (size_t i = 0; i < ELEMENTSOF(signal_names); i++)
                if (strcasecmp(s, signal_names[i].name) == 0) {
                        *ret_sig = signal_names[i].sig;
                        return 0;
                }
        return -EINVAL;
}

const char *format_duration(uint64_t usec, char buf[static 32]) {
        if (usec == USEC_INFINITY)
                snprintf(buf, 32, "infinity");
        else if (usec % USEC_PER_SEC == 0)
                snprintf(buf, 32, "%llus", (unsigned long long) (usec / USEC_PER_SEC));
        else if (usec >= USEC_PER_SEC) {
                /* "1.5s", "12345.25s": up to millisecond precision, no exponent */
                int n = snprintf(buf, 32, "%.3f", (double) usec / (double) USEC_PER_SEC);
                while (n > 0 && buf[n - 1] == '0')
                        buf[--n] = '\0';
                if (n > 0 && buf[n - 1] == '.')
                        buf[--n] = '\0';
                snprintf(buf + n, (size_t) (32 - n), "s");
        }
        else if (usec % USEC_PER_MSEC == 0)
                snprintf(buf, 32, "%llums", (unsigned long long) (usec / USEC_PER_MSEC));
        else
                snprintf(buf, 32, "%lluus", (unsigned long long) usec);
        return buf;
}
