/* The config keys as one table: each key's name, the setter that checks a
 * value and stores it, the Config field it fills, where it may be given and
 * its command-line option with the option's --help line. The INI reader,
 * the command line, --help, the unit tests and the docs check all read this
 * table, so a key is added in one place. Read-only. */
#pragma once

#include <stddef.h>

#include "sockherd/config.h"

typedef enum ConfigKeyFlags {
        /* not a file key: only the command line gives it (environment-literal) */
        CONFIG_KEY_OPTION_ONLY = 1 << 0,
        /* an indented line in the file gives more values (listen, environment;
         * command takes more words) */
        CONFIG_KEY_CONTINUES = 1 << 1,
        /* the option may be repeated, each adding a value; its first use
         * clears the list the file gave, under the file key named like the
         * option (--listen, -e/--environment) */
        CONFIG_KEY_OPTION_LIST = 1 << 2,
} ConfigKeyFlags;

typedef struct ConfigKey {
        const char *name;
        /* Checks value and stores it in field (c plus offset; setters of
         * keys that fill more than one field use c as well). On a bad
         * value: -EINVAL and reason says what was expected. Pure. */
        int (*set)(Config *c, void *field, const char *value, ErrorText *reason);
        size_t offset;
        unsigned flags;         /* ConfigKeyFlags */
        const char *option;     /* long option without "--", NULL when the key has none */
        char short_option;      /* 0 when it has none */
        const char *argument;   /* the option's argument, as --help names it */
        const char *help;       /* --help's description; each '\n' starts another line */
} ConfigKey;

/* Every key, in --help's order; ends with an entry whose name is NULL. */
extern const ConfigKey config_key_table[];

/* The key called name, or NULL. */
const ConfigKey *config_key_find(const char *name);

/* Whether the config file accepts the key. */
static inline bool config_key_in_file(const ConfigKey *k) {
        return !(k->flags & CONFIG_KEY_OPTION_ONLY);
}
