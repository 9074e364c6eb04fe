/*
 * notify.c — the systemd notify protocol (sd_notify(3), "NOTIFY_SOCKET"):
 * the agent sends newline-free "KEY=VALUE" datagrams to a unix datagram
 * socket that systemd named in the environment. Spoken directly rather
 * than through libsystemd: the protocol is one sendto() per message and
 * stable, and the agent then builds and runs the same where systemd is
 * absent (docs/ARCHITECTURE.md "systemd"). A send never blocks the loop
 * (MSG_DONTWAIT): a message systemd can't take now is dropped and counted;
 * STATUS= and WATCHDOG=1 are sent again anyway.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "choreo.h"
#include "log.h"
#include "notify.h"
#include "util.h"

socklen_t notify_parse_addr(const char *value, struct sockaddr_un *addr) {
  size_t len = value != NULL ? strlen(value) : 0;

  memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  if (len < 2 || (value[0] != '/' && value[0] != '@') ||
      len >= sizeof(addr->sun_path))
    return 0;
  memcpy(addr->sun_path, value, len);
  /* An abstract name: the '@' stands for the leading NUL byte, and the
   * name is exactly len bytes (no terminating NUL). */
  if (value[0] == '@') {
    addr->sun_path[0] = '\0';
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
  }
  return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
}

static void send_msg(struct notify *n, const char *msg) {
  ssize_t rv;

  if (n->fd < 0)
    return;
  rv = sendto(n->fd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL,
              (const struct sockaddr *)&n->addr, n->addr_len);
  if (rv >= 0)
    return;
  n->errors++;
  if (log_allow("notify", (int64_t)(uv_hrtime() / 1000000)))
    log_warn("NOTIFY_SOCKET: cannot send %.16s: %s (%lu such errors)", msg,
             strerror(errno), n->errors);
}

/* WATCHDOG_USEC, and WATCHDOG_PID when set (the watchdog is ours only if
 * it names our pid). Returns the interval in ms; 0: none. */
static uint64_t watchdog_ms(void) {
  const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
  unsigned long long us, p;
  char *end;

  if (usec == NULL)
    return 0;
  if (pid != NULL) {
    errno = 0;
    p = strtoull(pid, &end, 10);
    if (errno != 0 || end == pid || *end != '\0' ||
        p != (unsigned long long)getpid())
      return 0;
  }
  errno = 0;
  us = strtoull(usec, &end, 10);
  if (errno != 0 || end == usec || *end != '\0' || us < 2000 ||
      us > UINT64_MAX / 2) {
    log_warn("WATCHDOG_USEC: \"%.32s\" is not a number of microseconds of at "
             "least 2000; no watchdog pings",
             usec);
    return 0;
  }
  return us / 1000;
}

int notify_init(struct notify *n, uv_loop_t *loop) {
  const char *env = getenv("NOTIFY_SOCKET");

  memset(n, 0, sizeof(*n));
  n->fd = -1;
  uv_timer_init(loop, &n->watchdog);
  uv_timer_init(loop, &n->status_timer);
  if (env != NULL) {
    n->addr_len = notify_parse_addr(env, &n->addr);
    if (n->addr_len == 0)
      log_warn("NOTIFY_SOCKET: \"%.64s\" is not an absolute path or an "
               "abstract name (@name) shorter than %zu bytes; not notifying "
               "systemd",
               env, sizeof(n->addr.sun_path));
    else
      n->watchdog_ms = watchdog_ms();
  }
  unsetenv("NOTIFY_SOCKET");
  unsetenv("WATCHDOG_USEC");
  unsetenv("WATCHDOG_PID");
  if (n->addr_len == 0)
    return 0;
  n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (n->fd < 0) {
    int err = -errno;
    log_error("NOTIFY_SOCKET: cannot open a socket: %s", strerror(errno));
    return err;
  }
  return 0;
}

static void status_check(struct notify *n);
static void on_status_timer(uv_timer_t *t);

static void on_watchdog(uv_timer_t *t) {
  send_msg(container_of(t, struct notify, watchdog), "WATCHDOG=1");
}

void notify_start(struct notify *n) {
  uint64_t every = n->watchdog_ms / 2;
  if (n->fd < 0)
    return;
  if (n->status != NULL)
    status_check(n);
  if (every == 0)
    return;
  log_info("systemd watchdog: %" PRIu64 " ms; pinging every %" PRIu64 " ms",
           n->watchdog_ms, every);
  uv_timer_start(&n->watchdog, on_watchdog, every, every);
}

void notify_ready(struct notify *n) {
  if (n->ready || n->stopping)
    return;
  n->ready = true;
  send_msg(n, "READY=1");
}

static void send_status(struct notify *n) {
  char text[NOTIFY_STATUS_MAX * 2], msg[sizeof("STATUS=") + NOTIFY_STATUS_MAX];

  text[0] = '\0';
  n->status(n, text, sizeof(text));
  /* Control characters would end or corrupt the line systemd shows. */
  (void)util_escape(text, msg + 7, sizeof(msg) - 7);
  if (strcmp(msg + 7, n->sent) == 0)
    return;
  memcpy(msg, "STATUS=", 7);
  send_msg(n, msg);
  snprintf(n->sent, sizeof(n->sent), "%s", msg + 7);
  n->sent_at = uv_now(n->status_timer.loop);
}

/* Send the status if it changed and the last one is old enough; look
 * again when the interval since the last one ends (one-shot, so that two
 * lines are never closer than NOTIFY_STATUS_MIN_MS). */
static void status_check(struct notify *n) {
  uint64_t now = uv_now(n->status_timer.loop), due;

  if (now >= n->sent_at + NOTIFY_STATUS_MIN_MS)
    send_status(n);
  due = n->sent_at + NOTIFY_STATUS_MIN_MS;
  uv_timer_start(&n->status_timer, on_status_timer,
                 due > now ? due - now : NOTIFY_STATUS_MIN_MS, 0);
}

static void on_status_timer(uv_timer_t *t) {
  status_check(container_of(t, struct notify, status_timer));
}

void notify_status_changed(struct notify *n) {
  if (n->fd < 0 || n->stopping || n->status == NULL)
    return;
  status_check(n);
}

void notify_stop(struct notify *n) {
  if (n->stopping)
    return;
  uv_timer_stop(&n->watchdog);
  uv_timer_stop(&n->status_timer);
  send_msg(n, "STOPPING=1");
  n->stopping = true;
}

void notify_close(struct notify *n) {
  notify_stop(n);
  if (!uv_is_closing((uv_handle_t *)&n->watchdog))
    uv_close((uv_handle_t *)&n->watchdog, NULL);
  if (!uv_is_closing((uv_handle_t *)&n->status_timer))
    uv_close((uv_handle_t *)&n->status_timer, NULL);
  if (n->fd >= 0)
    close(n->fd);
  n->fd = -1;
}
