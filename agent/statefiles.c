/*
 * statefiles.c — applied.json, applied.log and members.json as text
 * (statefiles.h):
 * encoding what the agent knows, and parsing it back with every field
 * checked, as anything read from disk must be.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"
#include "statefiles.h"
#include "util.h"
#include "wire.h"

static void say(char *why, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, len, fmt, ap);
  va_end(ap);
}

/* The format of root, an object: "format", else "version" (files of
 * development builds before 0.2.0), else 0. false (why said) when the
 * key is there but not a whole number. */
static bool format_of(json_t *root, int64_t *format, char *why, size_t whylen) {
  const char *key = "format";
  json_t *v = json_object_get(root, key);

  if (v == NULL) {
    key = "version";
    v = json_object_get(root, key);
  }
  *format = 0;
  if (v == NULL)
    return true;
  if (!json_is_integer(v) || json_integer_value(v) < 0) {
    say(why, whylen, "\"%s\" is not a whole number", key);
    return false;
  }
  *format = (int64_t)json_integer_value(v);
  return true;
}

int statefiles_format(const char *buf, size_t len, int64_t *format, char *why,
                      size_t whylen) {
  json_error_t jerr;
  json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
  int rv = 0;

  *format = 0;
  why[0] = '\0';
  if (root == NULL || !json_is_object(root)) {
    say(why, whylen, "not a JSON object");
    rv = CHOREO_EDECODE;
  } else if (!format_of(root, format, why, whylen)) {
    rv = CHOREO_EINVAL;
  }
  json_decref(root);
  return rv;
}

/* The root object of the expected format, or NULL (why said). */
static json_t *load_root(const char *buf, size_t len, size_t max,
                         const char *list, json_t **items, char *why,
                         size_t whylen) {
  json_error_t jerr;
  json_t *root;
  int64_t format;

  if (len > max) {
    say(why, whylen, "larger than %zu bytes", max);
    return NULL;
  }
  root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
  if (root == NULL) {
    say(why, whylen, "not JSON (line %d: %s)", jerr.line, jerr.text);
    return NULL;
  }
  if (!json_is_object(root)) {
    say(why, whylen, "not a JSON object");
    goto fail;
  }
  if (!format_of(root, &format, why, whylen))
    goto fail;
  if (format != STATEFILES_VERSION) {
    say(why, whylen, "format %lld, this agent reads format %d",
        (long long)format, STATEFILES_VERSION);
    goto fail;
  }
  *items = json_object_get(root, list);
  if (*items == NULL) {
    say(why, whylen, "no \"%s\"", list);
    goto fail;
  }
  return root;
fail:
  json_decref(root);
  return NULL;
}

/* A string field of o that fits dst[size] and passes valid; false (why
 * said, naming the entry) otherwise. */
static bool get_text(json_t *o, const char *key, const char *entry,
                     bool (*valid)(const char *s), char *dst, size_t size,
                     char *why, size_t whylen) {
  const char *s = json_string_value(json_object_get(o, key));

  if (s == NULL || strlen(s) >= size || (valid != NULL && !valid(s))) {
    say(why, whylen, "%s: \"%s\" is missing or invalid", entry, key);
    return false;
  }
  memcpy(dst, s, strlen(s) + 1);
  return true;
}

static bool get_counter(json_t *o, const char *key, const char *entry,
                        uint64_t *dst, char *why, size_t whylen) {
  json_t *v = json_object_get(o, key);

  if (!json_is_integer(v) || json_integer_value(v) < 0 ||
      (uint64_t)json_integer_value(v) > RECORD_COUNTER_MAX) {
    say(why, whylen, "%s: \"%s\" is missing or out of range", entry, key);
    return false;
  }
  *dst = (uint64_t)json_integer_value(v);
  return true;
}

/* ---- applied.json ---- */

const char *applied_action_name(enum applied_action a) {
  switch (a) {
  case APPLIED_NONE:
    return "none";
  case APPLIED_RUN:
    return "run";
  case APPLIED_REVERT:
    return "revert";
  }
  return "none";
}

static bool action_from(const char *s, enum applied_action *a) {
  if (s == NULL)
    return false;
  if (strcmp(s, "none") == 0)
    *a = APPLIED_NONE;
  else if (strcmp(s, "run") == 0)
    *a = APPLIED_RUN;
  else if (strcmp(s, "revert") == 0)
    *a = APPLIED_REVERT;
  else
    return false;
  return true;
}

static const char *kind_name(enum config_cond_kind k) {
  switch (k) {
  case COND_ANY:
    return "any";
  case COND_ALL:
    return "all";
  case COND_NONE:
    return "none";
  case COND_FEWER_THAN:
    return "fewer_than";
  }
  return "?";
}

void applied_condition(const struct config_behaviour *b, char *out,
                       size_t len) {
  size_t used;
  int n;

  n = snprintf(out, len, "peers group=%s node=%s; when %s", b->peers.group,
               b->peers.node, kind_name(b->when.kind));
  used = n < 0 ? len : (size_t)n;
  if (b->when.kind == COND_FEWER_THAN && used < len) {
    n = snprintf(out + used, len - used, " %u", b->when.n);
    used += n < 0 ? len : (size_t)n;
  }
  for (size_t i = 0; i < b->when.nstates && used < len; i++) {
    n = snprintf(out + used, len - used, " %s", b->when.states[i]);
    used += n < 0 ? len : (size_t)n;
  }
}

const struct applied_entry *applied_find(const struct applied_set *s,
                                         const char *name) {
  for (size_t i = 0; i < s->n; i++)
    if (strcmp(s->v[i].name, name) == 0)
      return &s->v[i];
  return NULL;
}

int applied_put(struct applied_set *s, const char *name,
                enum applied_action action, const char *cond, uint64_t seq) {
  struct applied_entry *e = (struct applied_entry *)applied_find(s, name);

  if (strlen(name) > CHOREO_NAME_MAX || strlen(cond) > APPLIED_COND_MAX)
    return CHOREO_EINVAL;
  if (e == NULL) {
    if (s->n >= CONFIG_BEHAVIOURS_MAX)
      return CHOREO_ETOOBIG;
    if (s->n == s->cap) {
      size_t cap = s->cap != 0 ? s->cap * 2 : 8;
      struct applied_entry *v = realloc(s->v, cap * sizeof(*v));
      if (v == NULL)
        return CHOREO_ENOMEM;
      s->v = v;
      s->cap = cap;
    }
    e = &s->v[s->n++];
    memcpy(e->name, name, strlen(name) + 1);
  }
  e->action = action;
  e->seq = seq;
  memcpy(e->cond, cond, strlen(cond) + 1);
  return 0;
}

void applied_retain(struct applied_set *s,
                    bool (*keep)(const char *name, void *arg), void *arg) {
  size_t n = 0;
  for (size_t i = 0; i < s->n; i++)
    if (keep(s->v[i].name, arg))
      s->v[n++] = s->v[i];
  s->n = n;
}

void applied_free(struct applied_set *s) {
  free(s->v);
  memset(s, 0, sizeof(*s));
}

static bool valid_cond(const char *s) {
  return choreo_valid_text(s, APPLIED_COND_MAX);
}

static int applied_entry(struct applied_set *out, const char *name, json_t *o,
                         char *why, size_t whylen) {
  char entry[CHOREO_NAME_MAX + 32], cond[APPLIED_COND_MAX + 1];
  enum applied_action action;
  uint64_t seq = 0;
  int rv;

  if (!choreo_valid_name(name)) {
    say(why, whylen, "a behaviour name is invalid");
    return CHOREO_EDECODE;
  }
  snprintf(entry, sizeof(entry), "behaviour %s", name);
  if (!json_is_object(o) ||
      !action_from(json_string_value(json_object_get(o, "applied")), &action)) {
    say(why, whylen, "%s: \"applied\" is not none, run or revert", entry);
    return CHOREO_EDECODE;
  }
  if (!get_text(o, "condition", entry, valid_cond, cond, sizeof(cond), why,
                whylen))
    return CHOREO_EDECODE;
  /* "seq" is absent from files written before applied.log existed. */
  if (json_object_get(o, "seq") != NULL &&
      !get_counter(o, "seq", entry, &seq, why, whylen))
    return CHOREO_EDECODE;
  rv = applied_put(out, name, action, cond, seq);
  if (rv == CHOREO_ETOOBIG) {
    say(why, whylen, "more than %d behaviours", CONFIG_BEHAVIOURS_MAX);
    return CHOREO_EDECODE;
  }
  return rv;
}

int applied_parse(const char *buf, size_t len, struct applied_set *out,
                  char *why, size_t whylen) {
  json_t *items = NULL, *root, *v;
  const char *name;
  int rv = 0;

  memset(out, 0, sizeof(*out));
  why[0] = '\0';
  root =
      load_root(buf, len, APPLIED_FILE_MAX, "behaviours", &items, why, whylen);
  if (root == NULL)
    return CHOREO_EDECODE;
  if (!json_is_object(items)) {
    say(why, whylen, "\"behaviours\" is not an object");
    rv = CHOREO_EDECODE;
  } else if (json_is_true(json_object_get(root, "unknown"))) {
    say(why, whylen, "%s", APPLIED_UNKNOWN_WHY);
    rv = CHOREO_EDECODE;
  }
  json_object_foreach(rv == 0 ? items : NULL, name, v) {
    if ((rv = applied_entry(out, name, v, why, whylen)) != 0)
      break;
  }
  json_decref(root);
  if (rv != 0)
    applied_free(out);
  return rv;
}

char *applied_encode_unknown(void) {
  json_t *root = json_pack("{s:i, s:b, s:{}}", "format", STATEFILES_VERSION,
                           "unknown", 1, "behaviours");
  char *text =
      root != NULL ? json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
  json_decref(root);
  return text;
}

char *applied_encode(const struct applied_set *s) {
  json_t *items = json_object();
  json_t *root = json_pack("{s:i, s:o}", "format", STATEFILES_VERSION,
                           "behaviours", items);
  char *text = NULL;

  for (size_t i = 0; root != NULL && i < s->n; i++) {
    json_t *e = json_pack("{s:s, s:s, s:I}", "applied",
                          applied_action_name(s->v[i].action), "condition",
                          s->v[i].cond, "seq", (json_int_t)s->v[i].seq);
    if (e == NULL || json_object_set_new(items, s->v[i].name, e) != 0)
      goto out;
  }
  if (root != NULL)
    text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
out:
  json_decref(root);
  return text;
}

/* ---- applied.log ---- */

uint64_t applied_fingerprint(const char *cond) {
  return util_fnv(UTIL_FNV_OFFSET, cond, strlen(cond));
}

size_t applied_log_line(char *out, size_t len, uint64_t seq, const char *name,
                        enum applied_action action, uint64_t fingerprint) {
  int n;

  if (!choreo_valid_name(name) ||
      (action != APPLIED_RUN && action != APPLIED_REVERT))
    return 0;
  n = snprintf(out, len, "%" PRIu64 " %s %s %016" PRIx64 "\n", seq, name,
               applied_action_name(action), fingerprint);
  return n < 0 || (size_t)n >= len ? 0 : (size_t)n;
}

const struct applied_intent *
applied_intent_find(const struct applied_intents *s, const char *name) {
  for (size_t i = 0; i < s->n; i++)
    if (strcmp(s->v[i].name, name) == 0)
      return &s->v[i];
  return NULL;
}

void applied_intents_free(struct applied_intents *s) {
  free(s->v);
  memset(s, 0, sizeof(*s));
}

/* A whole decimal number of digits only, at most RECORD_COUNTER_MAX. */
static bool log_number(const char *s, int base, uint64_t max, uint64_t *out) {
  uint64_t v = 0;
  unsigned d;

  if (*s == '\0')
    return false;
  for (; *s != '\0'; s++) {
    if (*s >= '0' && *s <= '9')
      d = (unsigned)(*s - '0');
    else if (base == 16 && *s >= 'a' && *s <= 'f')
      d = (unsigned)(*s - 'a' + 10);
    else
      return false;
    if (v > (max - d) / (uint64_t)base)
      return false;
    v = v * (uint64_t)base + d;
  }
  *out = v;
  return true;
}

/* Split line (NUL-terminated, without its newline) into its four fields:
 * false when it has another number of fields. */
static bool log_fields(char *line, char *f[4]) {
  char *p = line;

  for (size_t n = 0; n < 3; n++) {
    f[n] = p;
    p = strchr(p, ' ');
    if (p == NULL)
      return false;
    *p++ = '\0';
  }
  f[3] = p;
  return strchr(f[3], ' ') == NULL;
}

/* Parse one line into it; why says what is wrong. */
static bool log_intent(char *line, struct applied_intent *it, char *why,
                       size_t whylen) {
  char *f[4];

  if (!log_fields(line, f)) {
    say(why, whylen, "not SEQ NAME ACTION FINGERPRINT");
    return false;
  }
  if (!log_number(f[0], 10, RECORD_COUNTER_MAX, &it->seq) || it->seq == 0) {
    say(why, whylen, "SEQ is not a number from 1 to %" PRIu64,
        (uint64_t)RECORD_COUNTER_MAX);
    return false;
  }
  if (!choreo_valid_name(f[1]) || strlen(f[1]) > CHOREO_NAME_MAX) {
    say(why, whylen, "the behaviour name is invalid");
    return false;
  }
  memcpy(it->name, f[1], strlen(f[1]) + 1);
  if (!action_from(f[2], &it->action) || it->action == APPLIED_NONE) {
    say(why, whylen, "ACTION is not run or revert");
    return false;
  }
  if (strlen(f[3]) != 16 ||
      !log_number(f[3], 16, UINT64_MAX, &it->fingerprint)) {
    say(why, whylen, "FINGERPRINT is not 16 hex digits");
    return false;
  }
  return true;
}

static int log_put(struct applied_intents *s, const struct applied_intent *it) {
  struct applied_intent *e =
      (struct applied_intent *)applied_intent_find(s, it->name);

  if (e == NULL) {
    if (s->n >= APPLIED_LOG_NAMES)
      return CHOREO_ETOOBIG;
    if (s->n == s->cap) {
      size_t cap = s->cap != 0 ? s->cap * 2 : 8;
      struct applied_intent *v = realloc(s->v, cap * sizeof(*v));
      if (v == NULL)
        return CHOREO_ENOMEM;
      s->v = v;
      s->cap = cap;
    }
    e = &s->v[s->n++];
  }
  *e = *it;
  return 0;
}

int applied_log_parse(const char *buf, size_t len, struct applied_intents *out,
                      char *why, size_t whylen) {
  char line[APPLIED_LOG_LINE_MAX + 1], what[160];
  size_t at = 0, lineno = 0;
  int rv = 0;

  memset(out, 0, sizeof(*out));
  why[0] = '\0';
  if (len > APPLIED_LOG_MAX) {
    say(why, whylen, "larger than %d bytes", APPLIED_LOG_MAX);
    return CHOREO_EDECODE;
  }
  if (len > 0) {
    size_t h = strlen(APPLIED_LOG_HEADER);
    if (len < h || memcmp(buf, APPLIED_LOG_HEADER, h) != 0) {
      say(why, whylen, "line 1: not \"%.*s\" (the format this agent reads)",
          (int)h - 1, APPLIED_LOG_HEADER);
      return CHOREO_EDECODE;
    }
    at = h;
    lineno = 1;
  }
  while (rv == 0 && at < len) {
    const char *nl = memchr(buf + at, '\n', len - at);
    size_t n = nl != NULL ? (size_t)(nl - (buf + at)) : len - at;
    struct applied_intent it;

    lineno++;
    what[0] = '\0';
    if (nl == NULL)
      snprintf(what, sizeof(what), "torn (no newline at its end)");
    else if (n > APPLIED_LOG_LINE_MAX || memchr(buf + at, '\0', n) != NULL)
      snprintf(what, sizeof(what), "too long or not text");
    if (what[0] == '\0') {
      memcpy(line, buf + at, n);
      line[n] = '\0';
      if (!log_intent(line, &it, what, sizeof(what)))
        ;
      else if (it.seq <= out->last_seq)
        snprintf(what, sizeof(what), "SEQ %" PRIu64 " does not grow", it.seq);
      else if ((rv = log_put(out, &it)) == CHOREO_ETOOBIG)
        snprintf(what, sizeof(what), "more than %d behaviours",
                 APPLIED_LOG_NAMES);
      if (what[0] == '\0' && rv == 0)
        out->last_seq = it.seq;
    }
    if (what[0] != '\0') {
      say(why, whylen, "line %zu: %s", lineno, what);
      rv = CHOREO_EDECODE;
    }
    at += n + 1;
  }
  if (rv != 0)
    applied_intents_free(out);
  return rv;
}

/* ---- members.json ---- */

static bool get_groups(json_t *o, const char *entry, struct members_entry *m,
                       char *why, size_t whylen) {
  json_t *groups = json_object_get(o, "groups"), *g;
  size_t i;

  if (!json_is_array(groups) || json_array_size(groups) > CHOREO_GROUPS_MAX) {
    say(why, whylen, "%s: \"groups\" is not an array of at most %d names",
        entry, CHOREO_GROUPS_MAX);
    return false;
  }
  json_array_foreach(groups, i, g) {
    const char *s = json_string_value(g);
    if (s == NULL || !choreo_valid_name(s)) {
      say(why, whylen, "%s: group %zu is not a valid name", entry, i + 1);
      return false;
    }
    memcpy(m->groups[i], s, strlen(s) + 1);
  }
  m->ngroups = json_array_size(groups);
  return true;
}

static bool member_entry(json_t *o, size_t index, const char *self,
                         const struct members_set *seen,
                         struct members_entry *m, char *why, size_t whylen) {
  char entry[48];

  snprintf(entry, sizeof(entry), "member %zu", index + 1);
  memset(m, 0, sizeof(*m));
  if (!json_is_object(o)) {
    say(why, whylen, "%s is not an object", entry);
    return false;
  }
  if (!get_text(o, "name", entry, choreo_valid_name, m->name, sizeof(m->name),
                why, whylen) ||
      !get_text(o, "addr", entry, wire_valid_addr, m->addr, sizeof(m->addr),
                why, whylen) ||
      !get_counter(o, "inc", entry, &m->inc, why, whylen) ||
      !get_counter(o, "ver", entry, &m->ver, why, whylen) ||
      !get_groups(o, entry, m, why, whylen) ||
      !get_text(o, "state", entry, choreo_valid_state, m->state,
                sizeof(m->state), why, whylen))
    return false;
  if (strcmp(m->name, self) == 0) {
    say(why, whylen, "%s names this node", entry);
    return false;
  }
  for (size_t k = 0; k < seen->n; k++) {
    if (strcmp(seen->v[k].name, m->name) == 0) {
      say(why, whylen, "%s: %s is listed twice", entry, m->name);
      return false;
    }
  }
  return true;
}

int members_parse(const char *buf, size_t len, const char *self,
                  struct members_set *out, char *why, size_t whylen) {
  json_t *items = NULL, *root, *v;
  size_t i;
  int rv = 0;

  memset(out, 0, sizeof(*out));
  why[0] = '\0';
  root = load_root(buf, len, MEMBERS_FILE_MAX, "members", &items, why, whylen);
  if (root == NULL)
    return CHOREO_EDECODE;
  if (!json_is_array(items) || json_array_size(items) > MEMBERS_FILE_ENTRIES) {
    say(why, whylen, "\"members\" is not an array of at most %d entries",
        MEMBERS_FILE_ENTRIES);
    rv = CHOREO_EDECODE;
  } else if (json_array_size(items) > 0 &&
             (out->v = calloc(json_array_size(items), sizeof(*out->v))) ==
                 NULL) {
    rv = CHOREO_ENOMEM;
  }
  json_array_foreach(rv == 0 ? items : NULL, i, v) {
    if (!member_entry(v, i, self, out, &out->v[out->n], why, whylen)) {
      rv = CHOREO_EDECODE;
      break;
    }
    out->n++;
  }
  json_decref(root);
  if (rv != 0)
    members_free(out);
  return rv;
}

static json_t *member_json(const struct peer *peer) {
  const struct record *r = peer->rec;
  json_t *groups = json_array();

  for (size_t g = 0; groups != NULL && g < r->ngroups; g++)
    json_array_append_new(groups, json_string(r->groups[g]));
  return json_pack("{s:s, s:s, s:I, s:I, s:o, s:s}", "name", r->name, "addr",
                   r->addr, "inc", (json_int_t)r->inc, "ver",
                   (json_int_t)r->ver, "groups", groups, "state", r->state);
}

/* Members members_encode() writes. */
static bool saved_member(const struct peer *peer) {
  return peer->heard && peer->status == PEER_ALIVE && !peer->rec->left &&
         peer->rec->addr[0] != '\0' && peer->rec->state[0] != '\0';
}

uint64_t members_digest(const struct peers *p) {
  uint64_t h = 0xcbf29ce484222325ULL;
  size_t n = 0;

  for (size_t i = 0; i < p->n && n < MEMBERS_FILE_ENTRIES; i++) {
    const struct record *r = p->v[i]->rec;
    if (!saved_member(p->v[i]))
      continue;
    n++;
    /* Strings with their NUL, so that different splits differ. */
    h = util_fnv(h, r->name, strlen(r->name) + 1);
    h = util_fnv(h, r->addr, strlen(r->addr) + 1);
    h = util_fnv(h, &r->inc, sizeof(r->inc));
    for (size_t g = 0; g < r->ngroups; g++)
      h = util_fnv(h, r->groups[g], strlen(r->groups[g]) + 1);
    h = util_fnv(h, "", 1);
  }
  return util_fnv(h, &n, sizeof(n));
}

char *members_encode(const struct peers *p, size_t *left_out) {
  json_t *items = json_array();
  json_t *root =
      json_pack("{s:i, s:o}", "format", STATEFILES_VERSION, "members", items);
  size_t left = 0;
  char *text = NULL;

  for (size_t i = 0; root != NULL && i < p->n; i++) {
    const struct peer *peer = p->v[i];
    if (!saved_member(peer))
      continue;
    if (json_array_size(items) >= MEMBERS_FILE_ENTRIES) {
      left++;
      continue;
    }
    if (json_array_append_new(items, member_json(peer)) != 0)
      goto out;
  }
  if (root != NULL)
    text = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS);
  if (left_out != NULL)
    *left_out = left;
out:
  json_decref(root);
  return text;
}

void members_free(struct members_set *s) {
  free(s->v);
  memset(s, 0, sizeof(*s));
}
