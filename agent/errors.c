/*
 * errors.c — one place for every error message: choreo_strerror() and
 * friends describe both CHOREO_E* codes and negated errno values.
 */
#include <stdio.h>
#include <string.h>

#include "choreo.h"

const char *choreo_strerror(int err) {
  switch (err) {
  case CHOREO_OK:
    return "success";
#define XX(name, msg)                                                          \
  case CHOREO_E##name:                                                         \
    return msg;
    CHOREO_ERRNO_MAP(XX)
#undef XX
  default:
    break;
  }
  if (err < 0 && err > -4096)
    return strerror(-err); /* glibc: thread-safe for valid errno values */
  return "unknown error";
}

char *choreo_strerror_r(int err, char *buf, size_t len) {
  if (len == 0)
    return buf;
  snprintf(buf, len, "%s", choreo_strerror(err));
  return buf;
}

const char *choreo_err_name(int err) {
  switch (err) {
  case CHOREO_OK:
    return "CHOREO_OK";
#define XX(name, msg)                                                          \
  case CHOREO_E##name:                                                         \
    return "CHOREO_E" #name;
    CHOREO_ERRNO_MAP(XX)
#undef XX
  default:
    return err < 0 && err > -4096 ? "errno" : "unknown";
  }
}
