/*
 * record.c — a node's published record (see record.h): lifecycle, deep
 * copy, ordering by (incarnation, version) and data comparison. The
 * wire decoder fills records, the peer table stores them, the engine and
 * the views read them.
 */
#include <string.h>

#include "record.h"

int record_init(struct record *r) {
  memset(r, 0, sizeof(*r));
  r->data = json_object();
  return r->data == NULL ? CHOREO_ENOMEM : 0;
}

void record_free(struct record *r) {
  json_decref(r->data);
  r->data = NULL;
}

int record_copy(struct record *dst, const struct record *src) {
  json_t *data, *old = dst->data;

  /* A record that skipped record_init() (data NULL) copies as empty data. */
  data = src->data != NULL ? json_deep_copy(src->data) : json_object();
  if (data == NULL)
    return CHOREO_ENOMEM;
  if (dst != src)
    memcpy(dst, src, sizeof(*dst));
  dst->data = data;
  json_decref(old);
  return 0;
}

static int cmp_u64(uint64_t a, uint64_t b) {
  return (a > b) - (a < b);
}

int record_cmp(const struct record *a, const struct record *b) {
  int c = cmp_u64(a->inc, b->inc);
  return c != 0 ? c : cmp_u64(a->ver, b->ver);
}

bool record_groups_are(const struct record *r, size_t n,
                       const char (*groups)[CHOREO_NAME_MAX + 1]) {
  if (r->ngroups != n)
    return false;
  for (size_t i = 0; i < n; i++)
    if (strcmp(r->groups[i], groups[i]) != 0)
      return false;
  return true;
}

bool record_same_groups(const struct record *a, const struct record *b) {
  return record_groups_are(a, b->ngroups, b->groups);
}

bool record_in_group(const struct record *r, const char *group) {
  for (size_t i = 0; i < r->ngroups; i++) {
    if (strcmp(r->groups[i], group) == 0)
      return true;
  }
  return false;
}

bool record_same_data(const struct record *a, const struct record *b) {
  size_t na = a->data != NULL ? json_object_size(a->data) : 0;
  size_t nb = b->data != NULL ? json_object_size(b->data) : 0;

  /* json_equal() is false when either side is NULL: a missing object and
   * an empty one both mean "no data". */
  if (na == 0 || nb == 0)
    return na == nb;
  return json_equal(a->data, b->data) != 0;
}

bool record_equal(const struct record *a, const struct record *b) {
  return a->inc == b->inc && a->ver == b->ver && a->left == b->left &&
         a->since_ms == b->since_ms && strcmp(a->name, b->name) == 0 &&
         strcmp(a->addr, b->addr) == 0 && strcmp(a->state, b->state) == 0 &&
         strcmp(a->reason, b->reason) == 0 && record_same_groups(a, b) &&
         record_same_data(a, b);
}
