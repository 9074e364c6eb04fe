/*
 * peers-in-state — an example of libchoreo: list the peers that are in a
 * given state, e.g. the databases in maintenance, from a tool or a
 * monitoring check.
 *
 *   cc peers-in-state.c $(pkg-config --cflags --libs libchoreo)
 *   ./a.out /run/choreo/choreo.sock maintenance
 *
 * Exits 0 when at least one peer is in the state, 1 when none is, 3 when
 * no agent answers.
 */
#include <choreo.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  choreo_client *c = NULL;
  choreo_status *st = NULL;
  size_t found = 0;
  int rv;

  if (argc != 3) {
    fprintf(stderr, "usage: %s SOCKET STATE\n", argv[0]);
    return 2;
  }
  rv = choreo_connect(argv[1], 2000, &c);
  if (rv == 0)
    rv = choreo_status_get(c, &st);
  if (rv != 0) {
    fprintf(stderr, "%s: %s\n", argv[1], choreo_strerror(rv));
    choreo_close(c);
    return rv == CHOREO_ENOAGENT ? 3 : 1;
  }
  for (size_t i = 0; i < st->npeers; i++) {
    if (strcmp(st->peers[i].state, argv[2]) == 0) {
      printf("%s\t%s\n", st->peers[i].name, st->peers[i].reason);
      found++;
    }
  }
  choreo_status_free(st);
  choreo_close(c);
  return found > 0 ? 0 : 1;
}
