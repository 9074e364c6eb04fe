/*
 * notify.h — telling systemd how the agent is doing, by the notify
 * protocol of sd_notify(3) spoken directly: one datagram per message to
 * the unix socket named by $NOTIFY_SOCKET (a path, or an abstract name
 * written with a leading '@'). READY=1 once the startup sync is over,
 * STATUS= lines ("3 members, 2 behaviours applied") when they change, at
 * most one per NOTIFY_STATUS_MIN_MS, WATCHDOG=1 from the loop at half of
 * $WATCHDOG_USEC, STOPPING=1 when the agent stops. Without
 * $NOTIFY_SOCKET (not under systemd, or Type=simple) every call does
 * nothing. No libsystemd: see docs/ARCHITECTURE.md "systemd".
 */
#ifndef CHOREO_NOTIFY_H
#define CHOREO_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <uv.h>

/* STATUS= lines sent at most this often: the text is asked for (the
 * status hook) at every interval and sent when it changed. */
#define NOTIFY_STATUS_MIN_MS 1000
/* A STATUS= text, bounded (longer ones are cut with "..."). */
#define NOTIFY_STATUS_MAX 200

struct notify {
  int fd; /* -1: notifications are off */
  struct sockaddr_un addr;
  socklen_t addr_len;
  uint64_t watchdog_ms; /* WATCHDOG_USEC / 1000; 0: no watchdog */
  uv_timer_t watchdog, status_timer;
  bool ready, stopping;
  char sent[NOTIFY_STATUS_MAX + 1]; /* the last STATUS= sent */
  uint64_t sent_at;                 /* monotonic ms */
  unsigned long errors;             /* datagrams that could not be sent */
  /* Hook: write the current STATUS= text into buf[len]. */
  void (*status)(struct notify *n, char *buf, size_t len);
};

/* Read $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID and remove them
 * from the environment, so that behaviour scripts don't inherit them:
 * only the agent speaks for the service. Opens the socket; no message is
 * sent yet. A malformed variable is logged (naming it) and turns
 * notifications off; the agent runs on. Returns 0 or a CHOREO_E* code
 * (logged; n is then off but safe to use and close). */
int notify_init(struct notify *n, uv_loop_t *loop);
/* Start the watchdog timer if systemd asked for one, and the status
 * interval. */
void notify_start(struct notify *n);
/* READY=1, once; later calls do nothing. */
void notify_ready(struct notify *n);
/* The status may have changed: ask the hook for it and send it now if
 * the last STATUS= is older than NOTIFY_STATUS_MIN_MS and different;
 * else the next interval does. */
void notify_status_changed(struct notify *n);
/* STOPPING=1 and stop the timers; idempotent. */
void notify_stop(struct notify *n);
/* Close the timers (after notify_stop) and the socket. */
void notify_close(struct notify *n);

/* Parse a NOTIFY_SOCKET value into addr: "/path" or "@abstract". Returns
 * the address length, or 0 when the value is empty, relative, or too
 * long for sun_path. Pure, for the tests. */
socklen_t notify_parse_addr(const char *value, struct sockaddr_un *addr);

#endif
