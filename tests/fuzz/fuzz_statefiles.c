/*
 * fuzz_statefiles.c — libFuzzer target for the files a restarted agent
 * reads from state_dir (agent/statefiles.c): applied.json and
 * members.json, parsed from the same bytes.
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
  members((const char *)data, size);
  return 0;
}
