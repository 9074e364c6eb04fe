/*
 * config_load.h — what config.c's schema walk shares with config_load.c:
 * the loader's state, the YAML tree, problem reporting and the readers of
 * scalar values. Internal to the agent; the public interface is config.h.
 */
#ifndef CHOREO_CONFIG_LOAD_H
#define CHOREO_CONFIG_LOAD_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#if defined(__GNUC__)
#define PRINTF_LIKE(a, b) __attribute__((format(printf, a, b)))
#else
#define PRINTF_LIKE(a, b)
#endif

#define WHERE_MAX 256 /* a key path such as behaviours[3].when.any */

enum ykind { Y_SCALAR, Y_SEQ, Y_MAP };

/* One node of a parsed YAML file. A mapping keeps its keys and values
 * interleaved in kids: key 0, value 0, key 1, value 1, ... */
struct ynode {
  enum ykind kind;
  unsigned line, col; /* 1-based */
  bool plain;         /* a scalar written without quotes */
  char *str;          /* a scalar's text, NUL-terminated */
  size_t nkids, cap;
  struct ynode **kids;
};

/* The include being read: its vars and where it was written. */
struct include_ctx {
  const char *file; /* the including file */
  unsigned line, col;
  size_t nvars;
  const struct ynode *name[CONFIG_VARS_MAX]; /* in the including file */
  const struct ynode *value[CONFIG_VARS_MAX];
  bool used[CONFIG_VARS_MAX];
};

/* A file already included, to refuse the same one twice. */
struct seen_include {
  char *real; /* its realpath */
  char *sig;  /* its vars, sorted, see vars_signature() */
  unsigned line, col;
};

/* Everything one config_load() call works with; messages go to errs. */
struct loader {
  struct config *cfg;
  struct config_errors *errs;
  bool nomem;
  const char *file;             /* the file being read, as messages name it */
  char dir[CONFIG_PATH_MAX];    /* its directory, absolute */
  struct include_ctx *inc;      /* NULL in the main file */
  bool name_set;                /* node.name was written */
  const struct ynode *identity; /* the identity section, checked last */
  size_t bcap, ccap;            /* room in cfg->behaviours and cfg->checks */
  size_t expanded;              /* bytes of the pack's scalars, vars replaced */
  size_t nseen;
  struct seen_include seen[CONFIG_INCLUDES_MAX];
};

/* A growing string; start from {0}. Out of memory is remembered and
 * reported by cfg_sb_take(). */
struct strbuf {
  char *s;
  size_t len, cap;
  bool nomem;
};

/* Append s. */
void cfg_sb_str(struct strbuf *b, const char *s);

/* The built string (owned by the caller), or NULL when out of memory. */
char *cfg_sb_take(struct strbuf *b);

/* A new string (the caller frees it), or NULL when out of memory. */
PRINTF_LIKE(1, 2)
char *cfg_dup_printf(const char *fmt, ...);

/* Key paths for messages: "where.key" (or "key" at the top), "where[i]". */
const char *cfg_sub(char *buf, const char *where, const char *key);
const char *cfg_nth(char *buf, const char *where, size_t i);

/* A problem at an explicit place. */
PRINTF_LIKE(6, 7)
void cfg_problem_at(struct loader *L, const char *file, unsigned line,
                    unsigned col, const char *where, const char *fmt, ...);

/* A problem at node `at` of the file being read; where is its key path. */
PRINTF_LIKE(4, 5)
void cfg_problem(struct loader *L, const struct ynode *at, const char *where,
                 const char *fmt, ...);

/* slurp() the file at path; a problem is reported at the include entry
 * `at` (with its key path where), or at the top of the file when at is
 * NULL. Returns 0 or slurp()'s error. */
int cfg_read_file(struct loader *L, const char *path, const struct ynode *at,
                  const char *where, char **buf, size_t *len);

/* The absolute directory of file, against which relative paths written in
 * it resolve. Returns 0, or -1 if it does not fit in dir[size]. */
int cfg_dir_of(const char *file, char *dir, size_t size);

/* path as is if absolute, else dir/path (without a leading "./"). Returns
 * 0, or -1 if the result does not fit in out[size]. */
int cfg_join_path(const char *dir, const char *path, char *out, size_t size);

/* Free a tree from cfg_parse_yaml() (NULL is fine). */
void cfg_ynode_free(struct ynode *n);

/* Parse the file in buf (len bytes) into *root: NULL for a file without a
 * document. Returns 0, or -1 when the file can't be used (reported). */
int cfg_parse_yaml(struct loader *L, const char *buf, size_t len,
                   struct ynode **root);

/* A YAML null: "~", "null", an empty plain scalar. */
bool cfg_is_null(const struct ynode *n);
/* A scalar that is not null. */
bool cfg_is_string(const struct ynode *n);

/* The cfg_get_* readers take the value node v at key path where and
 * return false after reporting a problem when it doesn't fit. */
bool cfg_get_str(struct loader *L, const struct ynode *v, const char *where,
                 const char **out);

/* A node, group, cluster, behaviour or check name into dst[size]. */
bool cfg_get_name(struct loader *L, const struct ynode *v, const char *where,
                  char *dst, size_t size);

/* A state into dst; settable: one this node may claim (not lost or left). */
bool cfg_get_state(struct loader *L, const struct ynode *v, const char *where,
                   char *dst, bool settable);

bool cfg_get_duration(struct loader *L, const struct ynode *v,
                      const char *where, uint64_t *ms);

bool cfg_get_uint(struct loader *L, const struct ynode *v, const char *where,
                  unsigned lo, unsigned hi, unsigned *out);

bool cfg_get_bool(struct loader *L, const struct ynode *v, const char *where,
                  bool *out);

/* A file path; relative ones resolve against the file being read. */
bool cfg_get_path(struct loader *L, const struct ynode *v, const char *where,
                  char *dst, size_t size);

/* Whether v is a list (a null is an empty one); says so if it is not. */
bool cfg_get_seq(struct loader *L, const struct ynode *v, const char *where);

/* Whether v is a list of at most max strings (what: "groups"). */
bool cfg_get_str_list(struct loader *L, const struct ynode *v,
                      const char *where, size_t max, const char *what);

/* A key must be a string; says so if k is not. */
bool cfg_key_ok(struct loader *L, const struct ynode *k, const char *where);

/* Whether the key at kids[i] of mapping m repeats an earlier one. */
bool cfg_dup_key(struct loader *L, const struct ynode *m, size_t i,
                 const char *where);

/* The index in keys[nkeys] of the key at kids[i] of mapping m, or nkeys
 * (said why) if it is unknown or already in keyn[]. */
size_t cfg_field_at(struct loader *L, const struct ynode *m, size_t i,
                    const char *where, const char *const *keys, size_t nkeys,
                    const struct ynode *const *keyn);

/* Check that m is a mapping (a null counts as an empty one) whose keys are
 * all in keys[nkeys], none repeated. vals[i] and keyn[i] receive the value
 * and key written for keys[i], or NULL. Returns false (said why) if m is
 * not a mapping. */
bool cfg_map_fields(struct loader *L, const struct ynode *m, const char *where,
                    const char *const *keys, size_t nkeys,
                    const struct ynode **vals, const struct ynode **keyn);

#endif
