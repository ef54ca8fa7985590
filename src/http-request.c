/* The HTTP request head parser (see http-request.h). Lines end in CRLF or,
 * as RFC 9112 section 2.2 lets a recipient accept, in a bare LF; a CR
 * anywhere else is malformed. */
#include <string.h>
#include <strings.h>

#include "sockherd/http-request.h"

static bool is_tchar(unsigned char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (c != 0 && strchr("!#$%&'*+-.^_`|~", c));
}

/* field-value bytes: HTAB, SP, VCHAR, obs-text */
static bool is_value_char(unsigned char c) {
        return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* Where the head ends (just past its empty line), or 0 when it does not
 * end within the first n bytes. */
static size_t head_end(const char *data, size_t n) {
        for (size_t i = 0; i < n; i++) {
                if (data[i] != '\n')
                        continue;
                if (i + 1 < n && data[i + 1] == '\n')
                        return i + 2;
                if (i + 2 < n && data[i + 1] == '\r' && data[i + 2] == '\n')
                        return i + 3;
        }
        return 0;
}

/* Garbage (a TLS handshake, a binary protocol) is refused at once instead
 * of waiting for the deadline: the first line, complete or not, may hold
 * only printable bytes and its CR. */
static bool first_line_plausible(const char *data, size_t size) {
        for (size_t i = 0; i < size && data[i] != '\n'; i++) {
                unsigned char c = (unsigned char) data[i];
                if (c == '\r' ? i + 1 < size && data[i + 1] != '\n' : c < 0x20 || c >= 0x7f)
                        return false;
        }
        return true;
}

static HttpParse parse_request_line(const char *line, size_t len, HttpRequest *req) {
        size_t i = 0;

        while (i < len && is_tchar((unsigned char) line[i]))
                i++;
        if (i == 0 || i > HTTP_METHOD_MAX || i >= len || line[i] != ' ')
                return HTTP_PARSE_BAD;
        if (i == 3 && memcmp(line, "GET", 3) == 0)
                req->method = HTTP_METHOD_GET;
        else if (i == 4 && memcmp(line, "HEAD", 4) == 0)
                req->method = HTTP_METHOD_HEAD;
        else
                req->method = HTTP_METHOD_OTHER;

        size_t target = ++i;
        while (i < len && line[i] != ' ') {
                unsigned char c = (unsigned char) line[i];
                if (c <= 0x20 || c >= 0x7f || c == '#')
                        return HTTP_PARSE_BAD;
                i++;
        }
        size_t target_len = i - target;
        if (target_len == 0 || line[target] != '/' || i >= len)
                return HTTP_PARSE_BAD;
        if (target_len > HTTP_PATH_MAX)
                return HTTP_PARSE_URI_TOO_LONG;
        const char *q = memchr(line + target, '?', target_len);
        size_t path_len = q ? (size_t) (q - (line + target)) : target_len;
        memcpy(req->path, line + target, path_len);
        req->path[path_len] = '\0';

        const char *v = line + i + 1;
        size_t vlen = len - i - 1;
        if (vlen != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
            v[7] < '0' || v[7] > '9')
                return HTTP_PARSE_BAD;
        if (v[5] != '1')
                return HTTP_PARSE_VERSION;
        req->version_minor = v[7] == '0' ? 0 : 1; /* 1.x: answered as 1.1 */
        return HTTP_PARSE_OK;
}

typedef struct HeadFacts {
        unsigned hosts;
        const char *length;     /* the first Content-Length value */
        size_t length_len;
        bool transfer_encoding;
} HeadFacts;

static bool name_is(const char *name, size_t len, const char *want) {
        return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

static HttpParse parse_field(const char *line, size_t len, HeadFacts *facts) {
        size_t i = 0;

        while (i < len && is_tchar((unsigned char) line[i]))
                i++;
        /* no name, whitespace before the colon, or a folded line */
        if (i == 0 || i >= len || line[i] != ':')
                return HTTP_PARSE_BAD;
        size_t name_len = i++;
        while (i < len && (line[i] == ' ' || line[i] == '\t'))
                i++;
        size_t end = len;
        while (end > i && (line[end - 1] == ' ' || line[end - 1] == '\t'))
                end--;
        for (size_t k = i; k < end; k++)
                if (!is_value_char((unsigned char) line[k]))
                        return HTTP_PARSE_BAD;
        const char *value = line + i;
        size_t value_len = end - i;

        if (name_is(line, name_len, "host"))
                facts->hosts++;
        else if (name_is(line, name_len, "transfer-encoding"))
                facts->transfer_encoding = true;
        else if (name_is(line, name_len, "content-length")) {
                if (value_len == 0)
                        return HTTP_PARSE_BAD;
                for (size_t k = 0; k < value_len; k++)
                        if (value[k] < '0' || value[k] > '9')
                                return HTTP_PARSE_BAD;
                if (facts->length && (facts->length_len != value_len || memcmp(facts->length, value, value_len) != 0))
                        return HTTP_PARSE_BAD; /* two different lengths: request smuggling */
                facts->length = value;
                facts->length_len = value_len;
        }
        return HTTP_PARSE_OK;
}

HttpParse http_request_parse(const char *data, size_t size, HttpRequest *ret) {
        HttpRequest req = {};
        HeadFacts facts = {};
        unsigned fields = 0;

        if (!first_line_plausible(data, size))
                return HTTP_PARSE_BAD;
        size_t end = head_end(data, size < HTTP_REQUEST_MAX ? size : HTTP_REQUEST_MAX);
        if (end == 0)
                return size >= HTTP_REQUEST_MAX ? HTTP_PARSE_TOO_LARGE : HTTP_PARSE_INCOMPLETE;

        for (size_t pos = 0, n = 0;; n++) {
                const char *nl = memchr(data + pos, '\n', end - pos);
                size_t len = (size_t) (nl - (data + pos)); /* nl exists: the head ends in one */
                const char *line = data + pos;
                pos += len + 1;
                if (len > 0 && line[len - 1] == '\r')
                        len--;
                if (memchr(line, '\r', len) || memchr(line, '\0', len))
                        return HTTP_PARSE_BAD;
                if (n == 0) {
                        HttpParse p = parse_request_line(line, len, &req);
                        if (p != HTTP_PARSE_OK)
                                return p;
                        continue;
                }
                if (len == 0)
                        break; /* the empty line: pos == end */
                if (++fields > HTTP_HEADERS_MAX)
                        return HTTP_PARSE_TOO_LARGE;
                HttpParse p = parse_field(line, len, &facts);
                if (p != HTTP_PARSE_OK)
                        return p;
        }

        if (facts.hosts > 1 || (req.version_minor == 1 && facts.hosts != 1))
                return HTTP_PARSE_BAD; /* RFC 9112 section 3.2 */
        if (facts.transfer_encoding && facts.length)
                return HTTP_PARSE_BAD;
        if (facts.transfer_encoding || (facts.length && strspn(facts.length, "0") < facts.length_len))
                return HTTP_PARSE_BODY;
        req.head_size = end;
        *ret = req;
        return HTTP_PARSE_OK;
}

int http_parse_status(HttpParse p) {
        switch (p) {
        case HTTP_PARSE_INCOMPLETE:
        case HTTP_PARSE_OK:           return 0;
        case HTTP_PARSE_BAD:          return 400;
        case HTTP_PARSE_TOO_LARGE:    return 431;
        case HTTP_PARSE_URI_TOO_LONG: return 414;
        case HTTP_PARSE_BODY:         return 413;
        case HTTP_PARSE_VERSION:      return 505;
        }
        return 400;
}

const char *http_status_reason(int status) {
        switch (status) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 413: return "Content Too Large";
        case 414: return "URI Too Long";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 503: return "Service Unavailable";
        case 505: return "HTTP Version Not Supported";
        }
        return "Unknown";
}
