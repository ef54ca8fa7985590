/* Shared by the config*.c files only: the helpers the schema, the file
 * reader, the system look-ups and the snapshot's own code all use. */
#pragma once

#include <stdbool.h>

#include "sockherd/config.h"
#include "sockherd/util.h"

/* Replaces *field with a copy of value; -ENOMEM leaves it alone. */
int config_set_string(char **field, const char *value);

/* A pool name or log identifier: 1 to 64 letters, digits, '-', '_', '.';
 * else false and reason says why. */
bool config_name_is_valid(const char *v, ErrorText *reason);

void config_clear_listen(Config *c);

/* More words for the command, from a continuation line. */
int config_append_command(Config *c, const char *value, const char *origin, ErrorText *err);

/* "unknown key 'wokers' (value '4'); did you mean 'workers'?"; -EINVAL */
int config_unknown_key(ErrorText *err, const char *origin, const char *key, const char *value);

/* The system look-ups of config_validate(): user, group and supplementary
 * groups (NSS), control-group, working-directory, the command on PATH.
 * With previous (the running config, on a reload), a look-up whose inputs
 * are unchanged takes previous' answer instead of asking again. */
int config_resolve_system(Config *c, const Config *previous, ErrorText *err);
