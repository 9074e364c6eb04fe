/*
 * config.c — reads the agent's YAML configuration (SPEC.md "Configuration
 * file") and the behaviour packs it includes into struct config.
 *
 * Each file is read in two steps. libyaml's event stream is first built into
 * a small tree of nodes that keep their marks (inside a pack, with ${NAME}
 * already replaced by the include's vars); the tree is then walked against
 * the schema. Every problem is recorded as "FILE:LINE:COL: message" and the
 * walk goes on, so that `choreo check` shows them all at once; only a YAML
 * syntax error stops the file it is in. Nothing here touches the network.
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

#include "config.h"
#include "util.h"

/* ---- Comparisons used by the engine on reload ---- */

const char *config_event_name(enum config_event e) {
  switch (e) {
#define XX(id, s)                                                              \
  case CONFIG_EV_##id:                                                         \
    return s;
    CONFIG_EVENT_MAP(XX)
#undef XX
  default:
    return "unknown";
  }
}

static bool same_condition(const struct config_condition *a,
                           const struct config_condition *b) {
  if (a->kind != b->kind || a->nstates != b->nstates || a->n != b->n)
    return false;
  for (size_t i = 0; i < a->nstates; i++)
    if (strcmp(a->states[i], b->states[i]) != 0)
      return false;
  return true;
}

bool config_behaviour_same_trigger(const struct config_behaviour *a,
                                   const struct config_behaviour *b) {
  if (strcmp(a->peers.group, b->peers.group) != 0 ||
      strcmp(a->peers.node, b->peers.node) != 0)
    return false;
  if (a->has_when != b->has_when || a->on_mask != b->on_mask)
    return false;
  return !a->has_when || same_condition(&a->when, &b->when);
}

/* ---- Limits and types of the loader ---- */

#if defined(__GNUC__)
#define PRINTF_LIKE(a, b) __attribute__((format(printf, a, b)))
#else
#define PRINTF_LIKE(a, b)
#endif

#define YAML_DEPTH_MAX 64  /* nesting of mappings and lists in one file */
#define MSG_MAX 1024       /* one message, less its "FILE:LINE:COL: " */
#define WHERE_MAX 256      /* a key path such as behaviours[3].when.any */
#define VAR_NAME_MAX 64    /* an include var's name */
#define VAR_VALUE_MAX 1024 /* an include var's value */
#define EXPANDED_MAX (4 * CONFIG_FILE_MAX) /* a pack, vars replaced */
#define HEARTBEAT_MIN_MS 10 /* below this the mesh would only send beats */
#define FALL_RISE_MAX 100
#define RETRIES_MAX 10
#define FEWER_THAN_MAX 1000000

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

struct loader {
  struct config *cfg;
  struct config_errors *errs;
  bool nomem;
  const char *file;          /* the file being read, as messages name it */
  char dir[CONFIG_PATH_MAX]; /* its directory, absolute */
  struct include_ctx *inc;   /* NULL in the main file */
  bool name_set;             /* node.name was written */
  size_t bcap, ccap;         /* room in cfg->behaviours and cfg->checks */
  size_t expanded;           /* bytes of the pack's scalars, vars replaced */
  size_t nseen;
  struct seen_include seen[CONFIG_INCLUDES_MAX];
};

/* ---- Strings ---- */

struct strbuf {
  char *s;
  size_t len, cap;
  bool nomem;
};

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

static void sb_str(struct strbuf *b, const char *s) {
  sb_add(b, s, strlen(s));
}

/* The built string (owned by the caller), or NULL when out of memory. */
static char *sb_take(struct strbuf *b) {
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
static char *dup_printf(const char *fmt, ...) {
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
static const char *sub(char *buf, const char *where, const char *key) {
  return where_fit(
      buf, snprintf(buf, WHERE_MAX, "%s%s%s", where, where[0] ? "." : "", key));
}

static const char *nth(char *buf, const char *where, size_t i) {
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
  msg = dup_printf("%s:%u:%u: %s%s%s", file, line, col, where,
                   where[0] ? ": " : "", body);
  if (msg == NULL) {
    L->nomem = true;
    return;
  }
  e->msg[e->n++] = msg;
}

/* A problem at an explicit place. */
PRINTF_LIKE(6, 7)
static void problem_at(struct loader *L, const char *file, unsigned line,
                       unsigned col, const char *where, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  record(L, file, line, col, where, fmt, ap);
  va_end(ap);
}

/* A problem at node `at` of the file being read; where is its key path. */
PRINTF_LIKE(4, 5)
static void problem(struct loader *L, const struct ynode *at, const char *where,
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
static int read_file(struct loader *L, const char *path, const struct ynode *at,
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
    problem(L, at, where, "%s: %s", path, why);
  else
    problem_at(L, path, 1, 1, "", "%s", why);
  return rv;
}

/* The absolute directory of file, against which relative paths written in
 * it resolve. Returns 0, or -1 if it does not fit in dir[size]. */
static int dir_of(const char *file, char *dir, size_t size) {
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
static int join_path(const char *dir, const char *path, char *out,
                     size_t size) {
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

/* NULL if file can be executed, else why not. */
static const char *exec_problem(const char *file) {
  struct stat st;
  if (stat(file, &st) != 0)
    return errno == ENOENT || errno == ENOTDIR ? "no such file"
                                               : strerror(errno);
  if (S_ISDIR(st.st_mode))
    return "is a directory";
  if (!S_ISREG(st.st_mode))
    return "is not a regular file";
  if (access(file, X_OK) != 0)
    return "is not executable";
  return NULL;
}

/* Whether an executable called name is in one of $PATH's directories, the
 * way execvp() would look for it. */
static bool in_path(const char *name) {
  const char *p = getenv("PATH"), *end;
  char file[CONFIG_PATH_MAX];
  size_t len;
  int n;

  if (p == NULL)
    p = "/usr/local/bin:/usr/bin:/bin";
  for (;; p = end + 1) {
    end = strchr(p, ':');
    len = end != NULL ? (size_t)(end - p) : strlen(p);
    if (len == 0)
      n = snprintf(file, sizeof(file), "./%s", name);
    else
      n = snprintf(file, sizeof(file), "%.*s/%s", (int)len, p, name);
    if (n > 0 && (size_t)n < sizeof(file) && exec_problem(file) == NULL)
      return true;
    if (end == NULL)
      return false;
  }
}

/* ---- YAML into a tree of nodes ---- */

static void ynode_free(struct ynode *n) {
  if (n == NULL)
    return;
  for (size_t i = 0; i < n->nkids; i++)
    ynode_free(n->kids[i]);
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
  problem_at(B->L, B->L->file, line, col, "", "invalid YAML: %s%s%s",
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
      sb_str(b, inc->value[i]->str);
      inc->used[i] = true;
      return;
    }
  }
  problem(L, at, "", "${%.*s} has no value (include at %s:%u:%u)", (int)len,
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
    problem(L, n, "", "the file grows beyond %d bytes once vars are replaced",
            EXPANDED_MAX);
  L->expanded = b.len > room ? EXPANDED_MAX : L->expanded + b.len;
  n->str = sb_take(&b);
  return n->str != NULL ? 0 : -1;
}

static int make_scalar(struct builder *B, const yaml_event_t *ev,
                       struct ynode *n) {
  const char *v = (const char *)ev->data.scalar.value;
  size_t len = ev->data.scalar.length;

  n->kind = Y_SCALAR;
  n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
  if (memchr(v, '\0', len) != NULL) {
    problem(B->L, n, "", "a NUL character (\\0) can't be used here");
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
  problem(B->L, n, "",
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
      ynode_free(kid);
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
    problem(B->L, n, "", "nested deeper than %d levels", YAML_DEPTH_MAX);
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
static int parse_yaml(struct loader *L, const char *buf, size_t len,
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
      problem_at(L, L->file, (unsigned)ev.start_mark.line + 1,
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
    ynode_free(*root);
    *root = NULL;
  }
  return rv;
}

/* ---- Values ---- */

static bool is_null(const struct ynode *n) {
  static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
  if (n->kind != Y_SCALAR || !n->plain)
    return false;
  for (size_t i = 0; i < ARRAY_SIZE(nulls); i++)
    if (strcmp(n->str, nulls[i]) == 0)
      return true;
  return false;
}

static bool is_string(const struct ynode *n) {
  return n->kind == Y_SCALAR && !is_null(n);
}

static bool get_str(struct loader *L, const struct ynode *v, const char *where,
                    const char **out) {
  if (!is_string(v)) {
    problem(L, v, where, "expected a string");
    return false;
  }
  *out = v->str;
  return true;
}

/* A node, group, cluster, behaviour or check name into dst[size]. */
static bool get_name(struct loader *L, const struct ynode *v, const char *where,
                     char *dst, size_t size) {
  const char *s;
  if (!get_str(L, v, where, &s))
    return false;
  if (!choreo_valid_name(s) || strlen(s) >= size) {
    problem(L, v, where,
            "\"%s\" is not a valid name (1-%d of A-Z a-z 0-9 . _ -)", s,
            CHOREO_NAME_MAX);
    return false;
  }
  return strlcpy_checked(dst, s, size) == 0;
}

static bool observer_state(const char *s) {
  return strcmp(s, "lost") == 0 || strcmp(s, "left") == 0;
}

/* A state into dst; settable: one this node may claim (not lost or left). */
static bool get_state(struct loader *L, const struct ynode *v,
                      const char *where, char *dst, bool settable) {
  const char *s;
  if (!get_str(L, v, where, &s))
    return false;
  if (!choreo_valid_state(s)) {
    problem(L, v, where, "\"%s\" is not a valid state (1-%d of a-z 0-9 _ -)", s,
            CHOREO_STATE_MAX);
    return false;
  }
  if (settable && observer_state(s)) {
    problem(L, v, where, "\"%s\" is assigned by observers and can't be set", s);
    return false;
  }
  return strlcpy_checked(dst, s, CHOREO_STATE_MAX + 1) == 0;
}

static bool get_duration(struct loader *L, const struct ynode *v,
                         const char *where, uint64_t *ms) {
  if (v->kind != Y_SCALAR || choreo_parse_duration(v->str, ms) != 0) {
    problem(L, v, where,
            "\"%s\" is not a duration (write 250ms, 5s, 2m or 24h)",
            v->kind == Y_SCALAR ? v->str : "...");
    return false;
  }
  return true;
}

static bool get_uint(struct loader *L, const struct ynode *v, const char *where,
                     unsigned lo, unsigned hi, unsigned *out) {
  unsigned long long n = 0;
  const char *p = v->kind == Y_SCALAR ? v->str : "";

  if (*p == '\0' || strspn(p, "0123456789") != strlen(p)) {
    problem(L, v, where, "\"%s\" is not a whole number",
            v->kind == Y_SCALAR ? v->str : "...");
    return false;
  }
  for (; *p != '\0' && n <= hi; p++)
    n = n * 10 + (unsigned)(*p - '0');
  if (n < lo || n > hi) {
    problem(L, v, where, "%s is out of range (%u to %u)", v->str, lo, hi);
    return false;
  }
  *out = (unsigned)n;
  return true;
}

static bool get_bool(struct loader *L, const struct ynode *v, const char *where,
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
  problem(L, v, where, "expected true or false");
  return false;
}

/* A file path; relative ones resolve against the file being read. */
static bool get_path(struct loader *L, const struct ynode *v, const char *where,
                     char *dst, size_t size) {
  const char *s;
  if (!get_str(L, v, where, &s))
    return false;
  if (join_path(L->dir, s, dst, size) != 0) {
    problem(L, v, where, "%s: longer than %zu bytes", s, size - 1);
    return false;
  }
  return true;
}

/* Whether v is a list (a null is an empty one); says so if it is not. */
static bool get_seq(struct loader *L, const struct ynode *v,
                    const char *where) {
  if (v->kind == Y_SEQ)
    return true;
  if (!is_null(v))
    problem(L, v, where, "expected a list");
  return false;
}

/* Whether v is a list of at most max strings (what: "groups"). */
static bool get_str_list(struct loader *L, const struct ynode *v,
                         const char *where, size_t max, const char *what) {
  bool ok = true;
  if (is_null(v))
    return true;
  if (v->kind != Y_SEQ) {
    problem(L, v, where, "expected a list of strings");
    return false;
  }
  if (v->nkids > max) {
    problem(L, v, where, "at most %zu %s", max, what);
    return false;
  }
  for (size_t i = 0; i < v->nkids; i++) {
    if (!is_string(v->kids[i])) {
      problem(L, v->kids[i], where, "expected a string");
      ok = false;
    }
  }
  return ok;
}

/* ---- Mappings ---- */

/* A key must be a string; says so if k is not. */
static bool key_ok(struct loader *L, const struct ynode *k, const char *where) {
  if (is_string(k))
    return true;
  problem(L, k, where, "expected a string as key");
  return false;
}

/* Whether the key at kids[i] of mapping m repeats an earlier one. */
static bool dup_key(struct loader *L, const struct ynode *m, size_t i,
                    const char *where) {
  const struct ynode *k = m->kids[i];
  for (size_t j = 0; j < i; j += 2) {
    const struct ynode *first = m->kids[j];
    if (first->kind == Y_SCALAR && strcmp(first->str, k->str) == 0) {
      problem(L, k, where, "duplicate key \"%s\" (first at %u:%u)", k->str,
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
      sb_str(&b, ", ");
    sb_str(&b, keys[i]);
  }
  if ((expected = sb_take(&b)) == NULL) {
    L->nomem = true;
    return;
  }
  problem(L, k, where, "unknown key \"%s\" (expected %s)", k->str, expected);
  free(expected);
}

/* The index in keys[nkeys] of the key at kids[i] of mapping m, or nkeys
 * (said why) if it is unknown or already in keyn[]. */
static size_t field_at(struct loader *L, const struct ynode *m, size_t i,
                       const char *where, const char *const *keys, size_t nkeys,
                       const struct ynode *const *keyn) {
  const struct ynode *k = m->kids[i];
  size_t j = 0;

  if (!key_ok(L, k, where))
    return nkeys;
  while (j < nkeys && strcmp(keys[j], k->str) != 0)
    j++;
  if (j == nkeys) {
    unknown_key(L, k, where, keys, nkeys);
  } else if (keyn[j] != NULL) {
    problem(L, k, where, "duplicate key \"%s\" (first at %u:%u)", k->str,
            keyn[j]->line, keyn[j]->col);
    return nkeys;
  }
  return j;
}

/* Check that m is a mapping (a null counts as an empty one) whose keys are
 * all in keys[nkeys], none repeated. vals[i] and keyn[i] receive the value
 * and key written for keys[i], or NULL. Returns false (said why) if m is
 * not a mapping. */
static bool map_fields(struct loader *L, const struct ynode *m,
                       const char *where, const char *const *keys, size_t nkeys,
                       const struct ynode **vals, const struct ynode **keyn) {
  for (size_t i = 0; i < nkeys; i++)
    vals[i] = keyn[i] = NULL;
  if (is_null(m))
    return true;
  if (m->kind != Y_MAP) {
    problem(L, m, where, "expected a mapping");
    return false;
  }
  for (size_t i = 0; i + 1 < m->nkids; i += 2) {
    size_t j = field_at(L, m, i, where, keys, nkeys, keyn);
    if (j < nkeys) {
      keyn[j] = m->kids[i];
      vals[j] = m->kids[i + 1];
    }
  }
  return true;
}

/* ---- node ---- */

enum { NODE_NAME, NODE_CLUSTER, NODE_GROUPS, NODE_STATE, NODE_DATA, NODE__N };
static const char *const node_keys[] = {"name", "cluster", "groups", "state",
                                        "data"};
_Static_assert(ARRAY_SIZE(node_keys) == NODE__N, "node_keys");

static void parse_groups(struct loader *L, const struct ynode *v) {
  struct config *cfg = L->cfg;
  const char *where = "node.groups";

  if (is_null(v) || !get_str_list(L, v, where, CHOREO_GROUPS_MAX, "groups"))
    return;
  for (size_t i = 0; i < v->nkids; i++) {
    const struct ynode *g = v->kids[i];
    size_t j = 0;
    while (j < cfg->ngroups && strcmp(cfg->groups[j], g->str) != 0)
      j++;
    if (j < cfg->ngroups)
      problem(L, g, where, "duplicate group \"%s\"", g->str);
    else if (get_name(L, g, where, cfg->groups[j], CHOREO_NAME_MAX + 1))
      cfg->ngroups++;
  }
}

/* One data pair: the key at kids[i] of m and its value. */
static void parse_datum(struct loader *L, const struct ynode *m, size_t i) {
  const struct ynode *k = m->kids[i], *v = m->kids[i + 1];
  const char *where = "node.data", *s;
  char w[WHERE_MAX];

  if (!key_ok(L, k, where) || dup_key(L, m, i, where))
    return;
  if (!choreo_valid_data_key(k->str)) {
    problem(L, k, where,
            "\"%s\" is not a valid data key (1-%d of a-z 0-9 _ . -)", k->str,
            CHOREO_DATA_KEY_MAX);
    return;
  }
  if (!get_str(L, v, sub(w, where, k->str), &s))
    return;
  if (!choreo_valid_text(s, CHOREO_DATA_VALUE_MAX)) {
    problem(L, v, w, "longer than %d bytes or not UTF-8",
            CHOREO_DATA_VALUE_MAX);
    return;
  }
  if (json_object_set_new(L->cfg->data, k->str, json_string(s)) != 0)
    L->nomem = true;
}

static void parse_data(struct loader *L, const struct ynode *m) {
  if (is_null(m))
    return;
  if (m->kind != Y_MAP) {
    problem(L, m, "node.data", "expected a mapping of keys to strings");
    return;
  }
  if (m->nkids / 2 > CHOREO_DATA_KEYS_MAX) {
    problem(L, m, "node.data", "at most %d keys", CHOREO_DATA_KEYS_MAX);
    return;
  }
  for (size_t i = 0; i + 1 < m->nkids; i += 2)
    parse_datum(L, m, i);
}

static void parse_node(struct loader *L, const struct ynode *m) {
  const struct ynode *v[NODE__N], *k[NODE__N];
  struct config *cfg = L->cfg;

  if (!map_fields(L, m, "node", node_keys, NODE__N, v, k))
    return;
  if (v[NODE_NAME] != NULL) {
    L->name_set = true;
    get_name(L, v[NODE_NAME], "node.name", cfg->name, sizeof(cfg->name));
  }
  if (v[NODE_CLUSTER] != NULL)
    get_name(L, v[NODE_CLUSTER], "node.cluster", cfg->cluster,
             sizeof(cfg->cluster));
  if (v[NODE_GROUPS] != NULL)
    parse_groups(L, v[NODE_GROUPS]);
  if (v[NODE_STATE] != NULL)
    get_state(L, v[NODE_STATE], "node.state", cfg->state, true);
  if (v[NODE_DATA] != NULL)
    parse_data(L, v[NODE_DATA]);
}

/* The host name when node.name is not given. */
static void default_name(struct loader *L) {
  char host[256];
  if (L->name_set)
    return;
  if (gethostname(host, sizeof(host)) != 0)
    host[0] = '\0';
  host[sizeof(host) - 1] = '\0';
  if (!choreo_valid_name(host) ||
      strlcpy_checked(L->cfg->name, host, sizeof(L->cfg->name)) != 0)
    problem_at(L, L->file, 1, 1, "node.name",
               "the host name \"%s\" is not a valid node name; set node.name",
               host);
}

/* ---- network ---- */

struct addr {
  bool tcp;
  char host[CHOREO_ADDR_MAX + 1];
};

static bool valid_port(const char *p) {
  unsigned long n = 0;
  size_t len = strlen(p);
  if (len == 0 || len > 5 || strspn(p, "0123456789") != len)
    return false;
  for (; *p != '\0'; p++)
    n = n * 10 + (unsigned long)(*p - '0');
  return n >= 1 && n <= 65535;
}

/* NULL if s is an address nanomsg can use (its parts in *a), else what is
 * wrong with it. */
static const char *addr_parse(const char *s, struct addr *a) {
  const char *rest, *colon;

  memset(a, 0, sizeof(*a));
  if (strlen(s) > CHOREO_ADDR_MAX)
    return "longer than 256 characters";
  if (strncmp(s, "ipc://", 6) == 0 || strncmp(s, "inproc://", 9) == 0)
    return strstr(s, "://")[3] == '\0' ? "needs a path or a name" : NULL;
  if (strncmp(s, "tcp://", 6) != 0)
    return "write tcp://HOST:PORT, ipc://PATH or inproc://NAME";
  rest = s + strlen("tcp://");
  if ((colon = strrchr(rest, ':')) == NULL)
    return "needs a port (tcp://HOST:PORT)";
  if (colon == rest)
    return "needs a host (tcp://HOST:PORT)";
  if (!valid_port(colon + 1))
    return "the port must be a number from 1 to 65535";
  a->tcp = true;
  memcpy(a->host, rest, (size_t)(colon - rest));
  return NULL;
}

static bool addr_wildcard(const struct addr *a) {
  return a->tcp && (strcmp(a->host, "0.0.0.0") == 0 ||
                    strcmp(a->host, "*") == 0 || strcmp(a->host, "[::]") == 0);
}

/* Only this machine can reach it: ipc, inproc or a loopback tcp host. */
static bool addr_local(const struct addr *a) {
  return !a->tcp || strncmp(a->host, "127.", 4) == 0 ||
         strcmp(a->host, "localhost") == 0 || strcmp(a->host, "[::1]") == 0;
}

/* An address into dst; dial: one that peers dial, so not a wildcard. */
static bool get_addr(struct loader *L, const struct ynode *v, const char *where,
                     char *dst, bool dial) {
  struct addr a;
  const char *s, *why;

  if (!get_str(L, v, where, &s))
    return false;
  if ((why = addr_parse(s, &a)) != NULL) {
    problem(L, v, where, "\"%s\" is not a valid address: %s", s, why);
    return false;
  }
  if (dial && addr_wildcard(&a)) {
    problem(L, v, where, "%s is a wildcard; peers need an address to dial", s);
    return false;
  }
  return strlcpy_checked(dst, s, CHOREO_ADDR_MAX + 1) == 0;
}

static void parse_join(struct loader *L, const struct ynode *v) {
  struct config *cfg = L->cfg;
  if (!get_str_list(L, v, "network.join", CONFIG_JOIN_MAX, "addresses") ||
      is_null(v))
    return;
  for (size_t i = 0; i < v->nkids; i++)
    if (get_addr(L, v->kids[i], "network.join", cfg->join[cfg->njoin], true))
      cfg->njoin++;
}

enum {
  NET_LISTEN,
  NET_ADVERTISE,
  NET_JOIN,
  NET_HEARTBEAT,
  NET_LOST_AFTER,
  NET_KEY_FILE,
  NET_INSECURE,
  NET_REAP_AFTER,
  NET__N
};
static const char *const network_keys[] = {
    "listen",     "advertise", "join",     "heartbeat",
    "lost_after", "key_file",  "insecure", "reap_after"};
_Static_assert(ARRAY_SIZE(network_keys) == NET__N, "network_keys");

/* Format ms the way it would be written, e.g. "1s" or "1500ms". */
static const char *fmt_ms(uint64_t ms, char *buf, size_t size) {
  if (ms != 0 && ms % 3600000 == 0)
    snprintf(buf, size, "%lluh", (unsigned long long)(ms / 3600000));
  else if (ms != 0 && ms % 60000 == 0)
    snprintf(buf, size, "%llum", (unsigned long long)(ms / 60000));
  else if (ms != 0 && ms % 1000 == 0)
    snprintf(buf, size, "%llus", (unsigned long long)(ms / 1000));
  else
    snprintf(buf, size, "%llums", (unsigned long long)ms);
  return buf;
}

/* heartbeat and lost_after, both given or default, once both are valid. */
static void check_timing(struct loader *L, const struct ynode *hb,
                         const struct ynode *lost) {
  struct config *cfg = L->cfg;
  char t[32];

  if (hb != NULL && cfg->heartbeat_ms < HEARTBEAT_MIN_MS)
    problem(L, hb, "network.heartbeat", "must be at least %dms",
            HEARTBEAT_MIN_MS);
  else if (cfg->lost_after_ms > cfg->heartbeat_ms)
    return;
  else if (lost != NULL)
    problem(L, lost, "network.lost_after",
            "must be longer than network.heartbeat (%s)",
            fmt_ms(cfg->heartbeat_ms, t, sizeof(t)));
  else
    problem(L, hb, "network.heartbeat",
            "must be shorter than network.lost_after (%s)",
            fmt_ms(cfg->lost_after_ms, t, sizeof(t)));
}

/* advertise's default, and SPEC.md "Security": no clear text off this
 * machine unless the operator says so. */
static void check_listen(struct loader *L, const struct ynode *listen,
                         bool advertise, bool key, bool insecure) {
  struct config *cfg = L->cfg;
  struct addr a;

  addr_parse(cfg->listen, &a);
  if (!advertise && addr_wildcard(&a))
    problem(L, listen, "network.advertise",
            "required when network.listen is a wildcard (%s): write the "
            "address peers dial, e.g. tcp://10.0.0.5:7410",
            cfg->listen);
  else if (!advertise)
    memcpy(cfg->advertise, cfg->listen, sizeof(cfg->advertise));
  if (!key && !insecure && !addr_local(&a))
    problem(L, listen, "network.listen",
            "%s is not a loopback address and there is no network.key_file: "
            "set network.key_file (see choreo keygen), or network.insecure: "
            "true to accept unencrypted traffic",
            cfg->listen);
}

static void parse_network(struct loader *L, const struct ynode *m) {
  const struct ynode *v[NET__N], *k[NET__N];
  struct config *cfg = L->cfg;
  bool listen_ok = true, timing_ok = true, insecure_ok = true;

  if (!map_fields(L, m, "network", network_keys, NET__N, v, k))
    return;
  if (v[NET_LISTEN] != NULL)
    listen_ok =
        get_addr(L, v[NET_LISTEN], "network.listen", cfg->listen, false);
  if (v[NET_ADVERTISE] != NULL)
    get_addr(L, v[NET_ADVERTISE], "network.advertise", cfg->advertise, true);
  if (v[NET_JOIN] != NULL)
    parse_join(L, v[NET_JOIN]);
  if (v[NET_HEARTBEAT] != NULL)
    timing_ok &= get_duration(L, v[NET_HEARTBEAT], "network.heartbeat",
                              &cfg->heartbeat_ms);
  if (v[NET_LOST_AFTER] != NULL)
    timing_ok &= get_duration(L, v[NET_LOST_AFTER], "network.lost_after",
                              &cfg->lost_after_ms);
  if (v[NET_REAP_AFTER] != NULL)
    get_duration(L, v[NET_REAP_AFTER], "network.reap_after",
                 &cfg->reap_after_ms);
  if (v[NET_KEY_FILE] != NULL)
    get_path(L, v[NET_KEY_FILE], "network.key_file", cfg->key_file,
             sizeof(cfg->key_file));
  if (v[NET_INSECURE] != NULL)
    insecure_ok =
        get_bool(L, v[NET_INSECURE], "network.insecure", &cfg->insecure);
  if (timing_ok)
    check_timing(L, v[NET_HEARTBEAT], v[NET_LOST_AFTER]);
  if (listen_ok)
    check_listen(L, v[NET_LISTEN], v[NET_ADVERTISE] != NULL,
                 v[NET_KEY_FILE] != NULL, cfg->insecure || !insecure_ok);
}

/* ---- control and state_dir ---- */

enum { CTL_SOCKET, CTL_MODE, CTL__N };
static const char *const control_keys[] = {"socket", "mode"};
_Static_assert(ARRAY_SIZE(control_keys) == CTL__N, "control_keys");

/* A file mode in octal, as chmod takes it: "0660" or 0660. */
static void parse_mode(struct loader *L, const struct ynode *v) {
  const char *s, *p;
  unsigned mode = 0;

  if (!get_str(L, v, "control.mode", &s))
    return;
  for (p = s; *p == '0' && p[1] != '\0'; p++)
    ;
  if (*p == '\0' || strlen(p) > 3 || strspn(p, "01234567") != strlen(p)) {
    problem(L, v, "control.mode",
            "\"%s\" is not a file mode (write it in octal, e.g. \"0660\")", s);
    return;
  }
  for (; *p != '\0'; p++)
    mode = mode * 8 + (unsigned)(*p - '0');
  L->cfg->socket_mode = mode;
}

static void parse_control(struct loader *L, const struct ynode *m) {
  const struct ynode *v[CTL__N], *k[CTL__N];
  struct config *cfg = L->cfg;
  const char *s;

  if (!map_fields(L, m, "control", control_keys, CTL__N, v, k))
    return;
  if (v[CTL_SOCKET] != NULL &&
      get_str(L, v[CTL_SOCKET], "control.socket", &s) &&
      strlcpy_checked(cfg->socket, s, sizeof(cfg->socket)) != 0)
    problem(L, v[CTL_SOCKET], "control.socket",
            "longer than %d bytes (the limit of a unix socket path)",
            CONFIG_SOCKET_MAX);
  if (v[CTL_MODE] != NULL)
    parse_mode(L, v[CTL_MODE]);
}

/* ---- Commands ---- */

static void argv_free(struct config_argv *a) {
  for (size_t i = 0; i < a->argc; i++)
    free(a->argv[i]);
  free(a->argv);
  a->argv = NULL;
  a->argc = 0;
}

static void strv_free(char **v, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

/* Make *cmd (argv[0]) absolute if it is a relative path and check that it
 * can be run; a bare name must be found in $PATH. */
static void resolve_command(struct loader *L, const struct ynode *at,
                            const char *where, char **cmd) {
  char full[CONFIG_PATH_MAX], *abs;
  const char *why;

  if ((*cmd)[0] == '\0') {
    problem(L, at, where, "the command is empty");
    return;
  }
  if (strchr(*cmd, '/') == NULL) {
    if (!in_path(*cmd))
      problem(L, at, where, "%s: not found in PATH", *cmd);
    return;
  }
  if ((*cmd)[0] != '/') {
    if (join_path(L->dir, *cmd, full, sizeof(full)) != 0) {
      problem(L, at, where, "%s: path too long", *cmd);
      return;
    }
    if ((abs = strdup(full)) == NULL) {
      L->nomem = true;
      return;
    }
    free(*cmd);
    *cmd = abs;
  }
  if ((why = exec_problem(*cmd)) != NULL)
    problem(L, at, where, "%s: %s", *cmd, why);
}

/* Item i of a command written as a list, or the command as one string. */
static const struct ynode *argv_item(const struct ynode *v, size_t i) {
  return v->kind == Y_SEQ ? v->kids[i] : v;
}

/* A command: a list of 1 to CONFIG_ARGV_MAX strings, or one string. Any
 * scalar is an argument ("null" and "true" included); argv[0] is not. */
static void parse_argv(struct loader *L, const struct ynode *v,
                       const char *where, struct config_argv *out) {
  size_t n = v->kind == Y_SEQ ? v->nkids : 1;
  bool ok = true;

  if (v->kind == Y_MAP || is_null(v) || n == 0 || n > CONFIG_ARGV_MAX) {
    problem(L, v, where, "expected a command: a list of 1 to %d strings",
            CONFIG_ARGV_MAX);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    const struct ynode *it = argv_item(v, i);
    if (i == 0 ? !is_string(it) : it->kind != Y_SCALAR) {
      problem(L, it, where, "expected a string");
      ok = false;
    }
  }
  if (!ok)
    return;
  if ((out->argv = calloc(n + 1, sizeof(char *))) == NULL) {
    L->nomem = true;
    return;
  }
  out->argc = n;
  for (size_t i = 0; i < n; i++) {
    if ((out->argv[i] = strdup(argv_item(v, i)->str)) == NULL) {
      L->nomem = true;
      return;
    }
  }
  resolve_command(L, argv_item(v, 0), where, &out->argv[0]);
}

/* "CHOREO_VAR_NAME=value" for each var of the include being read. */
static void copy_vars(struct loader *L, size_t *nvars, char ***vars) {
  const struct include_ctx *inc = L->inc;
  if (inc == NULL || inc->nvars == 0)
    return;
  if ((*vars = calloc(inc->nvars, sizeof(char *))) == NULL) {
    L->nomem = true;
    return;
  }
  *nvars = inc->nvars;
  for (size_t i = 0; i < inc->nvars; i++) {
    (*vars)[i] =
        dup_printf("CHOREO_VAR_%s=%s", inc->name[i]->str, inc->value[i]->str);
    if ((*vars)[i] == NULL)
      L->nomem = true;
  }
}

static void set_mark(struct loader *L, const struct ynode *n,
                     struct config_mark *m) {
  snprintf(m->file, sizeof(m->file), "%s", L->file);
  m->line = n->line;
  m->col = n->col;
}

/* ---- Conditions and events ---- */

enum { W_ANY, W_ALL, W_NONE, W_FEWER_THAN, W_STATE, W__N };
static const char *const when_keys[] = {"any", "all", "none", "fewer_than",
                                        "state"};
_Static_assert(ARRAY_SIZE(when_keys) == W__N, "when_keys");

/* Is state among the first n states of c? */
static bool states_has(const struct config_condition *c, size_t n,
                       const char *state) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(c->states[i], state) == 0)
      return true;
  return false;
}

/* S, or a list of 1 to CONFIG_STATES_MAX states meaning "one of". */
static void parse_states(struct loader *L, const struct ynode *v,
                         const char *where, struct config_condition *c) {
  size_t n = v->kind == Y_SEQ ? v->nkids : 1;

  if (v->kind == Y_MAP || n == 0 || n > CONFIG_STATES_MAX) {
    problem(L, v, where, "expected a state or a list of 1 to %d states",
            CONFIG_STATES_MAX);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    const struct ynode *it = argv_item(v, i);
    if (!get_state(L, it, where, c->states[c->nstates], false))
      continue;
    /* Peers that left are not watched: "left" can never be counted, so
     * the condition would be constant. on: [left] is what reacts to it. */
    if (strcmp(c->states[c->nstates], "left") == 0)
      problem(L, it, where,
              "\"left\" never matches: peers that left are not watched (to "
              "react to a leave, use on: [left])");
    else if (c->nstates > 0 && states_has(c, c->nstates, c->states[c->nstates]))
      problem(L, it, where, "\"%s\" is listed twice", it->str);
    else
      c->nstates++;
  }
}

/* The one condition of when: any, all, none or fewer_than (with state). */
static void pick_condition(struct loader *L, const struct ynode *m,
                           const struct ynode **k, const char *where,
                           int *kind) {
  *kind = -1;
  for (int i = W_ANY; i <= W_FEWER_THAN; i++) {
    if (k[i] == NULL)
      continue;
    if (*kind >= 0) {
      problem(L, k[i], where,
              "%s can't be combined with %s; write one condition", when_keys[i],
              when_keys[*kind]);
      *kind = -2;
      return;
    }
    *kind = i;
  }
  if (*kind == -1)
    problem(L, m, where, "expected one of any, all, none or fewer_than");
}

static void parse_when(struct loader *L, const struct ynode *m,
                       const char *where, struct config_condition *c) {
  static const enum config_cond_kind kinds[] = {COND_ANY, COND_ALL, COND_NONE,
                                                COND_FEWER_THAN};
  const struct ynode *v[W__N], *k[W__N];
  char w[WHERE_MAX];
  int kind;

  if (!map_fields(L, m, where, when_keys, W__N, v, k))
    return;
  pick_condition(L, m, k, where, &kind);
  if (kind < 0)
    return;
  c->kind = kinds[kind];
  if (kind != W_FEWER_THAN) {
    parse_states(L, v[kind], sub(w, where, when_keys[kind]), c);
    if (k[W_STATE] != NULL)
      problem(L, k[W_STATE], sub(w, where, "state"),
              "only goes with fewer_than");
    return;
  }
  if (get_uint(L, v[W_FEWER_THAN], sub(w, where, "fewer_than"), 0,
               FEWER_THAN_MAX, &c->n) &&
      c->n == 0)
    problem(L, v[W_FEWER_THAN], w,
            "0 can never be true (fewer than 0 peers); write 1 or more");
  if (v[W_STATE] == NULL)
    problem(L, m, where, "fewer_than needs state: the state to count");
  else
    parse_states(L, v[W_STATE], sub(w, where, "state"), c);
}

/* The event called name, other than change; CONFIG_EV__COUNT if none. */
static enum config_event find_event(const char *name) {
  for (int e = 0; e < CONFIG_EV__COUNT; e++)
    if (e != CONFIG_EV_CHANGE && strcmp(name, config_event_name(e)) == 0)
      return (enum config_event)e;
  return CONFIG_EV__COUNT;
}

static void unknown_event(struct loader *L, const struct ynode *v,
                          const char *where) {
  problem(L, v, where,
          "unknown event \"%s\" (expected change, or a list of joined, left, "
          "lost, state, data)",
          v->str);
}

/* on: change, one event, or a list of events other than change. */
static void parse_on(struct loader *L, const struct ynode *v, const char *where,
                     unsigned *mask) {
  size_t n = v->kind == Y_SEQ ? v->nkids : 1;

  if (v->kind == Y_MAP || n == 0) {
    problem(L, v, where, "expected change, or a list of events");
    return;
  }
  for (size_t i = 0; i < n; i++) {
    const struct ynode *it = argv_item(v, i);
    enum config_event e;
    if (!is_string(it)) {
      problem(L, it, where, "expected a string");
      continue;
    }
    if (strcmp(it->str, "change") == 0 && n > 1)
      problem(L, it, where,
              "change can't be combined with other events (write on: change, "
              "or list only joined, left, lost, state, data)");
    else if (strcmp(it->str, "change") == 0)
      *mask |= CONFIG_EV_BIT(CONFIG_EV_CHANGE);
    else if ((e = find_event(it->str)) == CONFIG_EV__COUNT)
      unknown_event(L, it, where);
    else if ((*mask & CONFIG_EV_BIT(e)) != 0)
      problem(L, it, where, "\"%s\" is listed twice", it->str);
    else
      *mask |= CONFIG_EV_BIT(e);
  }
}

/* ---- behaviours ---- */

enum {
  B_NAME,
  B_PEERS,
  B_WHEN,
  B_ON,
  B_RUN,
  B_REVERT,
  B_STATE,
  B_SETTLE,
  B_TIMEOUT,
  B_RETRIES,
  B__N
};
static const char *const behaviour_keys[] = {
    "name",   "peers", "when",   "on",      "run",
    "revert", "state", "settle", "timeout", "retries"};
_Static_assert(ARRAY_SIZE(behaviour_keys) == B__N, "behaviour_keys");

enum { SEL_GROUP, SEL_NODE, SEL__N };
static const char *const selector_keys[] = {"group", "node"};

static void parse_selector(struct loader *L, const struct ynode *m,
                           const char *where, struct config_selector *sel) {
  const struct ynode *v[SEL__N], *k[SEL__N];
  char w[WHERE_MAX];

  if (!map_fields(L, m, where, selector_keys, SEL__N, v, k))
    return;
  if (v[SEL_GROUP] != NULL)
    get_name(L, v[SEL_GROUP], sub(w, where, "group"), sel->group,
             sizeof(sel->group));
  if (v[SEL_NODE] != NULL)
    get_name(L, v[SEL_NODE], sub(w, where, "node"), sel->node,
             sizeof(sel->node));
}

/* The name, unique among every behaviour read so far. */
static void behaviour_name(struct loader *L, const struct ynode *m,
                           const struct ynode *v, const char *where,
                           struct config_behaviour *b) {
  const struct config *cfg = L->cfg;
  char w[WHERE_MAX];

  if (v == NULL) {
    problem(L, m, where, "\"name\" is required");
    return;
  }
  if (!get_name(L, v, sub(w, where, "name"), b->name, sizeof(b->name)))
    return;
  for (const struct config_behaviour *o = cfg->behaviours; o != b; o++) {
    if (strcmp(o->name, b->name) == 0) {
      problem(L, v, w, "duplicate behaviour name \"%s\" (first at %s:%u:%u)",
              b->name, o->mark.file, o->mark.line, o->mark.col);
      return;
    }
  }
}

/* peers, and when (a condition) or on (events): exactly one of them. */
static void behaviour_trigger(struct loader *L, const struct ynode *m,
                              const struct ynode **v, const struct ynode **k,
                              const char *where, struct config_behaviour *b) {
  char w[WHERE_MAX];

  if (v[B_PEERS] != NULL)
    parse_selector(L, v[B_PEERS], sub(w, where, "peers"), &b->peers);
  if (v[B_WHEN] != NULL && v[B_ON] != NULL) {
    problem(L, k[B_ON], where,
            "has both when and on; react to a condition (when) or to "
            "events (on), not both");
  } else if (v[B_WHEN] != NULL) {
    b->has_when = true;
    parse_when(L, v[B_WHEN], sub(w, where, "when"), &b->when);
  } else if (v[B_ON] != NULL) {
    parse_on(L, v[B_ON], sub(w, where, "on"), &b->on_mask);
  } else {
    problem(L, m, where, "needs when (a condition) or on (events)");
  }
}

/* run, revert and state; the last two only make sense with when. */
static void behaviour_actions(struct loader *L, const struct ynode *m,
                              const struct ynode **v, const struct ynode **k,
                              const char *where, struct config_behaviour *b) {
  char w[WHERE_MAX];

  if (v[B_RUN] == NULL)
    problem(L, m, where, "\"run\" is required");
  else
    parse_argv(L, v[B_RUN], sub(w, where, "run"), &b->run);
  if (v[B_REVERT] != NULL && v[B_ON] != NULL)
    problem(L, k[B_REVERT], sub(w, where, "revert"),
            "only a behaviour with when can revert; this one has on");
  else if (v[B_REVERT] != NULL)
    parse_argv(L, v[B_REVERT], sub(w, where, "revert"), &b->revert);
  if (v[B_STATE] != NULL && v[B_ON] != NULL)
    problem(L, k[B_STATE], sub(w, where, "state"),
            "only a behaviour with when can claim a state; this one has on");
  else if (v[B_STATE] != NULL)
    get_state(L, v[B_STATE], sub(w, where, "state"), b->state, true);
}

static void behaviour_timing(struct loader *L, const struct ynode **v,
                             const char *where, struct config_behaviour *b) {
  char w[WHERE_MAX];

  if (v[B_SETTLE] != NULL)
    get_duration(L, v[B_SETTLE], sub(w, where, "settle"), &b->settle_ms);
  if (v[B_TIMEOUT] != NULL &&
      get_duration(L, v[B_TIMEOUT], sub(w, where, "timeout"), &b->timeout_ms) &&
      b->timeout_ms == 0)
    problem(L, v[B_TIMEOUT], w, "must be more than 0");
  if (v[B_RETRIES] != NULL)
    get_uint(L, v[B_RETRIES], sub(w, where, "retries"), 0, RETRIES_MAX,
             &b->retries);
}

static void parse_behaviour(struct loader *L, const struct ynode *m,
                            const char *where, struct config_behaviour *b) {
  const struct ynode *v[B__N], *k[B__N];

  set_mark(L, m, &b->mark);
  b->timeout_ms = 30000;
  if (m->kind != Y_MAP) {
    problem(L, m, where, "expected a mapping");
    return;
  }
  map_fields(L, m, where, behaviour_keys, B__N, v, k);
  behaviour_name(L, m, v[B_NAME], where, b);
  behaviour_trigger(L, m, v, k, where, b);
  behaviour_actions(L, m, v, k, where, b);
  behaviour_timing(L, v, where, b);
  copy_vars(L, &b->nvars, &b->vars);
}

/* A new zeroed behaviour at the end of the list, or NULL. */
static struct config_behaviour *add_behaviour(struct loader *L,
                                              const struct ynode *at) {
  struct config *cfg = L->cfg;
  struct config_behaviour *b;

  if (cfg->nbehaviours == CONFIG_BEHAVIOURS_MAX) {
    problem(L, at, "behaviours", "more than %d behaviours",
            CONFIG_BEHAVIOURS_MAX);
    return NULL;
  }
  if (cfg->nbehaviours == L->bcap) {
    size_t cap = L->bcap ? L->bcap * 2 : 8;
    if ((b = realloc(cfg->behaviours, cap * sizeof(*b))) == NULL) {
      L->nomem = true;
      return NULL;
    }
    cfg->behaviours = b;
    L->bcap = cap;
  }
  b = &cfg->behaviours[cfg->nbehaviours++];
  memset(b, 0, sizeof(*b));
  return b;
}

static void parse_behaviours(struct loader *L, const struct ynode *list) {
  char w[WHERE_MAX];
  if (!get_seq(L, list, "behaviours"))
    return;
  for (size_t i = 0; i < list->nkids; i++) {
    struct config_behaviour *b = add_behaviour(L, list->kids[i]);
    if (b == NULL)
      return;
    parse_behaviour(L, list->kids[i], nth(w, "behaviours", i), b);
  }
}

/* ---- checks ---- */

enum { C_NAME, C_RUN, C_INTERVAL, C_TIMEOUT, C_FALL, C_RISE, C_STATE, C__N };
static const char *const check_keys[] = {"name", "run",  "interval", "timeout",
                                         "fall", "rise", "state"};
_Static_assert(ARRAY_SIZE(check_keys) == C__N, "check_keys");

static void check_name(struct loader *L, const struct ynode *m,
                       const struct ynode *v, const char *where,
                       struct config_check *c) {
  const struct config *cfg = L->cfg;
  char w[WHERE_MAX];

  if (v == NULL) {
    problem(L, m, where, "\"name\" is required");
    return;
  }
  if (!get_name(L, v, sub(w, where, "name"), c->name, sizeof(c->name)))
    return;
  for (const struct config_check *o = cfg->checks; o != c; o++) {
    if (strcmp(o->name, c->name) == 0) {
      problem(L, v, w, "duplicate check name \"%s\" (first at %s:%u:%u)",
              c->name, o->mark.file, o->mark.line, o->mark.col);
      return;
    }
  }
}

/* interval and timeout: both more than 0, the timeout the shorter. */
static void check_timing_fields(struct loader *L, const struct ynode **v,
                                const char *where, struct config_check *c) {
  char w[WHERE_MAX], t[32];
  bool ok = true;

  if (v[C_INTERVAL] != NULL &&
      (ok = get_duration(L, v[C_INTERVAL], sub(w, where, "interval"),
                         &c->interval_ms)) &&
      c->interval_ms == 0) {
    problem(L, v[C_INTERVAL], w, "must be more than 0");
    ok = false;
  }
  if (v[C_TIMEOUT] != NULL &&
      !get_duration(L, v[C_TIMEOUT], sub(w, where, "timeout"), &c->timeout_ms))
    return;
  if (v[C_TIMEOUT] != NULL && c->timeout_ms == 0)
    problem(L, v[C_TIMEOUT], sub(w, where, "timeout"), "must be more than 0");
  else if (!ok || c->timeout_ms < c->interval_ms)
    return;
  else if (v[C_TIMEOUT] != NULL)
    problem(L, v[C_TIMEOUT], sub(w, where, "timeout"),
            "must be shorter than interval (%s)",
            fmt_ms(c->interval_ms, t, sizeof(t)));
  else
    problem(L, v[C_INTERVAL], sub(w, where, "interval"),
            "must be longer than timeout (%s)",
            fmt_ms(c->timeout_ms, t, sizeof(t)));
}

static void check_fields(struct loader *L, const struct ynode **v,
                         const char *where, struct config_check *c) {
  char w[WHERE_MAX];

  check_timing_fields(L, v, where, c);
  if (v[C_FALL] != NULL)
    get_uint(L, v[C_FALL], sub(w, where, "fall"), 1, FALL_RISE_MAX, &c->fall);
  if (v[C_RISE] != NULL)
    get_uint(L, v[C_RISE], sub(w, where, "rise"), 1, FALL_RISE_MAX, &c->rise);
  if (v[C_STATE] != NULL &&
      get_state(L, v[C_STATE], sub(w, where, "state"), c->state, true) &&
      strcmp(c->state, "ready") == 0)
    problem(L, v[C_STATE], w, "a failing check can't claim \"ready\"");
}

static void parse_check(struct loader *L, const struct ynode *m,
                        const char *where, struct config_check *c) {
  const struct ynode *v[C__N], *k[C__N];
  char w[WHERE_MAX];

  set_mark(L, m, &c->mark);
  c->interval_ms = 5000;
  c->timeout_ms = 2000;
  c->fall = 3;
  c->rise = 2;
  snprintf(c->state, sizeof(c->state), "failed");
  if (m->kind != Y_MAP) {
    problem(L, m, where, "expected a mapping");
    return;
  }
  map_fields(L, m, where, check_keys, C__N, v, k);
  check_name(L, m, v[C_NAME], where, c);
  if (v[C_RUN] == NULL)
    problem(L, m, where, "\"run\" is required");
  else
    parse_argv(L, v[C_RUN], sub(w, where, "run"), &c->run);
  check_fields(L, v, where, c);
  copy_vars(L, &c->nvars, &c->vars);
}

static struct config_check *add_check(struct loader *L,
                                      const struct ynode *at) {
  struct config *cfg = L->cfg;
  struct config_check *c;

  if (cfg->nchecks == CONFIG_CHECKS_MAX) {
    problem(L, at, "checks", "more than %d checks", CONFIG_CHECKS_MAX);
    return NULL;
  }
  if (cfg->nchecks == L->ccap) {
    size_t cap = L->ccap ? L->ccap * 2 : 4;
    if ((c = realloc(cfg->checks, cap * sizeof(*c))) == NULL) {
      L->nomem = true;
      return NULL;
    }
    cfg->checks = c;
    L->ccap = cap;
  }
  c = &cfg->checks[cfg->nchecks++];
  memset(c, 0, sizeof(*c));
  return c;
}

static void parse_checks(struct loader *L, const struct ynode *list) {
  char w[WHERE_MAX];
  if (!get_seq(L, list, "checks"))
    return;
  for (size_t i = 0; i < list->nkids; i++) {
    struct config_check *c = add_check(L, list->kids[i]);
    if (c == NULL)
      return;
    parse_check(L, list->kids[i], nth(w, "checks", i), c);
  }
}

/* ---- include ---- */

static bool valid_var_name(const char *s) {
  size_t n = strlen(s);
  return n >= 1 && n <= VAR_NAME_MAX && !(s[0] >= '0' && s[0] <= '9') &&
         strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                   "0123456789_") == n;
}

/* One var: the name at kids[i] of m and its value. */
static bool parse_var(struct loader *L, const struct ynode *m, size_t i,
                      const char *where, struct include_ctx *inc) {
  const struct ynode *k = m->kids[i], *v = m->kids[i + 1];
  char w[WHERE_MAX];
  const char *s;

  if (!key_ok(L, k, where) || dup_key(L, m, i, where))
    return false;
  if (!valid_var_name(k->str)) {
    problem(L, k, where,
            "\"%s\" is not a var name (1-%d of A-Z a-z 0-9 _, not starting "
            "with a digit)",
            k->str, VAR_NAME_MAX);
    return false;
  }
  if (!get_str(L, v, sub(w, where, k->str), &s))
    return false;
  if (strlen(s) > VAR_VALUE_MAX) {
    problem(L, v, w, "longer than %d bytes", VAR_VALUE_MAX);
    return false;
  }
  inc->name[inc->nvars] = k;
  inc->value[inc->nvars++] = v;
  return true;
}

static bool parse_vars(struct loader *L, const struct ynode *m,
                       const char *where, struct include_ctx *inc) {
  bool ok = true;
  if (is_null(m))
    return true;
  if (m->kind != Y_MAP) {
    problem(L, m, where, "expected a mapping of names to values");
    return false;
  }
  if (m->nkids / 2 > CONFIG_VARS_MAX) {
    problem(L, m, where, "at most %d vars", CONFIG_VARS_MAX);
    return false;
  }
  for (size_t i = 0; i + 1 < m->nkids; i += 2)
    ok &= parse_var(L, m, i, where, inc);
  return ok;
}

enum { INC_FILE, INC_VARS, INC__N };
static const char *const include_keys[] = {"file", "vars"};

/* An include entry: a path, or {file, vars}. *file receives the path's
 * node. Returns false if the entry can't be followed (said why). */
static bool include_entry(struct loader *L, const struct ynode *it,
                          const char *where, const struct ynode **file,
                          struct include_ctx *inc) {
  const struct ynode *v[INC__N], *k[INC__N];
  char w[WHERE_MAX];
  const char *s;

  if (is_string(it)) {
    *file = it;
    return true;
  }
  if (it->kind != Y_MAP) {
    problem(L, it, where,
            "expected a file name, or a mapping with file and "
            "vars");
    return false;
  }
  map_fields(L, it, where, include_keys, INC__N, v, k);
  if (v[INC_FILE] == NULL) {
    problem(L, it, where, "\"file\" is required");
    return false;
  }
  if (!get_str(L, v[INC_FILE], sub(w, where, "file"), &s))
    return false;
  *file = v[INC_FILE];
  return v[INC_VARS] == NULL ||
         parse_vars(L, v[INC_VARS], sub(w, where, "vars"), inc);
}

/* The vars of inc sorted by name, as one string to compare includes. */
static char *vars_signature(const struct include_ctx *inc) {
  size_t order[CONFIG_VARS_MAX];
  struct strbuf b = {0};
  char len[32];

  for (size_t i = 0; i < inc->nvars; i++) {
    size_t j = i;
    for (; j > 0 && strcmp(inc->name[order[j - 1]]->str, inc->name[i]->str) > 0;
         j--)
      order[j] = order[j - 1];
    order[j] = i;
  }
  for (size_t i = 0; i < inc->nvars; i++) {
    const char *value = inc->value[order[i]]->str;
    snprintf(len, sizeof(len), "=%zu:", strlen(value));
    sb_str(&b, inc->name[order[i]]->str);
    sb_str(&b, len);
    sb_str(&b, value);
  }
  return sb_take(&b);
}

/* Remember an include; false if the same file with the same vars was
 * already included (said where). */
static bool first_inclusion(struct loader *L, const struct ynode *it,
                            const struct ynode *file, const char *full,
                            const char *where, const struct include_ctx *inc) {
  char real[PATH_MAX], *sig;
  struct seen_include *s;

  if (realpath(full, real) == NULL) {
    problem(L, file, where, "%s: %s", full, strerror(errno));
    return false;
  }
  if ((sig = vars_signature(inc)) == NULL) {
    L->nomem = true;
    return false;
  }
  for (size_t i = 0; i < L->nseen; i++) {
    s = &L->seen[i];
    if (strcmp(s->real, real) == 0 && strcmp(s->sig, sig) == 0) {
      problem(L, it, where,
              "%s is already included with the same vars at %s:%u:%u", full,
              L->file, s->line, s->col);
      free(sig);
      return false;
    }
  }
  s = &L->seen[L->nseen];
  if ((s->real = strdup(real)) == NULL) {
    L->nomem = true;
    free(sig);
    return false;
  }
  s->sig = sig;
  s->line = it->line;
  s->col = it->col;
  L->nseen++;
  return true;
}

static void walk_top(struct loader *L, const struct ynode *root, bool pack);

/* Read the pack at full with the vars of inc; at and where name the
 * include entry for messages about the pack as a whole. */
static void read_pack(struct loader *L, const struct ynode *at,
                      const char *full, const char *where,
                      struct include_ctx *inc) {
  const char *saved_file = L->file;
  char saved_dir[CONFIG_PATH_MAX], w[WHERE_MAX];
  struct ynode *root = NULL;
  char *buf = NULL;
  size_t len;
  int rv;

  if (read_file(L, full, at, where, &buf, &len) != 0)
    return;
  memcpy(saved_dir, L->dir, sizeof(saved_dir));
  if ((rv = dir_of(full, L->dir, sizeof(L->dir))) != 0)
    problem(L, at, where, "%s: path too long", full);
  L->file = full;
  L->inc = inc;
  L->expanded = 0;
  if (rv == 0 && (rv = parse_yaml(L, buf, len, &root)) == 0)
    walk_top(L, root, true);
  free(buf);
  L->file = saved_file;
  L->inc = NULL;
  memcpy(L->dir, saved_dir, sizeof(L->dir));
  for (size_t i = 0; rv == 0 && i < inc->nvars; i++)
    if (!inc->used[i])
      problem(L, inc->name[i], sub(w, where, "vars"),
              "\"%s\" is not used in %s", inc->name[i]->str, full);
  ynode_free(root);
}

static void parse_include(struct loader *L, const struct ynode *it,
                          const char *where) {
  struct include_ctx inc;
  const struct ynode *file;
  char full[CONFIG_PATH_MAX];

  memset(&inc, 0, sizeof(inc));
  inc.file = L->file;
  inc.line = it->line;
  inc.col = it->col;
  if (!include_entry(L, it, where, &file, &inc))
    return;
  if (join_path(L->dir, file->str, full, sizeof(full)) != 0) {
    problem(L, file, where, "%s: path too long", file->str);
    return;
  }
  if (first_inclusion(L, it, file, full, where, &inc))
    read_pack(L, file, full, where, &inc);
}

static void parse_includes(struct loader *L, const struct ynode *list) {
  char w[WHERE_MAX];
  if (!get_seq(L, list, "include"))
    return;
  if (list->nkids > CONFIG_INCLUDES_MAX) {
    problem(L, list, "include", "at most %d files", CONFIG_INCLUDES_MAX);
    return;
  }
  for (size_t i = 0; i < list->nkids; i++)
    parse_include(L, list->kids[i], nth(w, "include", i));
}

/* ---- The file as a whole ---- */

enum {
  TOP_NODE,
  TOP_NETWORK,
  TOP_CONTROL,
  TOP_STATE_DIR,
  TOP_INCLUDE,
  TOP_CHECKS,
  TOP_BEHAVIOURS,
  TOP__N
};
static const char *const top_keys[] = {"node",      "network", "control",
                                       "state_dir", "include", "checks",
                                       "behaviours"};
_Static_assert(ARRAY_SIZE(top_keys) == TOP__N, "top_keys");

/* A section of the main file only, met in a pack: say so. */
static bool refuse_in_pack(struct loader *L, const struct ynode *key) {
  for (int i = 0; is_string(key) && i < TOP_CHECKS; i++) {
    if (strcmp(key->str, top_keys[i]) == 0) {
      problem(L, key, key->str, "%s",
              i == TOP_INCLUDE
                  ? "an included file can't include other files"
                  : "not allowed in an included file (only behaviours and "
                    "checks)");
      return true;
    }
  }
  return false;
}

static void section(struct loader *L, int i, const struct ynode *v) {
  struct config *cfg = L->cfg;

  switch (i) {
  case TOP_NODE:
    parse_node(L, v);
    break;
  case TOP_NETWORK:
    parse_network(L, v);
    break;
  case TOP_CONTROL:
    parse_control(L, v);
    break;
  case TOP_STATE_DIR:
    get_path(L, v, "state_dir", cfg->state_dir, sizeof(cfg->state_dir));
    break;
  case TOP_INCLUDE:
    parse_includes(L, v);
    break;
  case TOP_CHECKS:
    parse_checks(L, v);
    break;
  default:
    parse_behaviours(L, v);
    break;
  }
}

/* The sections of a file, each read as soon as its key is: problems come
 * in file order, and behaviours and checks of includes keep their place. */
static void walk_top(struct loader *L, const struct ynode *root, bool pack) {
  const struct ynode *k[TOP__N];
  size_t first;

  if (root == NULL || is_null(root))
    return;
  if (root->kind != Y_MAP) {
    problem(L, root, "", "expected a mapping of sections (%s)",
            pack ? "behaviours, checks" : "node, network, control, ...");
    return;
  }
  /* A pack may hold the last two sections only. */
  first = pack ? TOP_CHECKS : 0;
  for (size_t j = 0; j < TOP__N; j++)
    k[j] = NULL;
  for (size_t i = 0; i + 1 < root->nkids; i += 2) {
    size_t j;
    if (pack && refuse_in_pack(L, root->kids[i]))
      continue;
    j = first +
        field_at(L, root, i, "", top_keys + first, TOP__N - first, k + first);
    if (j < TOP__N) {
      k[j] = root->kids[i];
      section(L, (int)j, root->kids[i + 1]);
    }
  }
}

/* ---- Loading and freeing ---- */

static struct config *config_new(const char *path) {
  struct config *cfg = calloc(1, sizeof(*cfg));
  if (cfg == NULL)
    return NULL;
  if ((cfg->data = json_object()) == NULL) {
    free(cfg);
    return NULL;
  }
  snprintf(cfg->path, sizeof(cfg->path), "%s", path);
  snprintf(cfg->cluster, sizeof(cfg->cluster), "default");
  snprintf(cfg->state, sizeof(cfg->state), "ready");
  snprintf(cfg->listen, sizeof(cfg->listen), "tcp://127.0.0.1:7410");
  snprintf(cfg->advertise, sizeof(cfg->advertise), "%s", cfg->listen);
  snprintf(cfg->socket, sizeof(cfg->socket), "%s", CHOREO_DEFAULT_SOCKET);
  snprintf(cfg->state_dir, sizeof(cfg->state_dir), "/var/lib/choreo");
  cfg->heartbeat_ms = 1000;
  cfg->lost_after_ms = 5000;
  cfg->reap_after_ms = 24 * 3600 * 1000;
  cfg->socket_mode = 0660;
  return cfg;
}

/* Read the main file at L->file into L->cfg. */
static void load_main(struct loader *L) {
  struct ynode *root = NULL;
  char *buf = NULL;
  size_t len;
  int rv;

  if (strlen(L->file) >= CONFIG_PATH_MAX ||
      dir_of(L->file, L->dir, sizeof(L->dir)) != 0) {
    problem_at(L, L->file, 1, 1, "", "path too long");
    return;
  }
  if (read_file(L, L->file, NULL, "", &buf, &len) != 0)
    return;
  rv = parse_yaml(L, buf, len, &root);
  free(buf);
  if (rv == 0) {
    walk_top(L, root, false);
    default_name(L);
  }
  ynode_free(root);
}

int config_load(const char *path, struct config **out,
                struct config_errors *errs) {
  struct config_errors none;
  struct loader *L = calloc(1, sizeof(*L));
  int rv = 0;

  *out = NULL;
  if (errs == NULL)
    errs = &none;
  memset(errs, 0, sizeof(*errs));
  if (L == NULL || (L->cfg = config_new(path)) == NULL) {
    free(L);
    return CHOREO_ENOMEM;
  }
  L->errs = errs;
  L->file = path;
  load_main(L);
  if (L->nomem)
    rv = CHOREO_ENOMEM;
  else if (errs->n > 0 || errs->more > 0)
    rv = CHOREO_ECONFIG;
  for (size_t i = 0; i < L->nseen; i++) {
    free(L->seen[i].real);
    free(L->seen[i].sig);
  }
  if (rv == 0)
    *out = L->cfg;
  else
    config_free(L->cfg);
  free(L);
  if (errs == &none)
    config_errors_free(&none);
  return rv;
}

void config_free(struct config *cfg) {
  if (cfg == NULL)
    return;
  for (size_t i = 0; i < cfg->nbehaviours; i++) {
    argv_free(&cfg->behaviours[i].run);
    argv_free(&cfg->behaviours[i].revert);
    strv_free(cfg->behaviours[i].vars, cfg->behaviours[i].nvars);
  }
  for (size_t i = 0; i < cfg->nchecks; i++) {
    argv_free(&cfg->checks[i].run);
    strv_free(cfg->checks[i].vars, cfg->checks[i].nvars);
  }
  free(cfg->behaviours);
  free(cfg->checks);
  json_decref(cfg->data);
  free(cfg);
}

void config_errors_free(struct config_errors *errs) {
  if (errs == NULL)
    return;
  for (size_t i = 0; i < errs->n; i++)
    free(errs->msg[i]);
  errs->n = 0;
  errs->more = 0;
}
