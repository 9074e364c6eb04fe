/*
 * test_notify.c — unit tests of agent/notify.c, the systemd notify
 * protocol: NOTIFY_SOCKET values (a path, an abstract @name; relative,
 * empty and too long ones refused), the datagrams sent to a real socket
 * (READY=1 once, STATUS= only when changed, WATCHDOG=1 at half of
 * WATCHDOG_USEC, STOPPING=1), the variables taken out of the environment,
 * and nothing at all without NOTIFY_SOCKET. Each test ends with
 * uv_loop_close() == 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "notify.h"
#include "util.h"

static void notify_parses_paths_and_abstract_names(void **state) {
  struct sockaddr_un a;
  char longname[sizeof(a.sun_path) + 2];
  (void)state;

  assert_int_equal(notify_parse_addr("/run/systemd/notify", &a),
                   offsetof(struct sockaddr_un, sun_path) + 20);
  assert_string_equal(a.sun_path, "/run/systemd/notify");
  assert_int_equal(notify_parse_addr("@abc", &a),
                   offsetof(struct sockaddr_un, sun_path) + 4);
  assert_int_equal(a.sun_path[0], '\0');
  assert_memory_equal(a.sun_path + 1, "abc", 3);
  assert_int_equal(notify_parse_addr("relative/path", &a), 0);
  assert_int_equal(notify_parse_addr("", &a), 0);
  assert_int_equal(notify_parse_addr("@", &a), 0);
  assert_int_equal(notify_parse_addr(NULL, &a), 0);
  memset(longname, 'x', sizeof(longname) - 1);
  longname[0] = '/';
  longname[sizeof(longname) - 1] = '\0';
  assert_int_equal(notify_parse_addr(longname, &a), 0);
}

struct listener {
  int fd;
  char path[64];
};

static void listen_at(struct listener *l) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(l->path, sizeof(l->path), "/tmp/choreo-notify-%d.sock",
           (int)getpid());
  unlink(l->path);
  snprintf(a.sun_path, sizeof(a.sun_path), "%s", l->path);
  l->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  assert_true(l->fd >= 0);
  assert_int_equal(bind(l->fd, (struct sockaddr *)&a, sizeof(a)), 0);
}

/* The next datagram, or "" when none is waiting. */
static void next(struct listener *l, char *buf, size_t len) {
  ssize_t n = recv(l->fd, buf, len - 1, 0);
  buf[n > 0 ? n : 0] = '\0';
}

static int status_n;
static void status_text(struct notify *n, char *buf, size_t len) {
  snprintf(buf, len, "%d members", status_n);
}

static unsigned ticks;
static void on_stop(uv_timer_t *t) {
  if (++ticks == 5)
    uv_stop(t->loop);
}

static void notify_sends_ready_status_watchdog_and_stopping(void **state) {
  struct listener l;
  struct notify n;
  uv_loop_t loop;
  uv_timer_t stop;
  char buf[256];
  unsigned pings = 0;
  (void)state;

  listen_at(&l);
  setenv("NOTIFY_SOCKET", l.path, 1);
  setenv("WATCHDOG_USEC", "40000", 1); /* 20 ms pings */
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(notify_init(&n, &loop), 0);
  assert_null(getenv("NOTIFY_SOCKET"));
  assert_null(getenv("WATCHDOG_USEC"));
  n.status = status_text;
  status_n = 1;
  notify_start(&n);
  next(&l, buf, sizeof(buf));
  assert_string_equal(buf, "STATUS=1 members");
  notify_ready(&n);
  notify_ready(&n);
  next(&l, buf, sizeof(buf));
  assert_string_equal(buf, "READY=1");
  next(&l, buf, sizeof(buf));
  assert_string_equal(buf, ""); /* once */
  status_n = 2;
  notify_status_changed(&n); /* within the second: held back */
  next(&l, buf, sizeof(buf));
  assert_string_equal(buf, "");
  uv_timer_init(&loop, &stop);
  uv_timer_start(&stop, on_stop, 20, 20);
  uv_run(&loop, UV_RUN_DEFAULT); /* 100 ms */
  for (next(&l, buf, sizeof(buf)); buf[0] != '\0'; next(&l, buf, sizeof(buf)))
    pings += strcmp(buf, "WATCHDOG=1") == 0;
  assert_in_range(pings, 3, 6);
  notify_close(&n);
  next(&l, buf, sizeof(buf));
  assert_string_equal(buf, "STOPPING=1");
  uv_close((uv_handle_t *)&stop, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  close(l.fd);
  unlink(l.path);
}

static void notify_does_nothing_without_notify_socket(void **state) {
  struct notify n;
  uv_loop_t loop;
  (void)state;

  unsetenv("NOTIFY_SOCKET");
  setenv("WATCHDOG_USEC", "40000", 1);
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(notify_init(&n, &loop), 0);
  assert_int_equal(n.fd, -1);
  notify_start(&n);
  notify_ready(&n);
  notify_status_changed(&n);
  assert_false(uv_is_active((uv_handle_t *)&n.watchdog));
  notify_close(&n);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  setenv("NOTIFY_SOCKET", "not/absolute", 1);
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(notify_init(&n, &loop), 0);
  assert_int_equal(n.fd, -1);
  notify_close(&n);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(notify_parses_paths_and_abstract_names),
      cmocka_unit_test(notify_sends_ready_status_watchdog_and_stopping),
      cmocka_unit_test(notify_does_nothing_without_notify_socket),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
