/*
 * check_env.h — what `choreo check` verifies beyond the file itself: the
 * things of this machine the agent needs at start and would otherwise
 * refuse only then (docs/man/choreo.1, "check"). It changes nothing: no
 * socket is bound, no directory created.
 */
#ifndef CHOREO_CHECK_ENV_H
#define CHOREO_CHECK_ENV_H

#include <stddef.h>

#include "config.h"

/* Room for one problem's message. */
#define CHECK_ENV_MSG_MAX (CONFIG_PATH_MAX + 512)

/* One problem found by check_env(), "FILE: setting: value: why". */
typedef void (*check_env_fn)(void *arg, const char *msg);

/* Check that network.listen can be bound here (a tcp host is an address
 * of this machine or one of its interfaces, an ipc socket's directory
 * exists), that state_dir is a directory or can be created (its nearest
 * existing parent is a directory this user may write to), and
 * that the control socket's directory exists or can be created. Calls fn
 * once per problem; returns how many there were. file: the configuration
 * file, named in every message. */
/* A check_env_fn that prints each problem on a line of stderr. */
void check_env_stderr(void *arg, const char *msg);

size_t check_env(const struct config *cfg, const char *file, check_env_fn fn,
                 void *arg);

#endif
