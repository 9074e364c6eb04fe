/*
 * config_load.c — the loader's machinery under config.c: reading a file,
 * building libyaml's event stream into a tree of nodes that keep their
 * marks (with an include's ${NAME} vars replaced), recording problems as
 * "FILE:LINE:COL: message", and reading scalar values and mappings against
 * the schema. See config_load.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "config_load.h"
#include "util.h"

#define YAML_DEPTH_MAX 64 /* nesting of mappings and lists in one file */
#define MSG_MAX 1024      /* one message, less its "FILE:LINE:COL: " */
#define EXPANDED_MAX (4 * CONFIG_FILE_MAX) /* a pack, vars replaced */

/* ---- Strings ---- */

static void sb_add(struct strbuf *b, const char *s, size_t n) {
  char *p;
  size_t cap = b->cap ? b->cap : 64;
  if (b->nomem)
    return;
  while (cap < b->len + n + 1)
    cap *= 2;
  if (cap != b->cap) {
    if ((p = realloc(b->s, cap)) == NULL) {
      b->nomem = true;
      return;
    }
    b->s = p;
    b->cap = cap;
  }
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = '\0';
}

void cfg_sb_str(struct strbuf *b, const char *s) {
  sb_add(b, s, strlen(s));
}

/* The built string (owned by the caller), or NULL when out of memory. */
char *cfg_sb_take(struct strbuf *b) {
  if (b->nomem) {
    free(b->s);
    return NULL;
  }
  return b->s != NULL ? b->s : strdup("");
}

PRINTF_LIKE(1, 0)
static char *dup_vprintf(const char *fmt, va_list ap) {
  va_list aq;
  char *s;
  int n;

  va_copy(aq, ap);
  n = vsnprintf(NULL, 0, fmt, aq);
  va_end(aq);
  if (n < 0 || (s = malloc((size_t)n + 1)) == NULL)
    return NULL;
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  return s;
}

PRINTF_LIKE(1, 2)
char *cfg_dup_printf(const char *fmt, ...) {
  va_list ap;
  char *s;
  va_start(ap, fmt);
  s = dup_vprintf(fmt, ap);
  va_end(ap);
  return s;
}

/* A key path that did not fit in buf[WHERE_MAX] ends with "...". */
static const char *where_fit(char *buf, int n) {
  if (n < 0 || n >= WHERE_MAX)
    memcpy(buf + WHERE_MAX - 4, "...", 4);
  return buf;
}

/* Key paths for messages: "where.key" (or "key" at the top), "where[i]". */
const char *cfg_sub(char *buf, const char *where, const char *key) {
  return where_fit(
      buf, snprintf(buf, WHERE_MAX, "%s%s%s", where, where[0] ? "." : "", key));
}

const char *cfg_nth(char *buf, const char *where, size_t i) {
  return where_fit(buf, snprintf(buf, WHERE_MAX, "%s[%zu]", where, i));
}

/* ---- Problems ---- */

PRINTF_LIKE(6, 0)
static void record(struct loader *L, const char *file, unsigned line,
                   unsigned col, const char *where, const char *fmt,
                   va_list ap) {
  struct config_errors *e = L->errs;
  char body[MSG_MAX];
  char *msg;
  int n;

  if (e->n == CONFIG_ERRORS_MAX) {
    e->more++;
    return;
  }
  n = vsnprintf(body, sizeof(body), fmt, ap);
  if (n < 0)
    snprintf(body, sizeof(body), "(message lost)");
  else if ((size_t)n >= sizeof(body)) /* visible, not silent, truncation */
    memcpy(body + sizeof(body) - 4, "...", 4);
  msg = cfg_dup_printf("%s:%u:%u: %s%s%s", file, line, col, where,
                       where[0] ? ": " : "", body);
  if (msg == NULL) {
    L->nomem = true;
    return;
  }
  e->msg[e->n++] = msg;
}

/* A problem at an explicit place. */
PRINTF_LIKE(6, 7)
void cfg_problem_at(struct loader *L, const char *file, unsigned line,
                    unsigned col, const char *where, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  record(L, file, line, col, where, fmt, ap);
  va_end(ap);
}

/* A problem at node `at` of the file being read; where is its key path. */
PRINTF_LIKE(4, 5)
void cfg_problem(struct loader *L, const struct ynode *at, const char *where,
                 const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  record(L, L->file, at->line, at->col, where, fmt, ap);
  va_end(ap);
}

/* ---- Files and paths ---- */

/* Read the whole file at path into *buf (NUL-terminated; the caller frees
 * it). Returns 0, a negated errno, or CHOREO_ETOOBIG past CONFIG_FILE_MAX. */
static int slurp(const char *path, char **buf, size_t *len) {
  struct stat st;
  size_t n = 0;
  ssize_t r = 1;
  char *b = NULL;
  /* O_NONBLOCK: opening a FIFO must not wait for a writer (it is then
   * refused as not a regular file); it changes nothing for a file. */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY), rv = 0;

  if (fd < 0)
    return -errno;
  if (fstat(fd, &st) != 0)
    rv = -errno;
  else if (S_ISDIR(st.st_mode))
    rv = -EISDIR;
  else if (!S_ISREG(st.st_mode))
    rv = CHOREO_EINVAL;
  else if (st.st_size > CONFIG_FILE_MAX)
    rv = CHOREO_ETOOBIG;
  else if ((b = malloc(CONFIG_FILE_MAX + 2)) == NULL)
    rv = CHOREO_ENOMEM;
  if (rv != 0) {
    close(fd);
    return rv;
  }
  /* Read to the end: the file may have grown since fstat(). */
  while (n <= CONFIG_FILE_MAX &&
         (r = read(fd, b + n, CONFIG_FILE_MAX + 1 - n)) != 0) {
    if (r < 0 && errno != EINTR)
      break;
    n += r > 0 ? (size_t)r : 0;
  }
  rv = r < 0 ? -errno : n > CONFIG_FILE_MAX ? CHOREO_ETOOBIG : 0;
  close(fd);
  if (rv != 0) {
    free(b);
    return rv;
  }
  b[n] = '\0';
  *buf = b;
  *len = n;
  return 0;
}

/* slurp() the file at path; a problem is reported at the include entry
 * `at` (with its key path where), or at the top of the file when at is
 * NULL. Returns 0 or slurp()'s error. */
int cfg_read_file(struct loader *L, const char *path, const struct ynode *at,
                  const char *where, char **buf, size_t *len) {
  char why[128];
  int rv = slurp(path, buf, len);

  if (rv == 0)
    return 0;
  if (rv == CHOREO_ETOOBIG)
    snprintf(why, sizeof(why), "larger than %d bytes", CONFIG_FILE_MAX);
  else if (rv == CHOREO_EINVAL)
    snprintf(why, sizeof(why), "not a regular file");
  else
    choreo_strerror_r(rv, why, sizeof(why));
  if (rv == CHOREO_ENOMEM)
    L->nomem = true;
  else if (at != NULL)
    cfg_problem(L, at, where, "%s: %s", path, why);
  else
    cfg_problem_at(L, path, 1, 1, "", "%s", why);
  return rv;
}

/* The absolute directory of file, against which relative paths written in
 * it resolve. Returns 0, or -1 if it does not fit in dir[size]. */
int cfg_dir_of(const char *file, char *dir, size_t size) {
  const char *slash = strrchr(file, '/');
  char cwd[CONFIG_PATH_MAX];
  int n;

  if (file[0] == '/')
    n = snprintf(dir, size, "%.*s", slash == file ? 1 : (int)(slash - file),
                 file);
  else if (getcwd(cwd, sizeof(cwd)) == NULL)
    return -1;
  else if (slash == NULL)
    n = snprintf(dir, size, "%s", cwd);
  else
    n = snprintf(dir, size, "%s/%.*s", strcmp(cwd, "/") == 0 ? "" : cwd,
                 (int)(slash - file), file);
  return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* path as is if absolute, else dir/path (without a leading "./"). Returns
 * 0, or -1 if the result does not fit in out[size]. */
int cfg_join_path(const char *dir, const char *path, char *out, size_t size) {
  int n;
  if (path[0] == '/') {
    n = snprintf(out, size, "%s", path);
  } else {
    while (path[0] == '.' && path[1] == '/')
      path += 2;
    n = snprintf(out, size, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, path);
  }
  return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* ---- YAML into a tree of nodes ---- */

void cfg_ynode_free(struct ynode *n) {
  if (n == NULL)
    return;
  for (size_t i = 0; i < n->nkids; i++)
    cfg_ynode_free(n->kids[i]);
  free(n->kids);
  free(n->str);
  free(n);
}

static int ynode_add(struct ynode *n, struct ynode *kid) {
  if (n->nkids == n->cap) {
    size_t cap = n->cap ? n->cap * 2 : 8;
    struct ynode **k = realloc(n->kids, cap * sizeof(*k));
    if (k == NULL)
      return -1;
    n->kids = k;
    n->cap = cap;
  }
  n->kids[n->nkids++] = kid;
  return 0;
}

struct builder {
  struct loader *L;
  yaml_parser_t parser;
  const char *buf;
};

/* Line and column (1-based) of byte offset off in buf. */
static void offset_mark(const char *buf, size_t off, unsigned *line,
                        unsigned *col) {
  *line = 1;
  *col = 1;
  for (size_t i = 0; i < off && buf[i] != '\0'; i++) {
    if (buf[i] == '\n') {
      (*line)++;
      *col = 1;
    } else {
      (*col)++;
    }
  }
}

static void syntax_problem(struct builder *B) {
  yaml_parser_t *p = &B->parser;
  unsigned line = (unsigned)p->problem_mark.line + 1;
  unsigned col = (unsigned)p->problem_mark.column + 1;

  if (p->error == YAML_MEMORY_ERROR) {
    B->L->nomem = true;
    return;
  }
  /* The reader (bad encoding) knows only the byte offset. */
  if (p->error == YAML_READER_ERROR)
    offset_mark(B->buf, p->problem_offset, &line, &col);
  cfg_problem_at(B->L, B->L->file, line, col, "", "invalid YAML: %s%s%s",
                 p->context != NULL ? p->context : "",
                 p->context != NULL ? ": " : "",
                 p->problem != NULL ? p->problem : "syntax error");
}

static bool next_event(struct builder *B, yaml_event_t *ev) {
  if (yaml_parser_parse(&B->parser, ev))
    return true;
  syntax_problem(B);
  return false;
}

/* Whether p (n bytes) starts with a reference "${NAME}"; its length. */
static size_t var_ref(const char *p, size_t n) {
  size_t i = 3;
  if (n < 4 || p[0] != '$' || p[1] != '{' ||
      !(p[2] == '_' || (p[2] >= 'A' && p[2] <= 'Z') ||
        (p[2] >= 'a' && p[2] <= 'z')))
    return 0;
  while (i < n &&
         (p[i] == '_' || (p[i] >= 'A' && p[i] <= 'Z') ||
          (p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9')))
    i++;
  return i < n && p[i] == '}' ? i + 1 : 0;
}

/* Append the value of var name (len bytes) of the include being read. */
static void use_var(struct loader *L, const char *name, size_t len,
                    const struct ynode *at, struct strbuf *b) {
  struct include_ctx *inc = L->inc;
  for (size_t i = 0; i < inc->nvars; i++) {
    const char *s = inc->name[i]->str;
    if (strlen(s) == len && memcmp(s, name, len) == 0) {
      cfg_sb_str(b, inc->value[i]->str);
      inc->used[i] = true;
      return;
    }
  }
  cfg_problem(L, at, "", "${%.*s} has no value (include at %s:%u:%u)", (int)len,
              name, inc->file, inc->line, inc->col);
}

/* n->str = s (len bytes) with every ${NAME} replaced by the include's var.
 * Returns 0, or -1 when out of memory. */
static int expand(struct loader *L, const char *s, size_t len,
                  struct ynode *n) {
  struct strbuf b = {0};
  size_t i = 0, ref, room = EXPANDED_MAX - L->expanded;

  while (i < len && b.len <= room) {
    const char *dollar = memchr(s + i, '$', len - i);
    size_t run = dollar != NULL ? (size_t)(dollar - (s + i)) : len - i;
    sb_add(&b, s + i, run);
    if ((i += run) == len)
      break;
    if ((ref = var_ref(s + i, len - i)) == 0) {
      sb_add(&b, "$", 1);
      i++;
      continue;
    }
    use_var(L, s + i + 2, ref - 3, n, &b);
    i += ref;
  }
  if (b.len > room && room > 0) /* said once per pack */
    cfg_problem(L, n, "",
                "the file grows beyond %d bytes once vars are replaced",
                EXPANDED_MAX);
  L->expanded = b.len > room ? EXPANDED_MAX : L->expanded + b.len;
  n->str = cfg_sb_take(&b);
  return n->str != NULL ? 0 : -1;
}

static int make_scalar(struct builder *B, const yaml_event_t *ev,
                       struct ynode *n) {
  const char *v = (const char *)ev->data.scalar.value;
  size_t len = ev->data.scalar.length;

  n->kind = Y_SCALAR;
  n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
  if (memchr(v, '\0', len) != NULL) {
    cfg_problem(B->L, n, "", "a NUL character (\\0) can't be used here");
    len = 0;
  }
  if (B->L->inc != NULL)
    return expand(B->L, v, len, n);
  n->str = strndup(v, len);
  return n->str != NULL ? 0 : -1;
}

/* Anchors and aliases are refused: they would let a small file describe a
 * huge tree, and nothing in the schema needs them. */
static void refuse_anchor(struct builder *B, const yaml_event_t *ev,
                          const struct ynode *n) {
  const yaml_char_t *anchor = NULL;
  if (ev->type == YAML_SCALAR_EVENT)
    anchor = ev->data.scalar.anchor;
  else if (ev->type == YAML_SEQUENCE_START_EVENT)
    anchor = ev->data.sequence_start.anchor;
  else if (ev->type == YAML_MAPPING_START_EVENT)
    anchor = ev->data.mapping_start.anchor;
  else if (ev->type == YAML_ALIAS_EVENT)
    anchor = ev->data.alias.anchor;
  if (anchor == NULL)
    return;
  cfg_problem(B->L, n, "",
              "YAML %s are not supported (%c%s); write the value out in full",
              ev->type == YAML_ALIAS_EVENT ? "aliases" : "anchors",
              ev->type == YAML_ALIAS_EVENT ? '*' : '&', (const char *)anchor);
}

static int build(struct builder *B, yaml_event_t *ev, int depth,
                 struct ynode **out);

/* Read the items of a list or the pairs of a mapping up to its end. */
static int build_kids(struct builder *B, struct ynode *n, yaml_event_type_t end,
                      int depth) {
  for (;;) {
    yaml_event_t ev;
    struct ynode *kid = NULL;
    int rv;

    if (!next_event(B, &ev))
      return -1;
    if (ev.type == end) {
      yaml_event_delete(&ev);
      return 0;
    }
    rv = build(B, &ev, depth + 1, &kid);
    if (kid != NULL && ynode_add(n, kid) != 0) {
      cfg_ynode_free(kid);
      B->L->nomem = true;
      return -1;
    }
    if (rv != 0)
      return rv;
  }
}

/* Build the node that event ev starts (ev is consumed). *out is set even
 * on failure, for the caller to free. Returns 0, or -1 when the file can't
 * be read further (already reported). */
static int build(struct builder *B, yaml_event_t *ev, int depth,
                 struct ynode **out) {
  struct ynode *n = calloc(1, sizeof(*n));
  int rv = 0;

  *out = n;
  if (n == NULL) {
    B->L->nomem = true;
    yaml_event_delete(ev);
    return -1;
  }
  n->line = (unsigned)ev->start_mark.line + 1;
  n->col = (unsigned)ev->start_mark.column + 1;
  n->kind = Y_SCALAR;
  refuse_anchor(B, ev, n);
  if (depth > YAML_DEPTH_MAX) {
    cfg_problem(B->L, n, "", "nested deeper than %d levels", YAML_DEPTH_MAX);
    rv = -1;
  } else if (ev->type == YAML_SCALAR_EVENT) {
    if ((rv = make_scalar(B, ev, n)) != 0)
      B->L->nomem = true;
  } else if (ev->type == YAML_SEQUENCE_START_EVENT) {
    n->kind = Y_SEQ;
    rv = build_kids(B, n, YAML_SEQUENCE_END_EVENT, depth);
  } else if (ev->type == YAML_MAPPING_START_EVENT) {
    n->kind = Y_MAP;
    rv = build_kids(B, n, YAML_MAPPING_END_EVENT, depth);
  } else if ((n->str = strdup("")) == NULL) { /* an alias: a null */
    B->L->nomem = true;
    rv = -1;
  } else {
    n->plain = true;
  }
  yaml_event_delete(ev);
  return rv;
}

/* Parse the file in buf (len bytes) into *root: NULL for a file without a
 * document. Returns 0, or -1 when the file can't be used (reported). */
int cfg_parse_yaml(struct loader *L, const char *buf, size_t len,
                   struct ynode **root) {
  struct builder B = {.L = L, .buf = buf};
  yaml_event_t ev;
  int rv = -1, docs = 0;

  *root = NULL;
  if (!yaml_parser_initialize(&B.parser)) {
    L->nomem = true;
    return -1;
  }
  yaml_parser_set_input_string(&B.parser, (const unsigned char *)buf, len);
  while (next_event(&B, &ev)) {
    yaml_event_type_t t = ev.type;
    if (t == YAML_STREAM_END_EVENT) {
      rv = 0;
    } else if (t == YAML_DOCUMENT_START_EVENT && docs++ > 0) {
      cfg_problem_at(L, L->file, (unsigned)ev.start_mark.line + 1,
                     (unsigned)ev.start_mark.column + 1, "",
                     "only one YAML document per file");
    } else if (t == YAML_SEQUENCE_START_EVENT ||
               t == YAML_MAPPING_START_EVENT || t == YAML_SCALAR_EVENT ||
               t == YAML_ALIAS_EVENT) {
      if (build(&B, &ev, 1, root) != 0)
        break;
      continue; /* build() consumed ev */
    } else {
      yaml_event_delete(&ev);
      continue;
    }
    yaml_event_delete(&ev);
    break;
  }
  yaml_parser_delete(&B.parser);
  if (rv != 0) {
    cfg_ynode_free(*root);
    *root = NULL;
  }
  return rv;
}

/* ---- Values ---- */

bool cfg_is_null(const struct ynode *n) {
  static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
  if (n->kind != Y_SCALAR || !n->plain)
    return false;
  for (size_t i = 0; i < ARRAY_SIZE(nulls); i++)
    if (strcmp(n->str, nulls[i]) == 0)
      return true;
  return false;
}

bool cfg_is_string(const struct ynode *n) {
  return n->kind == Y_SCALAR && !cfg_is_null(n);
}

bool cfg_get_str(struct loader *L, const struct ynode *v, const char *where,
                 const char **out) {
  if (!cfg_is_string(v)) {
    cfg_problem(L, v, where, "expected a string");
    return false;
  }
  *out = v->str;
  return true;
}

/* A node, group, cluster, behaviour or check name into dst[size]. */
bool cfg_get_name(struct loader *L, const struct ynode *v, const char *where,
                  char *dst, size_t size) {
  const char *s;
  if (!cfg_get_str(L, v, where, &s))
    return false;
  if (!choreo_valid_name(s) || strlen(s) >= size) {
    cfg_problem(L, v, where,
                "\"%s\" is not a valid name (1-%d of A-Z a-z 0-9 . _ -)", s,
                CHOREO_NAME_MAX);
    return false;
  }
  return strlcpy_checked(dst, s, size) == 0;
}

/* A state into dst; settable: one this node may claim (not lost or left). */
bool cfg_get_state(struct loader *L, const struct ynode *v, const char *where,
                   char *dst, bool settable) {
  const char *s;
  if (!cfg_get_str(L, v, where, &s))
    return false;
  if (!choreo_valid_state(s)) {
    cfg_problem(L, v, where,
                "\"%s\" is not a valid state (1-%d of a-z 0-9 _ -)", s,
                CHOREO_STATE_MAX);
    return false;
  }
  if (settable && !choreo_valid_settable_state(s)) {
    cfg_problem(L, v, where, "\"%s\" is assigned by observers and can't be set",
                s);
    return false;
  }
  return strlcpy_checked(dst, s, CHOREO_STATE_MAX + 1) == 0;
}

bool cfg_get_duration(struct loader *L, const struct ynode *v,
                      const char *where, uint64_t *ms) {
  if (v->kind != Y_SCALAR || choreo_parse_duration(v->str, ms) != 0) {
    cfg_problem(L, v, where,
                "\"%s\" is not a duration (write 250ms, 5s, 2m or 24h)",
                v->kind == Y_SCALAR ? v->str : "...");
    return false;
  }
  return true;
}

bool cfg_get_uint(struct loader *L, const struct ynode *v, const char *where,
                  unsigned lo, unsigned hi, unsigned *out) {
  unsigned long long n = 0;
  const char *p = v->kind == Y_SCALAR ? v->str : "";

  if (*p == '\0' || strspn(p, "0123456789") != strlen(p)) {
    cfg_problem(L, v, where, "\"%s\" is not a whole number",
                v->kind == Y_SCALAR ? v->str : "...");
    return false;
  }
  for (; *p != '\0' && n <= hi; p++)
    n = n * 10 + (unsigned)(*p - '0');
  if (n < lo || n > hi) {
    cfg_problem(L, v, where, "%s is out of range (%u to %u)", v->str, lo, hi);
    return false;
  }
  *out = (unsigned)n;
  return true;
}

bool cfg_get_bool(struct loader *L, const struct ynode *v, const char *where,
                  bool *out) {
  static const char *const yes[] = {"true", "True", "TRUE"};
  static const char *const no[] = {"false", "False", "FALSE"};
  for (size_t i = 0; v->kind == Y_SCALAR && v->plain && i < ARRAY_SIZE(yes);
       i++) {
    if (strcmp(v->str, yes[i]) == 0 || strcmp(v->str, no[i]) == 0) {
      *out = strcmp(v->str, yes[i]) == 0;
      return true;
    }
  }
  cfg_problem(L, v, where, "expected true or false");
  return false;
}

/* A file path; relative ones resolve against the file being read. */
bool cfg_get_path(struct loader *L, const struct ynode *v, const char *where,
                  char *dst, size_t size) {
  const char *s;
  if (!cfg_get_str(L, v, where, &s))
    return false;
  if (cfg_join_path(L->dir, s, dst, size) != 0) {
    cfg_problem(L, v, where, "%s: longer than %zu bytes", s, size - 1);
    return false;
  }
  return true;
}

/* Whether v is a list (a null is an empty one); says so if it is not. */
bool cfg_get_seq(struct loader *L, const struct ynode *v, const char *where) {
  if (v->kind == Y_SEQ)
    return true;
  if (!cfg_is_null(v))
    cfg_problem(L, v, where, "expected a list");
  return false;
}

/* Whether v is a list of at most max strings (what: "groups"). */
bool cfg_get_str_list(struct loader *L, const struct ynode *v,
                      const char *where, size_t max, const char *what) {
  bool ok = true;
  if (cfg_is_null(v))
    return true;
  if (v->kind != Y_SEQ) {
    cfg_problem(L, v, where, "expected a list of strings");
    return false;
  }
  if (v->nkids > max) {
    cfg_problem(L, v, where, "at most %zu %s", max, what);
    return false;
  }
  for (size_t i = 0; i < v->nkids; i++) {
    if (!cfg_is_string(v->kids[i])) {
      cfg_problem(L, v->kids[i], where, "expected a string");
      ok = false;
    }
  }
  return ok;
}

/* ---- Mappings ---- */

/* A key must be a string; says so if k is not. */
bool cfg_key_ok(struct loader *L, const struct ynode *k, const char *where) {
  if (cfg_is_string(k))
    return true;
  cfg_problem(L, k, where, "expected a string as key");
  return false;
}

/* Whether the key at kids[i] of mapping m repeats an earlier one. */
bool cfg_dup_key(struct loader *L, const struct ynode *m, size_t i,
                 const char *where) {
  const struct ynode *k = m->kids[i];
  for (size_t j = 0; j < i; j += 2) {
    const struct ynode *first = m->kids[j];
    if (first->kind == Y_SCALAR && strcmp(first->str, k->str) == 0) {
      cfg_problem(L, k, where, "duplicate key \"%s\" (first at %u:%u)", k->str,
                  first->line, first->col);
      return true;
    }
  }
  return false;
}

static void unknown_key(struct loader *L, const struct ynode *k,
                        const char *where, const char *const *keys,
                        size_t nkeys) {
  struct strbuf b = {0};
  char *expected;
  for (size_t i = 0; i < nkeys; i++) {
    if (i > 0)
      cfg_sb_str(&b, ", ");
    cfg_sb_str(&b, keys[i]);
  }
  if ((expected = cfg_sb_take(&b)) == NULL) {
    L->nomem = true;
    return;
  }
  cfg_problem(L, k, where, "unknown key \"%s\" (expected %s)", k->str,
              expected);
  free(expected);
}

/* The index in keys[nkeys] of the key at kids[i] of mapping m, or nkeys
 * (said why) if it is unknown or already in keyn[]. */
size_t cfg_field_at(struct loader *L, const struct ynode *m, size_t i,
                    const char *where, const char *const *keys, size_t nkeys,
                    const struct ynode *const *keyn) {
  const struct ynode *k = m->kids[i];
  size_t j = 0;

  if (!cfg_key_ok(L, k, where))
    return nkeys;
  while (j < nkeys && strcmp(keys[j], k->str) != 0)
    j++;
  if (j == nkeys) {
    unknown_key(L, k, where, keys, nkeys);
  } else if (keyn[j] != NULL) {
    cfg_problem(L, k, where, "duplicate key \"%s\" (first at %u:%u)", k->str,
                keyn[j]->line, keyn[j]->col);
    return nkeys;
  }
  return j;
}

/* Check that m is a mapping (a null counts as an empty one) whose keys are
 * all in keys[nkeys], none repeated. vals[i] and keyn[i] receive the value
 * and key written for keys[i], or NULL. Returns false (said why) if m is
 * not a mapping. */
bool cfg_map_fields(struct loader *L, const struct ynode *m, const char *where,
                    const char *const *keys, size_t nkeys,
                    const struct ynode **vals, const struct ynode **keyn) {
  for (size_t i = 0; i < nkeys; i++)
    vals[i] = keyn[i] = NULL;
  if (cfg_is_null(m))
    return true;
  if (m->kind != Y_MAP) {
    cfg_problem(L, m, where, "expected a mapping");
    return false;
  }
  for (size_t i = 0; i + 1 < m->nkids; i += 2) {
    size_t j = cfg_field_at(L, m, i, where, keys, nkeys, keyn);
    if (j < nkeys) {
      keyn[j] = m->kids[i];
      vals[j] = m->kids[i + 1];
    }
  }
  return true;
}

/* ---- The control socket alone, for the command line ---- */

/* The value of key in the top-level mapping root, or NULL. The first one
 * wins: the full loader is the one that refuses duplicates. */
static const struct ynode *top_get(const struct ynode *m, const char *key) {
  if (m == NULL || m->kind != Y_MAP)
    return NULL;
  for (size_t i = 0; i + 1 < m->nkids; i += 2)
    if (m->kids[i]->kind == Y_SCALAR && strcmp(m->kids[i]->str, key) == 0)
      return m->kids[i + 1];
  return NULL;
}

/* Copy s (control.socket, written at v or NULL for the default) into
 * buf[len]. */
static int socket_fits(struct loader *L, const struct ynode *v, const char *s,
                       char *buf, size_t len) {
  size_t n = strlen(s);
  if (n <= CONFIG_SOCKET_MAX && n < len) {
    memcpy(buf, s, n + 1);
    return 0;
  }
  if (v != NULL)
    cfg_problem(L, v, "control.socket",
                "longer than %d bytes (the limit of a unix socket path)",
                CONFIG_SOCKET_MAX);
  else
    cfg_problem_at(L, L->file, 1, 1, "control.socket",
                   "the default does not fit in %zu bytes", len);
  return CHOREO_ECONFIG;
}

int config_socket_path(const char *path, char *buf, size_t len,
                       struct config_errors *errs) {
  struct loader L = {.errs = errs, .file = path};
  const struct ynode *v;
  struct ynode *root = NULL;
  const char *s = CHOREO_DEFAULT_SOCKET;
  char *text = NULL;
  size_t n;
  int rv = CHOREO_ECONFIG;

  memset(errs, 0, sizeof(*errs));
  if (strlen(path) >= CONFIG_PATH_MAX) {
    cfg_problem_at(&L, path, 1, 1, "", "path longer than %d bytes",
                   CONFIG_PATH_MAX - 1);
    return CHOREO_ECONFIG;
  }
  if (cfg_read_file(&L, path, NULL, "", &text, &n) != 0)
    return L.nomem ? CHOREO_ENOMEM : CHOREO_ECONFIG;
  if (cfg_parse_yaml(&L, text, n, &root) == 0) {
    v = top_get(top_get(root, "control"), "socket");
    if (v == NULL || cfg_get_str(&L, v, "control.socket", &s))
      rv = socket_fits(&L, v, s, buf, len);
  }
  cfg_ynode_free(root);
  free(text);
  return L.nomem ? CHOREO_ENOMEM : rv;
}
