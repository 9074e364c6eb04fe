/*
 * validate.c — the rules for names, states, data keys, free text and
 * durations, shared by the agent (config, wire, control) and its clients
 * so that the CLI refuses exactly what the agent would.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "choreo.h"

static bool all_of(const char *s, size_t max, bool (*ok)(unsigned char)) {
  size_t n = 0;
  if (s == NULL || *s == '\0')
    return false;
  for (; *s != '\0'; s++, n++) {
    if (n >= max || !ok((unsigned char)*s))
      return false;
  }
  return true;
}

static bool lower_digit(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool name_char(unsigned char c) {
  return lower_digit(c) || (c >= 'A' && c <= 'Z') || c == '.' || c == '_' ||
         c == '-';
}

static bool state_char(unsigned char c) {
  return lower_digit(c) || c == '_' || c == '-';
}

static bool key_char(unsigned char c) {
  return lower_digit(c) || c == '_' || c == '.' || c == '-';
}

bool choreo_valid_name(const char *s) {
  return all_of(s, CHOREO_NAME_MAX, name_char);
}

bool choreo_valid_state(const char *s) {
  return all_of(s, CHOREO_STATE_MAX, state_char);
}

bool choreo_valid_settable_state(const char *s) {
  return choreo_valid_state(s) && strcmp(s, "lost") != 0 &&
         strcmp(s, "left") != 0;
}

bool choreo_valid_data_key(const char *s) {
  return all_of(s, CHOREO_DATA_KEY_MAX, key_char);
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_seq(const unsigned char *p) {
  unsigned char c = p[0];
  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf)
    return (p[1] & 0xc0) == 0x80 ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    unsigned char lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    if (p[1] < lo || p[1] > hi || (p[2] & 0xc0) != 0x80)
      return 0;
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    unsigned char lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    if (p[1] < lo || p[1] > hi || (p[2] & 0xc0) != 0x80 ||
        (p[3] & 0xc0) != 0x80)
      return 0;
    return 4;
  }
  return 0;
}

bool choreo_valid_text(const char *s, size_t max) {
  const unsigned char *p = (const unsigned char *)s;
  size_t n = 0;
  if (s == NULL)
    return false;
  while (p[n] != '\0') {
    size_t k = utf8_seq(p + n);
    if (k == 0)
      return false;
    n += k;
    if (n > max)
      return false;
  }
  return true;
}

int choreo_parse_duration(const char *s, uint64_t *ms) {
  static const struct {
    const char *unit;
    uint64_t factor;
  } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
  uint64_t v = 0;
  const char *p = s;
  if (s == NULL || *s < '0' || *s > '9')
    return CHOREO_EINVAL;
  for (; *p >= '0' && *p <= '9'; p++) {
    if (v > (UINT64_MAX - 9) / 10)
      return CHOREO_EINVAL;
    v = v * 10 + (uint64_t)(*p - '0');
  }
  for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
    if (strcmp(p, units[i].unit) == 0) {
      /* Durations beyond about 292 million years are not durations. */
      if (v > INT64_MAX / units[i].factor)
        return CHOREO_EINVAL;
      *ms = v * units[i].factor;
      return 0;
    }
  }
  return CHOREO_EINVAL;
}

const char *choreo_version(void) {
  return CHOREO_VERSION;
}
