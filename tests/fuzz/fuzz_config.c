/*
 * fuzz_config.c — libFuzzer target for the configuration loader
 * (agent/config.c): the input is written as a YAML file and loaded with
 * config_load, as `choreo check -c FILE` and the agent do, then every
 * result is released.
 *
 * The file sits in a private directory beside a small pack, pack.yaml, so
 * that includes (relative paths, vars) have something to reach.
 */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char pack[] = "behaviours:\n"
                           "  - name: ${name}\n"
                           "    peers: {group: ${group}}\n"
                           "    when: {any: maintenance}\n"
                           "    run: [/bin/true, ${arg}]\n"
                           "checks:\n"
                           "  - name: c-${name}\n"
                           "    run: [/bin/true]\n";

static void put(const char *path, const void *data, size_t size) {
  FILE *f = fopen(path, "wb");
  if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0)
    abort();
}

static char dir[64]; /* the harness's only state, made once */

static int remove_entry(const char *path, const struct stat *st, int type,
                        struct FTW *ftw) {
  return remove(path);
}

static void remove_dir(void) {
  nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static const char *main_file(void) {
  static char file[96];
  if (dir[0] == '\0') {
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    char p[96];
    snprintf(dir, sizeof(dir), "%s/fuzz_config.XXXXXX", base);
    if (mkdtemp(dir) == NULL)
      abort();
    atexit(remove_dir);
    snprintf(p, sizeof(p), "%s/pack.yaml", dir);
    put(p, pack, strlen(pack));
    snprintf(file, sizeof(file), "%s/choreo.yaml", dir);
  }
  return file;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = main_file();
  struct config_errors errs = {0};
  struct config *cfg = NULL;
  int rv;

  put(path, data, size);
  rv = config_load(path, &cfg, &errs);
  if ((rv == 0) != (cfg != NULL) || (rv == CHOREO_ECONFIG && errs.n == 0))
    abort(); /* a refusal always says why; success always gives a config */
  /* Every message starts with the file it is about: the main file, the
   * pack, or whatever an include names (absolute, once resolved). */
  for (size_t i = 0; i < errs.n; i++)
    if (errs.msg[i][0] != '/' || strstr(errs.msg[i], ": ") == NULL)
      abort();
  config_free(cfg);
  config_errors_free(&errs);
  return 0;
}
