/*
 * fuzz_statefiles.c — libFuzzer target for the files a restarted agent
 * reads from state_dir (agent/statefiles.c): applied.json, applied.log
 * and members.json, parsed from the same bytes.
 *
 * Checks beyond "no crash, no leak, no undefined behaviour": what a parser
 * accepts is within its bounds and encodes to text that parses back to
 * the same entries; what it refuses leaves nothing behind and says why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "statefiles.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void applied(const char *buf, size_t len) {
  struct applied_set s, back;
  char why[256];
  char *text;

  if (applied_parse(buf, len, &s, why, sizeof(why)) != 0) {
    if (s.n != 0 || s.v != NULL || why[0] == '\0')
      abort(); /* refused, but not cleanly */
    return;
  }
  if (s.n > CONFIG_BEHAVIOURS_MAX)
    abort();
  text = applied_encode(&s);
  if (text == NULL ||
      applied_parse(text, strlen(text), &back, why, sizeof(why)) != 0 ||
      back.n != s.n)
    abort(); /* accepted, but not written back the same */
  for (size_t i = 0; i < s.n; i++) {
    const struct applied_entry *e = applied_find(&back, s.v[i].name);
    if (e == NULL || e->action != s.v[i].action ||
        strcmp(e->cond, s.v[i].cond) != 0)
      abort();
  }
  free(text);
  applied_free(&s);
  applied_free(&back);
}

/* applied.log: what is accepted is bounded, and written back line by
 * line (each behaviour's last intent, in SEQ order) parses to the same. */
static void intents(const char *buf, size_t len) {
  struct applied_intents s, back;
  char why[256], *text;
  size_t used = strlen(APPLIED_LOG_HEADER);

  if (applied_log_parse(buf, len, &s, why, sizeof(why)) != 0) {
    if (s.n != 0 || s.v != NULL || why[0] == '\0')
      abort();
    return;
  }
  if (s.n > APPLIED_LOG_NAMES || (s.n > 0) != (s.last_seq > 0))
    abort();
  text = malloc(used + s.n * (APPLIED_LOG_LINE_MAX + 1) + 1);
  if (text == NULL)
    abort();
  memcpy(text, APPLIED_LOG_HEADER, used);
  /* Entries keep the order of their first line; write them by SEQ. */
  for (uint64_t prev = 0;;) {
    const struct applied_intent *next = NULL;
    size_t n;
    for (size_t i = 0; i < s.n; i++)
      if (s.v[i].seq > prev && (next == NULL || s.v[i].seq < next->seq))
        next = &s.v[i];
    if (next == NULL)
      break;
    if (next->seq > s.last_seq)
      abort();
    n = applied_log_line(text + used, APPLIED_LOG_LINE_MAX + 1, next->seq,
                         next->name, next->action, next->fingerprint);
    if (n == 0)
      abort(); /* accepted, but cannot be written */
    used += n;
    prev = next->seq;
  }
  if (applied_log_parse(text, used, &back, why, sizeof(why)) != 0 ||
      back.n != s.n)
    abort();
  for (size_t i = 0; i < s.n; i++) {
    const struct applied_intent *e = applied_intent_find(&back, s.v[i].name);
    if (e == NULL || e->seq != s.v[i].seq || e->action != s.v[i].action ||
        e->fingerprint != s.v[i].fingerprint)
      abort();
  }
  free(text);
  applied_intents_free(&s);
  applied_intents_free(&back);
}

static void members(const char *buf, size_t len) {
  struct members_set s;
  char why[256];

  if (members_parse(buf, len, "self", &s, why, sizeof(why)) != 0) {
    if (s.n != 0 || s.v != NULL || why[0] == '\0')
      abort();
    return;
  }
  if (s.n > MEMBERS_FILE_ENTRIES)
    abort();
  for (size_t i = 0; i < s.n; i++)
    if (!choreo_valid_name(s.v[i].name) || strcmp(s.v[i].name, "self") == 0 ||
        s.v[i].ngroups > CHOREO_GROUPS_MAX)
      abort();
  members_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  applied((const char *)data, size);
  intents((const char *)data, size);
  members((const char *)data, size);
  return 0;
}
