/*
 * record.h — a node's published record: its state, reason, data and groups,
 * stamped with (incarnation, version) so that any two records of one node
 * can be ordered. The wire carries records, the peer table stores them and
 * the engine reads them.
 */
#ifndef CHOREO_RECORD_H
#define CHOREO_RECORD_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "choreo.h"

/* Largest incarnation or version accepted: JSON numbers are exact up to
 * here, and a record "from the future" beyond it could pin a node. */
#define RECORD_COUNTER_MAX ((uint64_t)1 << 53)

struct record {
  char name[CHOREO_NAME_MAX + 1];
  char addr[CHOREO_ADDR_MAX + 1];   /* where the node's inbox listens */
  uint64_t inc;                     /* incarnation: bumped at each start */
  uint64_t ver;                     /* version: bumped at each change */
  bool left;                        /* the node announced a graceful leave */
  char state[CHOREO_STATE_MAX + 1]; /* "" while unknown */
  char reason[CHOREO_REASON_MAX + 1];
  int64_t since_ms; /* unix ms the state was entered */
  size_t ngroups;
  char groups[CHOREO_GROUPS_MAX][CHOREO_NAME_MAX + 1];
  json_t *data; /* object of string values; owned reference, never NULL
                   between record_init() and record_free() */
};

/* Initialise r as an empty record (no I/O). Returns 0 or CHOREO_ENOMEM. */
int record_init(struct record *r);
/* Release what r owns; r may then be initialised again. Accepts a record
 * that record_init() failed on (data NULL). */
void record_free(struct record *r);
/* Make dst (initialised) a deep copy of src. Returns 0 or CHOREO_ENOMEM
 * (dst unchanged). */
int record_copy(struct record *dst, const struct record *src);
/* >0 if a is newer than b by (inc, ver), 0 if equal, <0 if older. */
int record_cmp(const struct record *a, const struct record *b);
/* Whether r's groups are exactly groups[0..n), in that order. */
bool record_groups_are(const struct record *r, size_t n,
                       const char (*groups)[CHOREO_NAME_MAX + 1]);
bool record_same_groups(const struct record *a, const struct record *b);
bool record_in_group(const struct record *r, const char *group);
/* True when a and b are the same record: name, address, stamp, left,
 * state, reason, since, groups (in order) and data. */
bool record_equal(const struct record *a, const struct record *b);
/* True when the data objects are equal. */
bool record_same_data(const struct record *a, const struct record *b);

#endif
