/* Reading a config file (or a string standing for one) into a Config:
 * inih parses the INI syntax, fed through our own line reader so that an
 * error names the line and no line is ever split; every key goes through
 * config_set() and the schema's table. As root, a file nobody but root
 * may change is the only one read. */
#include <errno.h>
#include <ini.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config-internal.h"
#include "sockherd/config-schema.h"

/* inih does not tell the handler its line number in Debian's build, and it
 * silently splits lines longer than its buffer. Feeding it through our own
 * reader gives both: the line number, and a clear error for long lines.
 * Every line is read whole (getline) before inih sees any of it, so no part
 * of a line can turn up as a line of its own: not the tail of a long line,
 * and not what follows a NUL byte (which fgets would read, and strlen
 * would not count). A NUL byte is an error. */
typedef struct Reader {
        const char *name;
        FILE *file;
        const char *text;       /* when reading from a string */
        char *line_buf;         /* getline's buffer, freed by config_load() */
        size_t line_buf_size;
        unsigned line;
        int line_max;           /* inih's buffer size, from the first call */
        bool too_long;
        bool nul;               /* the line holds a NUL byte */
        size_t nul_at;          /* its offset */
        char nul_before[64];    /* the text before it, for the message */
        int read_error;         /* errno of a failed read, 0 for none */
        bool indented;          /* the current line starts with white space */
        unsigned error_line;    /* line of the first error, 0 while none */
        Config *config;
        ErrorText *err;
        int error;              /* first error, negative errno */
} Reader;

static void reader_fail(Reader *rd, int r) {
        if (rd->error >= 0) {
                rd->error = r;
                rd->error_line = rd->line;
        }
}

/* inih calls the handler only for keys; catch an unknown [section] on its
 * own line, even when no key follows it. */
static void reader_check_section(Reader *rd, const char *line) {
        while (*line == ' ' || *line == '\t')
                line++;
        if (*line != '[')
                return;
        size_t n = strcspn(line + 1, "]");
        if (line[1 + n] != ']')
                return; /* inih reports the syntax error */
        if (n == 0 || (n == 8 && strncmp(line + 1, "sockherd", 8) == 0))
                return;
        reader_fail(rd, error_set(rd->err, -EINVAL,
                                  "%s:%u: unknown section [%.*s] (keys go in [sockherd] or before any section)",
                                  rd->name, rd->line, (int) n, line + 1));
}

static char *reader_next(char *buf, int size, void *userdata) {
        Reader *rd = userdata;
        const char *line;
        size_t len;

        if (rd->too_long || rd->nul || size < 2)
                return NULL;
        rd->line_max = size - 2; /* room for the newline and the NUL */

        if (rd->file) {
                errno = 0;
                ssize_t n = getline(&rd->line_buf, &rd->line_buf_size, rd->file);
                if (n <= 0) {
                        if (ferror(rd->file))
                                rd->read_error = errno ? errno : EIO;
                        return NULL;
                }
                line = rd->line_buf;
                len = (size_t) n;
        } else {
                if (*rd->text == '\0')
                        return NULL;
                const char *nl = strchr(rd->text, '\n');
                line = rd->text;
                len = nl ? (size_t) (nl - rd->text) + 1 : strlen(rd->text);
                rd->text += len;
        }
        rd->line++;

        const char *zero = memchr(line, '\0', len);
        if (zero) {
                rd->nul = true;
                rd->nul_at = (size_t) (zero - line);
                snprintf(rd->nul_before, sizeof(rd->nul_before), "%s", line);
                return NULL;
        }
        /* the whole line, newline aside, must fit: a line is never split */
        size_t content = len - (line[len - 1] == '\n');
        if (content > (size_t) rd->line_max) {
                rd->too_long = true;
                return NULL;
        }
        memcpy(buf, line, len);
        buf[len] = '\0';
        rd->indented = buf[0] == ' ' || buf[0] == '\t';
        reader_check_section(rd, buf);
        return buf;
}

static int reader_handle(void *userdata, const char *section, const char *key, const char *value) {
        Reader *rd = userdata;
        char origin[320];

        if (rd->error < 0)
                return 1; /* report the first error only */

        snprintf(origin, sizeof(origin), "%s:%u", rd->name, rd->line);
        if (section[0] != '\0' && strcmp(section, "sockherd") != 0)
                return 1; /* reported at the section's own line */

        const ConfigKey *k = config_key_find(key);
        if (!k || !config_key_in_file(k)) {
                reader_fail(rd, config_unknown_key(rd->err, origin, key, value));
                return 1;
        }
        /* inih hands an indented line to us again under the previous key:
         * list keys take more values that way, and command more words */
        if (rd->indented && strcmp(key, "command") == 0) {
                int r = config_append_command(rd->config, value, origin, rd->err);
                if (r < 0)
                        reader_fail(rd, r);
                return 1;
        }
        if (rd->indented && !(k->flags & CONFIG_KEY_CONTINUES)) {
                reader_fail(rd, error_set(rd->err, -EINVAL, "%s: an indented line continues '%s', which takes one value "
                                             "(only command, listen and environment continue on further lines)",
                                             origin, key));
                return 1;
        }
        int r = config_set(rd->config, key, value, origin, rd->err);
        if (r < 0)
                reader_fail(rd, r);
        return 1;
}

static int config_load(Config *c, Reader *rd) {
        rd->config = c;
        int r = ini_parse_stream(reader_next, rd, reader_handle, rd);
        free(rd->line_buf);
        rd->line_buf = NULL;

        /* report whichever error comes first in the file */
        if (r > 0 && (rd->error >= 0 || (unsigned) r < rd->error_line))
                return error_set(rd->err, -EINVAL, "%s:%d: syntax error (expected 'key = value' or '[section]')",
                                    rd->name, r);
        if (rd->error < 0)
                return rd->error;
        if (rd->too_long)
                return error_set(rd->err, -EINVAL, "%s:%u: line too long (at most %d characters)",
                                    rd->name, rd->line, rd->line_max);
        if (rd->nul)
                return error_set(rd->err, -EINVAL, "%s:%u: a NUL byte at column %zu of the line (after '%s'); "
                                    "a config file is text", rd->name, rd->line, rd->nul_at + 1, rd->nul_before);
        if (rd->read_error)
                return error_set(rd->err, -EINVAL, "%s:%u: cannot read: %s", rd->name, rd->line + 1,
                                    strerror(rd->read_error)), -rd->read_error;
        if (r < 0)
                return error_set(rd->err, -EINVAL, "%s: cannot be parsed", rd->name);
        return 0;
}

int config_load_string(Config *c, const char *name, const char *text, ErrorText *err) {
        Reader rd = { .name = name, .text = text, .err = err };
        return config_load(c, &rd);
}

static const char *who_can_write(const struct stat *st) {
        bool sticky_dir = S_ISDIR(st->st_mode) && (st->st_mode & S_ISVTX);
        if (st->st_uid != 0)
                return "its owner, who is not root,";
        if ((st->st_mode & S_IWOTH) && !sticky_dir)
                return "every user";
        if ((st->st_mode & S_IWGRP) && st->st_gid != 0 && !sticky_dir)
                return "its group, which is not root,";
        return NULL;
}

int config_file_trust_problem(const char *path, const struct stat *file, const struct stat *dir,
                              uid_t euid, char *buf, size_t size) {
        const char *who;

        if (euid != 0)
                return 0;
        if ((who = who_can_write(file)))
                snprintf(buf, size, "%s: refusing to read it as root: %s can change it (owner uid %u, mode %04o), "
                         "and the config decides what runs as root; make it root-owned and not group- or world-writable",
                         path, who, (unsigned) file->st_uid, (unsigned) (file->st_mode & 07777));
        else if ((who = who_can_write(dir)))
                snprintf(buf, size, "%s: refusing to read it as root: %s can replace it through its directory "
                         "(owner uid %u, mode %04o), and the config decides what runs as root; "
                         "make the directory root-owned and not group- or world-writable",
                         path, who, (unsigned) dir->st_uid, (unsigned) (dir->st_mode & 07777));
        else
                return 0;
        return -EPERM;
}

/* Run as root, a config file is only read when nobody but root can change
 * it, in the spirit of sshd's StrictModes: it names the command that runs. */
static int config_file_check_trust(FILE *f, const char *path, ErrorText *err) {
        struct stat file, dir;
        _cleanup_free_ char *copy = strdup(path);

        if (!copy)
                return -ENOMEM;
        if (fstat(fileno(f), &file) < 0 || stat(dirname(copy), &dir) < 0)
                return error_set(err, -EINVAL, "%s: cannot check its owner: %s", path, strerror(errno));
        char message[ERROR_TEXT_MAX];
        int r = config_file_trust_problem(path, &file, &dir, geteuid(), message, sizeof(message));
        if (r < 0 && err)
                snprintf(err->message, sizeof(err->message), "%s", message);
        return r;
}

int config_load_file(Config *c, const char *path, ErrorText *err) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f) {
                int r = -errno;
                error_set(err, -EINVAL, "%s: cannot open: %s", path, strerror(-r));
                return r;
        }
        int r = config_file_check_trust(f, path, err);
        if (r < 0)
                return r;
        Reader rd = { .name = path, .file = f, .err = err };
        r = config_load(c, &rd);
        if (r < 0)
                return r;
        return config_set_string(&c->config_file, path);
}
