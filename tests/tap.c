/*
 * tap.c — a wiretap for the scenario tests (tests/scenario/security.sh):
 * it records messages exactly as agents publish them and sends them again
 * later, which is what an attacker on the network can do without the key.
 *
 *   tap record ADDR DIR
 *       Bind a SUB socket (an inbox) at ADDR; an agent that lists ADDR in
 *       network.join publishes to it like to any member. Every message is
 *       saved raw as DIR/NNNNNN.msg (written under another name, then
 *       renamed, so a file that exists is complete) until SIGTERM/SIGINT.
 *   tap send ADDR REPEAT GAP_MS FILE...
 *       Connect a PUB socket to the inbox at ADDR and send the files, the
 *       whole list REPEAT times, GAP_MS apart (PUB drops what is sent
 *       before the connection is up, so say it more than once).
 *   tap seal KEYFILE IN OUT
 *       Seal the bytes of IN with the first key of KEYFILE into OUT: an
 *       authenticated message with any content, as a key holder could send.
 *   tap open KEYFILE IN OUT
 *       Open the sealed message IN with the key ring of KEYFILE into OUT.
 *   tap sign KEYFILE CLUSTER IN OUT [CERTFILE]
 *       Sign the record of the message in IN (hello, state or leave) with
 *       the signing key in KEYFILE, as a node of CLUSTER signs its own,
 *       add the certificate of CERTFILE, and write the message to OUT:
 *       what a node holding that key (a compromised one) could send.
 *
 * Exit status: 0 success, 1 failure, 2 usage.
 */
#include <errno.h>
#include <nanomsg/nn.h>
#include <nanomsg/pubsub.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "choreo.h"
#include "identity.h"
#include "seal.h"
#include "wire.h"

#define TAP_FILE_MAX (1024 * 1024)

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
  stop = sig;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !stop)
    ;
}

static int save(const char *dir, unsigned n, const void *buf, size_t len) {
  char tmp[4200], path[4200];
  FILE *f;

  snprintf(tmp, sizeof(tmp), "%s/.%06u.tmp", dir, n);
  snprintf(path, sizeof(path), "%s/%06u.msg", dir, n);
  f = fopen(tmp, "wb");
  if (f == NULL)
    return -1;
  if (fwrite(buf, 1, len, f) != len) {
    fclose(f);
    return -1;
  }
  if (fclose(f) != 0)
    return -1;
  return rename(tmp, path);
}

static int record(const char *addr, const char *dir) {
  struct sigaction sa = {.sa_handler = on_signal};
  int s = nn_socket(AF_SP, NN_SUB), timeout = 100, max = -1;
  unsigned n = 0;

  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  if (s < 0 || nn_setsockopt(s, NN_SUB, NN_SUB_SUBSCRIBE, "", 0) != 0 ||
      nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVTIMEO, &timeout, sizeof(timeout)) !=
          0 ||
      nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVMAXSIZE, &max, sizeof(max)) != 0 ||
      nn_bind(s, addr) < 0) {
    fprintf(stderr, "tap: %s: %s\n", addr, nn_strerror(nn_errno()));
    return 1;
  }
  while (!stop) {
    void *buf = NULL;
    int k = nn_recv(s, &buf, NN_MSG, 0);
    if (k < 0)
      continue; /* timeout or signal: check stop */
    if (save(dir, ++n, buf, (size_t)k) != 0) {
      fprintf(stderr, "tap: %s: %s\n", dir, strerror(errno));
      nn_freemsg(buf);
      break;
    }
    nn_freemsg(buf);
  }
  nn_close(s);
  return 0;
}

/* The whole file into a new buffer; NULL on error. */
static unsigned char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  unsigned char *buf = malloc(TAP_FILE_MAX);

  if (f == NULL || buf == NULL) {
    fprintf(stderr, "tap: %s: %s\n", path, strerror(errno));
    if (f != NULL)
      fclose(f);
    free(buf);
    return NULL;
  }
  *len = fread(buf, 1, TAP_FILE_MAX, f);
  fclose(f);
  return buf;
}

static int send_files(const char *addr, long repeat, long gap, char **files,
                      int nfiles) {
  int s = nn_socket(AF_SP, NN_PUB), rv = 0;

  if (s < 0 || nn_connect(s, addr) < 0) {
    fprintf(stderr, "tap: %s: %s\n", addr, nn_strerror(nn_errno()));
    return 1;
  }
  sleep_ms(gap);
  for (long r = 0; r < repeat && rv == 0; r++) {
    for (int i = 0; i < nfiles && rv == 0; i++) {
      size_t len = 0;
      unsigned char *buf = slurp(files[i], &len);
      if (buf == NULL)
        rv = 1;
      else
        nn_send(s, buf, len, NN_DONTWAIT); /* PUB may drop: fine */
      free(buf);
    }
    sleep_ms(gap);
  }
  nn_close(s);
  return rv;
}

static int seal_file(const char *keyfile, const char *in, const char *out) {
  struct seal_ring *ring = NULL;
  struct seal_error err;
  unsigned char *msg, *box = NULL;
  size_t len = 0, boxlen = 0;
  FILE *f;
  int rv = 1;

  if (seal_ring_load(keyfile, &ring, &err) != 0) {
    fprintf(stderr, "tap: %s\n", err.text);
    return 1;
  }
  msg = slurp(in, &len);
  if (msg != NULL && seal_box_alloc(ring, msg, len, &box, &boxlen) == 0 &&
      (f = fopen(out, "wb")) != NULL) {
    rv = fwrite(box, 1, boxlen, f) == boxlen ? 0 : 1;
    rv |= fclose(f) != 0;
  }
  free(box);
  free(msg);
  seal_ring_free(ring);
  return rv;
}

static int open_file(const char *keyfile, const char *in, const char *out) {
  struct seal_ring *ring = NULL;
  struct seal_error err;
  unsigned char *box, *msg = NULL;
  size_t len = 0, msglen = 0;
  FILE *f;
  int rv = 1;

  if (seal_ring_load(keyfile, &ring, &err) != 0) {
    fprintf(stderr, "tap: %s\n", err.text);
    return 1;
  }
  box = slurp(in, &len);
  if (box != NULL && seal_open_alloc(ring, box, len, &msg, &msglen) == 0 &&
      (f = fopen(out, "wb")) != NULL) {
    rv = fwrite(msg, 1, msglen, f) == msglen ? 0 : 1;
    rv |= fclose(f) != 0;
  }
  free(msg);
  free(box);
  seal_ring_free(ring);
  return rv;
}

static int sign_file(const char *keyfile, const char *cluster, const char *in,
                     const char *out, const char *certfile) {
  struct id_key key;
  struct id_cert cert;
  struct id_head h;
  struct wire_error werr;
  struct wire_msg m;
  char err[ID_ERR_MAX], *text = NULL;
  unsigned char *buf;
  size_t len = 0, tlen = 0;
  FILE *f;
  int rv = 1;

  if (id_key_load(keyfile, &key, err) != 0 ||
      (certfile != NULL && id_cert_load(certfile, &cert, err) != 0)) {
    fprintf(stderr, "tap: %s\n", err);
    return 1;
  }
  if ((buf = slurp(in, &len)) == NULL || wire_msg_init(&m) != 0)
    return 1;
  if (wire_decode(buf, len, &m, &werr) != 0 || m.type == WIRE_MEMBERS) {
    fprintf(stderr, "tap: %s: %s\n", in,
            werr.detail[0] ? werr.detail : "not a record");
  } else {
    id_head_of(cluster, &m.rec, &h);
    id_head_sign(&key, &h, m.sig);
    m.has_sig = true;
    if (certfile != NULL)
      m.cert = id_cert_to_json(&cert);
    if (wire_encode(&m, &text, &tlen) == 0 && (f = fopen(out, "wb")) != NULL) {
      rv = fwrite(text, 1, tlen, f) == tlen ? 0 : 1;
      rv |= fclose(f) != 0;
    }
  }
  free(text);
  wire_msg_free(&m);
  free(buf);
  id_key_wipe(&key);
  return rv;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "record") == 0)
    return record(argv[2], argv[3]);
  if (argc >= 6 && strcmp(argv[1], "send") == 0)
    return send_files(argv[2], strtol(argv[3], NULL, 10),
                      strtol(argv[4], NULL, 10), argv + 5, argc - 5);
  if (argc == 5 && strcmp(argv[1], "seal") == 0)
    return seal_file(argv[2], argv[3], argv[4]);
  if (argc == 5 && strcmp(argv[1], "open") == 0)
    return open_file(argv[2], argv[3], argv[4]);
  if ((argc == 6 || argc == 7) && strcmp(argv[1], "sign") == 0)
    return sign_file(argv[2], argv[3], argv[4], argv[5],
                     argc == 7 ? argv[6] : NULL);
  fprintf(stderr, "usage: tap record ADDR DIR\n"
                  "       tap send ADDR REPEAT GAP_MS FILE...\n"
                  "       tap seal KEYFILE IN OUT\n"
                  "       tap open KEYFILE IN OUT\n"
                  "       tap sign KEYFILE CLUSTER IN OUT [CERTFILE]\n");
  return 2;
}
