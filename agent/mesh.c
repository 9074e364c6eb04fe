/*
 * mesh.c — nanomsg PUB/SUB sockets driven by the libuv loop; see mesh.h.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <nanomsg/nn.h>
#include <nanomsg/pubsub.h>
#include <nanomsg/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "choreo.h"
#include "log.h"
#include "mesh.h"
#include "util.h"

/* Reconnect quickly to a member that restarts, but back off to a few
 * seconds for one that is gone, so dead endpoints cost next to nothing. */
#define MESH_RECONNECT_IVL_MS 100
#define MESH_RECONNECT_IVL_MAX_MS 3000
/* nanomsg's buffers, which it also gives the kernel (SO_SNDBUF,
 * SO_RCVBUF) for every connection: a full mesh of N agents has N(N-1)
 * connections on each side, and at 1 MiB each 200 agents on one machine
 * ran the kernel out of TCP memory ("TCP: out of memory -- consider tuning
 * tcp_mem") as soon as a few receivers fell behind. Two of the largest
 * messages fit; what doesn't is dropped for that member alone and
 * repaired by the next heartbeat. */
#define MESH_BUF_BYTES (2 * CHOREO_MSG_MAX)
/* Messages handled per wake-up of the loop (see on_readable). */
#define MESH_RECV_BATCH 64

static int setopt_int(int s, int level, int opt, int value) {
  return nn_setsockopt(s, level, opt, &value, sizeof(value)) == 0 ? 0
                                                                  : -nn_errno();
}

static int open_sub(const char *listen, size_t max_msg, int *out, int *ep) {
  int s = nn_socket(AF_SP, NN_SUB);
  int rv;
  if (s < 0)
    return -nn_errno();
  if (nn_setsockopt(s, NN_SUB, NN_SUB_SUBSCRIBE, "", 0) != 0 ||
      (rv = setopt_int(s, NN_SOL_SOCKET, NN_RCVMAXSIZE, (int)max_msg)) != 0 ||
      (rv = setopt_int(s, NN_SOL_SOCKET, NN_RCVBUF, MESH_BUF_BYTES)) != 0) {
    rv = -nn_errno();
    goto fail;
  }
  if ((*ep = nn_bind(s, listen)) < 0) {
    rv = -nn_errno();
    goto fail;
  }
  *out = s;
  return 0;
fail:
  nn_close(s);
  return rv;
}

/* TCP_NODELAY: nanomsg leaves Nagle's algorithm on, which holds a
 * message back while the previous one on the same connection is not yet
 * acknowledged; with the receiver's delayed acknowledgements, a change
 * sent just after a heartbeat could wait tens of milliseconds. */
static int open_pub(int *out) {
  int s = nn_socket(AF_SP, NN_PUB);
  int rv;
  if (s < 0)
    return -nn_errno();
  if ((rv = setopt_int(s, NN_SOL_SOCKET, NN_RECONNECT_IVL,
                       MESH_RECONNECT_IVL_MS)) != 0 ||
      (rv = setopt_int(s, NN_SOL_SOCKET, NN_RECONNECT_IVL_MAX,
                       MESH_RECONNECT_IVL_MAX_MS)) != 0 ||
      (rv = setopt_int(s, NN_SOL_SOCKET, NN_SNDBUF, MESH_BUF_BYTES)) != 0 ||
      (rv = setopt_int(s, NN_TCP, NN_TCP_NODELAY, 1)) != 0) {
    nn_close(s);
    return rv;
  }
  *out = s;
  return 0;
}

/* The host of "tcp://A.B.C.D:PORT" into host, and whether it is a
 * loopback address. False for anything else: another transport, a name,
 * IPv6 (nanomsg's sockets are IPv4-only by default), the wildcard. */
static bool tcp_ipv4_host(const char *addr, char *host, size_t cap,
                          bool *loopback) {
  unsigned char bin[4];
  const char *h, *end;
  size_t n;

  if (strncmp(addr, "tcp://", 6) != 0 || strchr(addr, ';') != NULL)
    return false;
  h = addr + 6;
  end = strrchr(h, ':');
  if (end == NULL || (n = (size_t)(end - h)) == 0 || n >= cap)
    return false;
  memcpy(host, h, n);
  host[n] = '\0';
  if (inet_pton(AF_INET, host, bin) != 1)
    return false;
  *loopback = bin[0] == 127;
  return (bin[0] | bin[1] | bin[2] | bin[3]) != 0;
}

static void on_readable(uv_poll_t *h, int status, int events) {
  struct mesh *m = container_of(h, struct mesh, poll);
  /* Drain in batches: the descriptor stays readable while messages are
   * queued, and one wake-up per message would be wasteful. The batch is
   * small because while messages keep arriving the drain would otherwise
   * go on in real time, with the loop's clock frozen and its timers (the
   * answers to joiners among them) held back until the batch ends. */
  int i;
  for (i = 0; i < MESH_RECV_BATCH && m->sub >= 0; i++) {
    void *buf = NULL;
    int n = nn_recv(m->sub, &buf, NN_MSG, NN_DONTWAIT);
    if (n < 0) {
      /* EAGAIN: drained; anything else: nothing to deliver */
      m->drained_reads++;
      if (m->on_drained != NULL)
        m->on_drained(m);
      break;
    }
    m->on_recv(m, buf, (size_t)n);
    nn_freemsg(buf);
  }
  if (i == MESH_RECV_BATCH)
    m->full_reads++;
}

/* ---- the inbox guard ---- */

/* The directory stays open from mesh_init on: when the guard is needed,
 * there is no descriptor left to open it. */
static uint64_t count_fds(struct mesh *m) {
  struct dirent *de;
  uint64_t n = 0;
  if (m->fd_dir == NULL)
    return 0;
  rewinddir(m->fd_dir);
  while ((de = readdir(m->fd_dir)) != NULL)
    n += de->d_name[0] != '.';
  return n > 0 ? n - 1 : 0; /* less the directory's own */
}

/* The port of a "tcp://HOST:PORT" inbox; 0 for another transport. */
static int tcp_port(const char *addr) {
  const char *colon = strrchr(addr, ':');
  char *end;
  long port;
  if (strncmp(addr, "tcp://", 6) != 0 || colon == NULL)
    return 0;
  port = strtol(colon + 1, &end, 10);
  return *end == '\0' && port > 0 && port < 65536 ? (int)port : 0;
}

static int sock_port(const struct sockaddr_storage *ss) {
  if (ss->ss_family == AF_INET)
    return ntohs(((const struct sockaddr_in *)ss)->sin_port);
  if (ss->ss_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
  return 0;
}

/* Linux's struct tcp_info goes on past glibc's copy, which ends at
 * tcpi_total_retrans (the kernel's own header clashes with glibc's); the
 * kernel only ever appends fields, and reports how much it filled. */
struct tcp_info_ext {
  struct tcp_info base;
  uint64_t pacing_rate, max_pacing_rate, bytes_acked, bytes_received;
};

/* Is fd a connection accepted on the inbox that never sent more than
 * nanomsg's 8-byte header? *quiet_ms: time since it last sent a byte. */
static bool header_only(const struct mesh *m, int fd, uint32_t *quiet_ms) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  struct tcp_info_ext ti;
  int listening = 0;

  if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
      sock_port(&ss) != m->listen_port)
    return false;
  len = sizeof(listening);
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 ||
      listening)
    return false;
  memset(&ti, 0, sizeof(ti));
  len = sizeof(ti);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 || len < sizeof(ti))
    return false;
  *quiet_ms = ti.base.tcpi_last_data_recv;
  return ti.bytes_received <= 8;
}

/* Shut down (not close: the descriptor stays nanomsg's, which sees the
 * end of the connection and closes it itself) every inbox connection
 * that has sent nothing but the header for MESH_IDLE_MS. A member's
 * connection carries a heartbeat every period and is left alone.
 * Returns how many; *young counts those too recent to judge. */
static uint64_t sweep_idle(struct mesh *m, uint64_t *young) {
  DIR *d = m->listen_port > 0 ? m->fd_dir : NULL;
  struct dirent *de;
  uint64_t n = 0;

  *young = 0;
  if (d == NULL)
    return 0;
  rewinddir(d);
  while ((de = readdir(d)) != NULL) {
    char *end;
    long fd = strtol(de->d_name, &end, 10);
    uint32_t quiet;
    if (*end != '\0' || fd < 0 || fd == dirfd(d) || fd > INT_MAX ||
        !header_only(m, (int)fd, &quiet))
      continue;
    if (quiet < MESH_IDLE_MS) {
      (*young)++;
      continue;
    }
    if (shutdown((int)fd, SHUT_RDWR) == 0)
      n++;
  }
  return n;
}

static void guard_log(struct mesh *m, uint64_t now, const char *what) {
  /* Once per 10 s at most: a flood would otherwise flood the log too. */
  if (m->last_log_ms != 0 && now - m->last_log_ms < 10000)
    return;
  log_warn("inbox: %" PRIu64 " of %" PRIu64 " descriptors in use: %s "
           "(so far %" PRIu64 " idle connections closed, %" PRIu64
           " resets); see docs/SECURITY.md",
           m->fds, m->fd_limit, what, m->idle_closed, m->resets);
  m->last_log_ms = now;
}

static void rebind(struct mesh *m) {
  int ep = nn_bind(m->sub, m->listen);
  /* The old listening socket is closed by nanomsg's thread, maybe not
   * yet: EADDRINUSE until then, and the next tick tries again. */
  if (ep >= 0)
    m->bind_ep = ep;
  else if (nn_errno() != EADDRINUSE)
    log_warn("inbox: cannot listen again on %s: %s", m->listen,
             nn_strerror(nn_errno()));
}

/* Close every inbox connection and stop listening for MESH_COOLDOWN_MS:
 * the attacker refills what a sweep frees, or its connections are not
 * idle. Members reconnect once the inbox listens again. */
static void reset_inbox(struct mesh *m, uint64_t now) {
  nn_shutdown(m->sub, m->bind_ep);
  m->bind_ep = -1;
  m->rebind_at = now + MESH_COOLDOWN_MS;
  m->resets++;
  guard_log(m, now,
            "closed every inbox connection and stopped listening "
            "for a moment");
}

static void guard(struct mesh *m);

/* The guard looks again soon only when descriptors are running high: an
 * idle agent should not wake ten times a second for it. */
static void on_guard(uv_timer_t *t) {
  struct mesh *m = container_of(t, struct mesh, guard);
  guard(m);
  uv_timer_start(t, on_guard,
                 m->fds < m->fd_limit / 2 ? MESH_GUARD_IDLE_MS : MESH_GUARD_MS,
                 0);
}

static void guard(struct mesh *m) {
  uint64_t now = uv_now(m->guard.loop), young = 0, n;
  bool again;

  /* nanomsg counts no incoming connection (its "current connections"
   * stay 0 for accepted ones), so count descriptors: a directory of at
   * most fd_limit entries. */
  m->fds = count_fds(m);
  if (m->bind_ep < 0) {
    if (now >= m->rebind_at)
      rebind(m);
    return;
  }
  if (m->fds < m->fd_limit / 4 * 3) {
    m->over_since = 0;
    return;
  }
  if (m->over_since == 0)
    m->over_since = now;
  if (now - m->window_start >= MESH_REFILL_MS) {
    m->window_start = now;
    m->swept_window = 0;
  }
  n = sweep_idle(m, &young);
  m->idle_closed += n;
  m->swept_window += n;
  if (n + young == 0) {
    /* Not one connection that only sent a header: members, scripts or
     * clients hold the descriptors, and closing the inbox would only
     * cut members off. */
    guard_log(m, now,
              "none of them an idle inbox connection; raise the "
              "limit");
    return;
  }
  /* The attacker reconnects and sweeping won't do: more connections
   * swept within MESH_REFILL_MS than twice the table holds, or the count
   * stays over the mark with nothing idle enough to sweep. */
  again = m->swept_window >= 2 * m->fd_limit ||
          (n == 0 && now - m->over_since >= MESH_STUCK_MS);
  if (again) {
    m->over_since = m->swept_window = 0;
    reset_inbox(m, now);
  } else if (n > 0) {
    m->over_since = now;
    guard_log(m, now, "closed inbox connections that only sent a header");
  }
  /* else: connections too recent to judge; the next tick will. */
}

static uint64_t fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
    return 0;
  return (uint64_t)rl.rlim_cur;
}

int mesh_init(struct mesh *m, uv_loop_t *loop, const char *listen,
              size_t max_msg, mesh_recv_fn on_recv) {
  int fd;
  size_t fdlen = sizeof(fd);
  int rv;

  m->sub = m->pub = m->share = -1;
  m->handles = 0;
  m->on_recv = on_recv;
  m->on_drained = NULL;
  m->close_cb = NULL;
  m->fd_limit = fd_limit();
  m->fds = m->resets = m->idle_closed = m->last_log_ms = 0;
  m->rebind_at = m->over_since = m->swept_window = m->window_start = 0;
  m->listen_port = tcp_port(listen);
  m->fd_dir = NULL;
  if (snprintf(m->listen, sizeof(m->listen), "%s", listen) >=
      (int)sizeof(m->listen))
    return -EINVAL;
  if (!tcp_ipv4_host(listen, m->local, sizeof(m->local), &m->local_loopback))
    m->local[0] = '\0';
  if ((rv = open_sub(listen, max_msg, &m->sub, &m->bind_ep)) != 0)
    return rv;
  if ((rv = open_pub(&m->pub)) != 0)
    goto fail;
  if (nn_getsockopt(m->sub, NN_SOL_SOCKET, NN_RCVFD, &fd, &fdlen) != 0) {
    rv = -nn_errno();
    goto fail;
  }
  if ((rv = uv_poll_init(loop, &m->poll, fd)) != 0)
    goto fail;
  m->handles = 1;
  uv_timer_init(loop, &m->guard); /* cannot fail */
  m->handles = 2;
  if (m->fd_limit > 0 && (m->fd_dir = opendir("/proc/self/fd")) == NULL)
    log_warn("inbox: no guard against descriptor floods: /proc/self/fd: %s",
             strerror(errno));
  return 0;
fail:
  if (m->pub >= 0)
    nn_close(m->pub);
  nn_close(m->sub);
  m->sub = m->pub = -1;
  return rv;
}

int mesh_start(struct mesh *m) {
  int rv = uv_poll_start(&m->poll, UV_READABLE, on_readable);
  if (rv == 0 && m->fd_limit > 0)
    uv_timer_start(&m->guard, on_guard, MESH_GUARD_MS, 0);
  return rv;
}

/* Connect PUB socket s to addr, from the inbox's address when it can
 * (mesh_connect). */
static int connect_from(const struct mesh *m, int s, const char *addr) {
  char host[64], bound[sizeof(m->local) + CHOREO_ADDR_MAX + 8];
  bool loopback;
  int ep;

  if (m->local[0] != '\0' &&
      tcp_ipv4_host(addr, host, sizeof(host), &loopback) &&
      loopback == m->local_loopback &&
      (size_t)snprintf(bound, sizeof(bound), "tcp://%s;%s", m->local,
                       addr + strlen("tcp://")) < sizeof(bound))
    ep = nn_connect(s, bound);
  else
    ep = nn_connect(s, addr);
  return ep >= 0 ? ep : -nn_errno();
}

int mesh_connect(struct mesh *m, const char *addr) {
  return connect_from(m, m->pub, addr);
}

int mesh_solo_open(struct mesh *m, const char *addr) {
  int s = -1, rv;
  if ((rv = open_pub(&s)) != 0)
    return rv;
  if ((rv = connect_from(m, s, addr)) < 0) {
    nn_close(s);
    return rv;
  }
  return s;
}

size_t mesh_out_up(struct mesh *m) {
  return (size_t)nn_get_statistic(m->pub, NN_STAT_CURRENT_CONNECTIONS);
}

bool mesh_solo_up(int s) {
  return s >= 0 && nn_get_statistic(s, NN_STAT_CURRENT_CONNECTIONS) > 0;
}

int mesh_solo_send(int s, const void *buf, size_t len) {
  if (s < 0)
    return -EBADF;
  return nn_send(s, buf, len, NN_DONTWAIT) >= 0 ? 0 : -nn_errno();
}

void mesh_solo_close(int s) {
  if (s >= 0)
    nn_close(s);
}

int mesh_share_connect(struct mesh *m, const char *addr) {
  int rv;
  if (m->pub < 0)
    return -EBADF;
  if (m->share < 0 && (rv = open_pub(&m->share)) != 0)
    return rv;
  return connect_from(m, m->share, addr);
}

void mesh_share_disconnect(struct mesh *m, int endpoint) {
  if (endpoint >= 0 && m->share >= 0)
    nn_shutdown(m->share, endpoint);
}

int mesh_share_send(struct mesh *m, const void *buf, size_t len) {
  if (m->share < 0)
    return -EBADF;
  return nn_send(m->share, buf, len, NN_DONTWAIT) >= 0 ? 0 : -nn_errno();
}

size_t mesh_share_up(struct mesh *m) {
  if (m->share < 0)
    return 0;
  return (size_t)nn_get_statistic(m->share, NN_STAT_CURRENT_CONNECTIONS);
}

void mesh_disconnect(struct mesh *m, int endpoint) {
  if (endpoint >= 0 && m->pub >= 0)
    nn_shutdown(m->pub, endpoint);
}

int mesh_send(struct mesh *m, const void *buf, size_t len) {
  if (m->pub < 0)
    return -EBADF;
  return nn_send(m->pub, buf, len, NN_DONTWAIT) >= 0 ? 0 : -nn_errno();
}

void mesh_stats(struct mesh *m, struct mesh_stats *st) {
  st->out_up = nn_get_statistic(m->pub, NN_STAT_CURRENT_CONNECTIONS);
  st->out_connecting = nn_get_statistic(m->pub, NN_STAT_INPROGRESS_CONNECTIONS);
  st->connect_errors = nn_get_statistic(m->pub, NN_STAT_CONNECT_ERRORS);
  st->in_up = nn_get_statistic(m->sub, NN_STAT_CURRENT_CONNECTIONS);
  st->inbox_resets = m->resets;
  st->inbox_idle_closed = m->idle_closed;
  st->fds =
      m->fd_dir != NULL ? count_fds(m) : m->fds; /* fresh: asked for rarely */
}

static void on_poll_closed(uv_handle_t *h) {
  struct mesh *m = h->data;
  if (--m->handles > 0)
    return;
  /* The descriptor belongs to nanomsg: close the sockets only once libuv
   * no longer watches it. */
  nn_close(m->sub);
  nn_close(m->pub);
  if (m->share >= 0)
    nn_close(m->share);
  m->sub = m->pub = m->share = -1;
  if (m->fd_dir != NULL)
    closedir(m->fd_dir);
  m->fd_dir = NULL;
  if (m->close_cb != NULL)
    m->close_cb(m);
}

void mesh_close(struct mesh *m, void (*cb)(struct mesh *m)) {
  if (uv_is_closing((uv_handle_t *)&m->poll))
    return;
  m->close_cb = cb;
  m->poll.data = m->guard.data = m;
  uv_close((uv_handle_t *)&m->poll, on_poll_closed);
  if (m->handles == 2)
    uv_close((uv_handle_t *)&m->guard, on_poll_closed);
}
