/*
 * fuzz_control.c — libFuzzer target for the control socket: the input is
 * what one client sends, byte for byte, on a real connection to a real
 * control server (agent/control.c: line framing, limits, JSON parsing)
 * whose requests go to the agent's own handler (agent/agent_control.c:
 * validation, status, set, metrics…), exactly as in the daemon. Then the
 * client hangs up and the server must close and release it.
 *
 * control.c keeps its line handling private, so the target drives it
 * through a unix socket; the agent around it is built as start() in
 * agent.c builds it, without the network (mesh) and the runner, which no
 * request reaches. `leave` would stop that agent, so its hook does
 * nothing here.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void no_peer_event(void *arg, const struct peer_event *ev) {}

static void no_leave(struct ctl *c) {}

static void make_config(const char *dir, char *path, size_t size) {
  FILE *f;
  snprintf(path, size, "%s/choreo.yaml", dir);
  f = fopen(path, "w");
  if (f == NULL)
    abort();
  fprintf(f,
          "node: {name: fuzz, cluster: fuzz, groups: [db], data: {k: v}}\n"
          "network: {listen: 'inproc://fuzz'}\n"
          "control: {socket: %s/c.sock, mode: '0600'}\n"
          "state_dir: %s/state\n",
          dir, dir);
  if (fclose(f) != 0)
    abort();
}

static char dir[64]; /* the agent's files, removed at exit */

static int remove_entry(const char *path, const struct stat *st, int type,
                        struct FTW *ftw) {
  return remove(path);
}

static void remove_dir(void) {
  nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* The agent, built once: with dir, the harness's only state. */
static struct agent *agent(void) {
  static struct agent *a;
  struct config_errors errs = {0};
  char path[128];

  if (a != NULL)
    return a;
  snprintf(dir, sizeof(dir), "%s/fuzz_control.XXXXXX",
           access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
  if (mkdtemp(dir) == NULL || (a = calloc(1, sizeof(*a))) == NULL)
    abort();
  atexit(remove_dir);
  make_config(dir, path, sizeof(path));
  if (config_load(path, &a->cfg, &errs) != 0 || uv_loop_init(&a->loop) != 0)
    abort();
  peers_init(&a->peers, a->cfg->name, PEERS_MAX_DEFAULT, no_peer_event, a);
  a->ctl.leave = no_leave;
  if (engine_init(&a->engine, a->cfg, uv_now(&a->loop)) != 0 ||
      self_init(&a->self) != 0 || ctl_start(&a->ctl) != 0)
    abort();
  return a;
}

static int client(const char *path) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
      fcntl(fd, F_SETFL, O_NONBLOCK) != 0)
    abort();
  return fd;
}

/* Read what the server says; true once it has closed the connection. */
static bool drain(int fd) {
  char buf[65536];
  for (;;) {
    ssize_t k = recv(fd, buf, sizeof(buf), 0);
    if (k > 0)
      continue;
    return k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
  }
}

/* Send everything, hang up, read every reply until the server has closed
 * the client and released it. A server that never does is a hang, which
 * libFuzzer reports (-timeout). */
static void converse(struct agent *a, int fd, const uint8_t *data,
                     size_t size) {
  size_t sent = 0;
  bool eof = false, shut = false;

  while (!eof || a->ctl.server.nclients > 0) {
    if (sent < size) {
      ssize_t k = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
      if (k > 0)
        sent += (size_t)k;
      else if (errno == EPIPE || errno == ECONNRESET)
        sent = size; /* the server hung up first (line too long) */
    }
    if (sent == size && !shut) {
      shutdown(fd, SHUT_WR);
      shut = true;
    }
    uv_run(&a->loop, UV_RUN_NOWAIT);
    if (!eof)
      eof = drain(fd);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct agent *a = agent();
  int fd = client(a->cfg->socket);
  converse(a, fd, data, size);
  close(fd);
  return 0;
}
