/* Encoding and decoding of the control protocol (see control-protocol.h).
 * Pure: both the manager and sockherdctl link it, and the unit tests and
 * fuzzers drive it with plain strings. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sockherd/control-protocol.h"
#include "sockherd/util.h"

int control_request_parse(char *line, char *ret_argv[static CONTROL_ARGS_MAX + 1]) {
        size_t n = 0;
        char *save = NULL;

        if (strlen(line) > CONTROL_REQUEST_MAX)
                return -EBADMSG;
        for (const char *p = line; *p; p++)
                if ((unsigned char) *p < 0x20 || (unsigned char) *p >= 0x7f)
                        return -EBADMSG;

        char *word = strtok_r(line, " ", &save);
        if (!word)
                return -EBADMSG;
        if (strcmp(word, CONTROL_PROTOCOL) != 0)
                return strncmp(word, "sockherd-control/", 17) == 0 ? -EPROTO : -EBADMSG;
        while ((word = strtok_r(NULL, " ", &save))) {
                if (n >= CONTROL_ARGS_MAX)
                        return -EBADMSG;
                ret_argv[n++] = word;
        }
        if (n == 0)
                return -EBADMSG;
        ret_argv[n] = NULL;
        return (int) n;
}

void control_reply_init(ControlReply *r, const char *error) {
        char escaped[400];

        *r = (ControlReply) {};
        if (error) {
                control_escape(error, escaped, sizeof(escaped));
                strbuf_printf(&r->text, "%s error %s\n", CONTROL_PROTOCOL, escaped);
        } else
                strbuf_puts(&r->text, CONTROL_PROTOCOL " ok\n");
}

void control_reply_add(ControlReply *r, const char *key, const char *fmt, ...) {
        char value[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(value, sizeof(value), fmt, ap);
        va_end(ap);
        control_reply_add_text(r, key, value);
}

void control_reply_add_text(ControlReply *r, const char *key, const char *value) {
        strbuf_puts(&r->text, key);
        strbuf_puts(&r->text, " ");
        control_escape_append(&r->text, value);
        strbuf_puts(&r->text, "\n");
}

void control_reply_done(ControlReply *r) {
        strbuf_done(&r->text);
        *r = (ControlReply) {};
}

/* One byte as the protocol writes it into out: returns its length (1 to 4). */
static size_t escape_byte(unsigned char c, char out[static 5]) {
        if (c == '\\')
                return (size_t) snprintf(out, 5, "\\\\");
        if (c == '\n')
                return (size_t) snprintf(out, 5, "\\n");
        if (c == '\t')
                return (size_t) snprintf(out, 5, "\\t");
        if (c < 0x20 || c == 0x7f)
                return (size_t) snprintf(out, 5, "\\x%02x", c);
        out[0] = (char) c;
        out[1] = '\0';
        return 1;
}

void control_escape(const char *in, char *out, size_t out_size) {
        size_t o = 0;

        if (out_size == 0)
                return;
        for (const unsigned char *p = (const unsigned char *) in; *p; p++) {
                char buf[5];
                size_t n = escape_byte(*p, buf);
                if (o + n >= out_size)
                        break; /* truncate at a whole escape */
                memcpy(out + o, buf, n);
                o += n;
        }
        out[o] = '\0';
}

int control_escape_append(StrBuf *b, const char *in) {
        for (const unsigned char *p = (const unsigned char *) in; *p; p++) {
                char buf[5];
                strbuf_append(b, buf, escape_byte(*p, buf));
        }
        return strbuf_error(b);
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

void control_unescape(char *s) {
        char *o = s;
        for (char *p = s; *p; p++) {
                if (*p != '\\' || p[1] == '\0') {
                        *o++ = *p;
                        continue;
                }
                p++;
                if (*p == 'n')
                        *o++ = '\n';
                else if (*p == 't')
                        *o++ = '\t';
                else if (*p == 'x' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
                        int v = hexval(p[1]) * 16 + hexval(p[2]);
                        *o++ = v ? (char) v : '?'; /* never an embedded NUL */
                        p += 2;
                } else
                        *o++ = *p;
        }
        *o = '\0';
}

int control_reply_parse(char *text, const char **ret_error,
                        void (*fn)(const char *key, const char *value, void *userdata), void *userdata) {
        char *save = NULL;
        char *line = strtok_r(text, "\n", &save);
        size_t plen = strlen(CONTROL_PROTOCOL);

        if (!line || strncmp(line, CONTROL_PROTOCOL, plen) != 0 || line[plen] != ' ')
                return -EBADMSG;
        line += plen + 1;
        if (strcmp(line, "ok") == 0)
                *ret_error = NULL;
        else if (strncmp(line, "error ", 6) == 0) {
                control_unescape(line + 6);
                *ret_error = line + 6;
        } else
                return -EBADMSG;

        while ((line = strtok_r(NULL, "\n", &save))) {
                char *space = strchr(line, ' ');
                if (!space)
                        return -EBADMSG;
                *space = '\0';
                control_unescape(space + 1);
                if (fn)
                        fn(line, space + 1, userdata);
        }
        return 0;
}
