/*
 * mesh.c — nanomsg PUB/SUB sockets driven by the libuv loop; see mesh.h.
 */
#include <errno.h>
#include <nanomsg/nn.h>
#include <nanomsg/pubsub.h>

#include "mesh.h"
#include "util.h"

/* Reconnect quickly to a member that restarts, but back off to a few
 * seconds for one that is gone, so dead endpoints cost next to nothing. */
#define MESH_RECONNECT_IVL_MS 100
#define MESH_RECONNECT_IVL_MAX_MS 3000

static int setopt_int(int s, int level, int opt, int value) {
  return nn_setsockopt(s, level, opt, &value, sizeof(value)) == 0 ? 0
                                                                  : -nn_errno();
}

static int open_sub(const char *listen, size_t max_msg, int *out) {
  int s = nn_socket(AF_SP, NN_SUB);
  int rv;
  if (s < 0)
    return -nn_errno();
  if (nn_setsockopt(s, NN_SUB, NN_SUB_SUBSCRIBE, "", 0) != 0 ||
      (rv = setopt_int(s, NN_SOL_SOCKET, NN_RCVMAXSIZE, (int)max_msg)) != 0 ||
      (rv = setopt_int(s, NN_SOL_SOCKET, NN_RCVBUF, 1024 * 1024)) != 0) {
    rv = -nn_errno();
    goto fail;
  }
  if (nn_bind(s, listen) < 0) {
    rv = -nn_errno();
    goto fail;
  }
  *out = s;
  return 0;
fail:
  nn_close(s);
  return rv;
}

static int open_pub(int *out) {
  int s = nn_socket(AF_SP, NN_PUB);
  int rv;
  if (s < 0)
    return -nn_errno();
  if ((rv = setopt_int(s, NN_SOL_SOCKET, NN_RECONNECT_IVL,
                       MESH_RECONNECT_IVL_MS)) != 0 ||
      (rv = setopt_int(s, NN_SOL_SOCKET, NN_RECONNECT_IVL_MAX,
                       MESH_RECONNECT_IVL_MAX_MS)) != 0 ||
      (rv = setopt_int(s, NN_SOL_SOCKET, NN_SNDBUF, 1024 * 1024)) != 0) {
    nn_close(s);
    return rv;
  }
  *out = s;
  return 0;
}

static void on_readable(uv_poll_t *h, int status, int events) {
  struct mesh *m = container_of(h, struct mesh, poll);
  /* Drain: the descriptor stays readable while messages are queued, but
   * one wake-up per message would be wasteful. Bound the batch so a flood
   * can't starve the loop's other work. */
  for (int i = 0; i < 1024 && m->sub >= 0; i++) {
    void *buf = NULL;
    int n = nn_recv(m->sub, &buf, NN_MSG, NN_DONTWAIT);
    if (n < 0)
      break; /* EAGAIN: drained; anything else: nothing to deliver */
    m->on_recv(m, buf, (size_t)n);
    nn_freemsg(buf);
  }
}

int mesh_init(struct mesh *m, uv_loop_t *loop, const char *listen,
              size_t max_msg, mesh_recv_fn on_recv) {
  int fd;
  size_t fdlen = sizeof(fd);
  int rv;

  m->sub = m->pub = -1;
  m->on_recv = on_recv;
  m->close_cb = NULL;
  if ((rv = open_sub(listen, max_msg, &m->sub)) != 0)
    return rv;
  if ((rv = open_pub(&m->pub)) != 0)
    goto fail;
  if (nn_getsockopt(m->sub, NN_SOL_SOCKET, NN_RCVFD, &fd, &fdlen) != 0) {
    rv = -nn_errno();
    goto fail;
  }
  if ((rv = uv_poll_init(loop, &m->poll, fd)) != 0)
    goto fail;
  return 0;
fail:
  if (m->pub >= 0)
    nn_close(m->pub);
  nn_close(m->sub);
  m->sub = m->pub = -1;
  return rv;
}

int mesh_start(struct mesh *m) {
  return uv_poll_start(&m->poll, UV_READABLE, on_readable);
}

int mesh_connect(struct mesh *m, const char *addr) {
  int ep = nn_connect(m->pub, addr);
  return ep >= 0 ? ep : -nn_errno();
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

void mesh_stats(const struct mesh *m, struct mesh_stats *st) {
  st->out_up = nn_get_statistic(m->pub, NN_STAT_CURRENT_CONNECTIONS);
  st->out_connecting = nn_get_statistic(m->pub, NN_STAT_INPROGRESS_CONNECTIONS);
  st->connect_errors = nn_get_statistic(m->pub, NN_STAT_CONNECT_ERRORS);
  st->in_up = nn_get_statistic(m->sub, NN_STAT_CURRENT_CONNECTIONS);
}

static void on_poll_closed(uv_handle_t *h) {
  struct mesh *m = container_of((uv_poll_t *)h, struct mesh, poll);
  /* The descriptor belongs to nanomsg: close the sockets only once libuv
   * no longer watches it. */
  nn_close(m->sub);
  nn_close(m->pub);
  m->sub = m->pub = -1;
  if (m->close_cb != NULL)
    m->close_cb(m);
}

void mesh_close(struct mesh *m, void (*cb)(struct mesh *m)) {
  if (uv_is_closing((uv_handle_t *)&m->poll))
    return;
  m->close_cb = cb;
  uv_close((uv_handle_t *)&m->poll, on_poll_closed);
}
