/*
 * recpool.h — records held read-only by peer tables, each stored once:
 * every entry that holds a record equal to another's (same node, stamp,
 * address, state, reason, groups and data) shares one copy, counted.
 *
 * An agent has one table, whose pool holds one record per member: it
 * saves nothing there, and costs a hash and a comparison per record
 * taken. The simulator gives the tables of its N agents one pool, so
 * that the N copies of a record that reach every member cost one
 * (docs/ARCHITECTURE.md "Simulation").
 *
 * A held record is immutable: a table that needs another record holds
 * the new one and releases the old.
 */
#ifndef CHOREO_RECPOOL_H
#define CHOREO_RECPOOL_H

#include <stddef.h>

#include "record.h"

struct recpool;

/* What the pool adds to a record it holds, in bytes, for estimates:
 * its entry's header (next, hash, holds), malloc's, and a bucket. */
#define RECPOOL_ENTRY_OVERHEAD 48

/* A new, empty pool; NULL when out of memory. */
struct recpool *recpool_new(void);

/* Free the pool and every record it still holds (their holders must not
 * use them after). NULL is accepted. */
void recpool_free(struct recpool *pool);

/* A record equal to r (record_equal()), held until recpool_release():
 * one the pool holds already, or a new copy of r. NULL when out of
 * memory. */
const struct record *recpool_hold(struct recpool *pool, const struct record *r);

/* Give back one hold of r (from recpool_hold() of this pool); the last
 * one frees it. NULL is accepted. */
void recpool_release(struct recpool *pool, const struct record *r);

/* Distinct records the pool holds, and holds of them. */
size_t recpool_records(const struct recpool *pool);
size_t recpool_holds(const struct recpool *pool);

#endif
