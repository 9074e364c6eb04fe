/*
 * statefiles.h — what a restart needs besides the declared state
 * (state.h): the two other files of state_dir, as text.
 *
 *   applied.json  per level behaviour (one with `when:`), the last action
 *                 that ended (run or revert) and the condition it was
 *                 applied for, so that a restarted agent reverts what is
 *                 applied but no longer true instead of forgetting it
 *                 (docs/BEHAVIOURS.md "Restarts");
 *   members.json  the members this agent knew (name, address, groups,
 *                 stamp and last state), so that a restarted agent knows
 *                 whom to wait for before it trusts its view, and where
 *                 to reach them (docs/RELIABILITY.md "Restarts").
 *
 * Pure: parsing and encoding only, over buffers; state.c reads and writes
 * the files. Every file of state_dir carries "format": STATEFILES_VERSION
 * (state.json too; statefiles_format() reads it, state_migrate() acts on
 * it). applied.json and members.json of development builds before 0.2.0
 * said "version": 1 instead, which is read as format 1. The files come from
 * disk and so are untrusted: every field is checked and bounded, and a
 * file that fails any check is refused whole (the caller then starts as
 * if it had none, and says so), never half-used.
 */
#ifndef CHOREO_STATEFILES_H
#define CHOREO_STATEFILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "choreo.h"
#include "config.h"
#include "peers.h"

/* The format of the files of state_dir this agent writes and reads;
 * 0.1.0's state.json had none (format 0). */
#define STATEFILES_VERSION 1

/* The format of a state_dir file's text: its "format" (or the "version"
 * of applied.json and members.json before 0.2.0); 0 when it has neither,
 * as 0.1.0's state.json. Returns 0 and *format; CHOREO_EDECODE when the
 * text is not a JSON object (its loader refuses it later, as corrupt); or
 * CHOREO_EINVAL when "format" is there but not a whole number, which no
 * version wrote (why[whylen] says so). */
int statefiles_format(const char *buf, size_t len, int64_t *format, char *why,
                      size_t whylen);

/* ---- applied.json ---- */

#define APPLIED_FILE "applied.json"
#define APPLIED_FILE_MAX (1024 * 1024)
/* The text of a condition (applied_condition()): a selector and up to
 * CONFIG_STATES_MAX states fit with room to spare. */
#define APPLIED_COND_MAX 768

enum applied_action {
  APPLIED_NONE,   /* nothing ended yet */
  APPLIED_RUN,    /* `run` was the last action that ended */
  APPLIED_REVERT, /* `revert` was */
};

struct applied_entry {
  char name[CHOREO_NAME_MAX + 1]; /* the behaviour */
  enum applied_action action;
  char cond[APPLIED_COND_MAX + 1]; /* applied_condition() when it ended */
  uint64_t seq; /* the intent (applied.log) this end settles; 0: none */
};

/* At most CONFIG_BEHAVIOURS_MAX entries, one per name. */
struct applied_set {
  struct applied_entry *v; /* owned */
  size_t n, cap;
};

/* The condition of a level behaviour as text: its selector and its
 * `when`, e.g. "peers group=db node=; when any maintenance". Two
 * behaviours have the same text exactly when they watch the same peers
 * with the same condition. */
void applied_condition(const struct config_behaviour *b, char *out, size_t len);

/* Set name's entry (added if new); seq: the intent its end settles (0:
 * none). Returns 0, CHOREO_EINVAL (name or cond too long), CHOREO_ETOOBIG
 * (CONFIG_BEHAVIOURS_MAX entries already) or CHOREO_ENOMEM. */
int applied_put(struct applied_set *s, const char *name,
                enum applied_action action, const char *cond, uint64_t seq);
const struct applied_entry *applied_find(const struct applied_set *s,
                                         const char *name);
/* Drop the entries for which keep() is false. */
void applied_retain(struct applied_set *s,
                    bool (*keep)(const char *name, void *arg), void *arg);
void applied_free(struct applied_set *s);

/* Parse the text of applied.json (len bytes, need not be NUL-terminated).
 * On success *out (empty before) holds every entry. Returns 0, or
 * CHOREO_EDECODE with why[whylen] saying what is wrong (*out then empty),
 * or CHOREO_ENOMEM. */
int applied_parse(const char *buf, size_t len, struct applied_set *out,
                  char *why, size_t whylen);
/* The text of applied.json for s; the caller frees it. NULL: no memory. */
char *applied_encode(const struct applied_set *s);
/* The text of an applied.json that says what was applied is unknown
 * ("unknown": true), written when a state_dir of choreo 0.1.0 (which kept
 * no applied.json) is migrated: applied_parse() refuses it with
 * APPLIED_UNKNOWN_WHY, so the agent brings each level behaviour to its
 * condition once synchronised, both ways, as for a corrupt file. The
 * caller frees it; NULL: no memory. */
#define APPLIED_UNKNOWN_WHY                                                    \
  "written at an upgrade from choreo 0.1.0, which kept no record of what "     \
  "it applied"
char *applied_encode_unknown(void);

const char *applied_action_name(enum applied_action a);

/* ---- applied.log: intents ----
 * Before a level behaviour's RUN or REVERT starts, the agent appends one
 * line to applied.log (one write() to a file opened once, no fsync: it is
 * on the reaction path):
 *
 *   SEQ NAME ACTION FINGERPRINT\n
 *
 * SEQ a decimal counter that grows with each line, NAME the behaviour,
 * ACTION run or revert, FINGERPRINT 16 hex digits of
 * applied_fingerprint() of its condition. applied.json's entry for NAME
 * carries the SEQ of the intent whose end it records ("seq"): an intent
 * with a higher SEQ was started but its end was never saved, so what the
 * behaviour applied is unknown (the action may have done its work) and a
 * restarted agent reconciles it both ways. */
#define APPLIED_LOG_FILE "applied.log"
#define APPLIED_LOG_HEADER "format 1\n" /* STATEFILES_VERSION */
#define APPLIED_LOG_MAX (1024 * 1024)
/* Past this size, the log is emptied once every intent in it is settled
 * in applied.json on disk. */
#define APPLIED_LOG_COMPACT (64 * 1024)
/* A line: SEQ (20 digits), NAME, ACTION, FINGERPRINT, separators. */
#define APPLIED_LOG_LINE_MAX (20 + 1 + CHOREO_NAME_MAX + 1 + 6 + 1 + 16 + 1)

/* The last intent of one behaviour in the log. */
struct applied_intent {
  char name[CHOREO_NAME_MAX + 1];
  enum applied_action action; /* APPLIED_RUN or APPLIED_REVERT */
  uint64_t seq;
  uint64_t fingerprint;
};

/* At most APPLIED_LOG_NAMES behaviours, one entry each (its last line). */
#define APPLIED_LOG_NAMES (2 * CONFIG_BEHAVIOURS_MAX)
struct applied_intents {
  struct applied_intent *v; /* owned */
  size_t n, cap;
  uint64_t last_seq; /* the highest SEQ read; 0: none */
};

/* A 64-bit FNV-1a digest of a condition's text (applied_condition()). */
uint64_t applied_fingerprint(const char *cond);
/* Write the line of one intent into out[len] (APPLIED_LOG_LINE_MAX + 1
 * is enough). Returns its length, or 0 when it does not fit or name is
 * not a valid name. */
size_t applied_log_line(char *out, size_t len, uint64_t seq, const char *name,
                        enum applied_action action, uint64_t fingerprint);
/* Parse the text of applied.log (len bytes): empty, or
 * APPLIED_LOG_HEADER then intents. On success *out (empty before) holds
 * each behaviour's last intent. SEQs must grow line after
 * line; every line must end with a newline (a torn last line is refused:
 * which intent it held is unknown). Returns 0, or CHOREO_EDECODE with
 * why[whylen] naming the line and what is wrong (*out then empty), or
 * CHOREO_ENOMEM. */
int applied_log_parse(const char *buf, size_t len, struct applied_intents *out,
                      char *why, size_t whylen);
const struct applied_intent *
applied_intent_find(const struct applied_intents *s, const char *name);
void applied_intents_free(struct applied_intents *s);

/* ---- members.json ---- */

#define MEMBERS_FILE "members.json"
/* Entries kept: a restarted agent takes them as members not heard yet,
 * of which the peer table holds PEERS_UNHEARD_MAX. */
#define MEMBERS_FILE_ENTRIES PEERS_UNHEARD_MAX
#define MEMBERS_FILE_MAX (1024 * 1024)

struct members_entry {
  char name[CHOREO_NAME_MAX + 1];
  char addr[CHOREO_ADDR_MAX + 1];
  uint64_t inc, ver; /* the stamp of its last record heard */
  size_t ngroups;
  char groups[CHOREO_GROUPS_MAX][CHOREO_NAME_MAX + 1];
  char state[CHOREO_STATE_MAX + 1]; /* its last state heard */
};

struct members_set {
  struct members_entry *v; /* owned */
  size_t n;
};

/* Parse the text of members.json as applied_parse() does. Names are
 * unique; the file's own node (self) is refused. */
int members_parse(const char *buf, size_t len, const char *self,
                  struct members_set *out, char *why, size_t whylen);
/* The text of members.json for the table: members heard, alive, not
 * left, at most MEMBERS_FILE_ENTRIES (the rest counted in *left_out when
 * not NULL). The caller frees it; NULL: no memory. */
char *members_encode(const struct peers *p, size_t *left_out);
/* A digest of what members.json must be saved again for: the members
 * members_encode() writes, by name, address, groups and incarnation. A
 * new state or version alone does not change it: the states in the file
 * are only shown, never acted on, and a member's own record supersedes
 * the stamp. */
uint64_t members_digest(const struct peers *p);
void members_free(struct members_set *s);

#endif
