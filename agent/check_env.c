/*
 * check_env.c — the machine-dependent part of `choreo check` (see
 * check_env.h): the listen address, state_dir and the control socket's
 * directory, each checked as the agent will use it at start, without
 * binding or creating anything, so that it can run beside a live agent
 * (systemd's ExecReload runs it before every reload).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_env.h"

struct report {
  const char *file;
  check_env_fn fn;
  void *arg;
  size_t n;
};

__attribute__((format(printf, 2, 3))) static void
problem(struct report *r, const char *fmt, ...) {
  char msg[CHECK_ENV_MSG_MAX];
  int len = snprintf(msg, sizeof(msg), "%s: ", r->file);
  va_list ap;
  va_start(ap, fmt);
  if (len > 0 && (size_t)len < sizeof(msg))
    vsnprintf(msg + len, sizeof(msg) - (size_t)len, fmt, ap);
  va_end(ap);
  r->fn(r->arg, msg);
  r->n++;
}

/* Whether ip (a literal) is an address of this machine: binding port 0
 * to it says so without taking any port the agent may hold. */
static int local_address(int family, const void *addr) {
  struct sockaddr_storage ss;
  socklen_t len;
  int fd, rv = 0;

  memset(&ss, 0, sizeof(ss));
  if (family == AF_INET) {
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    sin->sin_family = AF_INET;
    memcpy(&sin->sin_addr, addr, sizeof(sin->sin_addr));
    len = sizeof(*sin);
  } else {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    sin6->sin6_family = AF_INET6;
    memcpy(&sin6->sin6_addr, addr, sizeof(sin6->sin6_addr));
    len = sizeof(*sin6);
  }
  if ((fd = socket(family, SOCK_STREAM, 0)) < 0)
    return -errno;
  if (bind(fd, (struct sockaddr *)&ss, len) != 0)
    rv = -errno;
  close(fd);
  return rv;
}

/* tcp://HOST:PORT as nanomsg binds it: HOST is an IPv4 or [IPv6] literal
 * of this machine, or the name of one of its interfaces (nanomsg does no
 * name lookup for a local address). */
static void check_tcp(struct report *r, const char *listen) {
  const char *host = listen + strlen("tcp://"), *colon = strrchr(host, ':');
  char h[CHOREO_ADDR_MAX + 1];
  unsigned char addr[sizeof(struct in6_addr)];
  size_t n;
  int rv;

  if (colon == NULL)
    return; /* config_load() refused it already */
  n = (size_t)(colon - host);
  if (n >= sizeof(h))
    return;
  memcpy(h, host, n);
  h[n] = '\0';
  if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
    memmove(h, h + 1, n - 2);
    h[n - 2] = '\0';
  }
  if (inet_pton(AF_INET, h, addr) == 1)
    rv = local_address(AF_INET, addr);
  else if (inet_pton(AF_INET6, h, addr) == 1)
    rv = local_address(AF_INET6, addr);
  else
    rv = if_nametoindex(h) != 0 ? 0 : -ENODEV;
  if (rv == -ENODEV)
    problem(r,
            "network.listen: %s: \"%s\" is neither an address of this "
            "machine nor one of its interfaces",
            listen, h);
  else if (rv != 0)
    problem(r, "network.listen: %s: %s", listen, strerror(-rv));
}

/* The directory a path is in: what must exist for a socket there. */
static void parent_of(const char *path, char *dir, size_t len) {
  const char *slash = strrchr(path, '/');
  size_t n = slash == NULL ? 0 : (size_t)(slash - path);
  if (slash == path)
    n = 1;
  if (n == 0 || n >= len) {
    snprintf(dir, len, ".");
    return;
  }
  memcpy(dir, path, n);
  dir[n] = '\0';
}

/* A directory the agent creates if missing: it exists as a directory, or
 * its nearest existing parent is a directory this user may write to. */
static int creatable_dir(const char *path, char *why, size_t len) {
  char dir[CONFIG_PATH_MAX];
  struct stat st;

  snprintf(dir, sizeof(dir), "%s", path);
  while (stat(dir, &st) != 0) {
    char up[CONFIG_PATH_MAX];
    if (errno != ENOENT) {
      snprintf(why, len, "%s: %s", dir, strerror(errno));
      return -1;
    }
    parent_of(dir, up, sizeof(up));
    if (strcmp(up, dir) == 0)
      break;
    snprintf(dir, sizeof(dir), "%s", up);
  }
  if (!S_ISDIR(st.st_mode)) {
    snprintf(why, len, "%s: not a directory", dir);
    return -1;
  }
  if (strcmp(dir, path) != 0 && access(dir, W_OK | X_OK) != 0) {
    snprintf(why, len, "%s can't be created in %s: %s", path, dir,
             strerror(errno));
    return -1;
  }
  return 0;
}

void check_env_stderr(void *arg, const char *msg) {
  fprintf(stderr, "%s\n", msg);
}

size_t check_env(const struct config *cfg, const char *file, check_env_fn fn,
                 void *arg) {
  struct report r = {file, fn, arg, 0};
  char why[CONFIG_PATH_MAX + 128], dir[CONFIG_PATH_MAX];
  struct stat st;

  if (strncmp(cfg->listen, "tcp://", 6) == 0) {
    check_tcp(&r, cfg->listen);
  } else if (strncmp(cfg->listen, "ipc://", 6) == 0) {
    parent_of(cfg->listen + 6, dir, sizeof(dir));
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
      problem(&r, "network.listen: %s: directory %s does not exist",
              cfg->listen, dir);
  }
  if (creatable_dir(cfg->state_dir, why, sizeof(why)) != 0)
    problem(&r, "state_dir: %s", why);
  parent_of(cfg->socket, dir, sizeof(dir));
  if (creatable_dir(dir, why, sizeof(why)) != 0)
    problem(&r, "control.socket: %s: %s", cfg->socket, why);
  return r.n;
}
