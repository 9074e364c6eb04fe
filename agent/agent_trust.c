/*
 * agent_trust.c — the shell around trust.c: configuring it from the
 * configuration, and revocations: learnt from peers or handed in by
 * `choreo revoke`, verified, kept in state_dir/revoked.json, spread in the
 * next messages, and the revoked node taken for lost (docs/OPERATIONS.md
 * "Identity").
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "log.h"
#include "state.h"
#include "trust.h"
#include "util.h"

#define REVOKED_FILE "revoked.json"
#define REVOKED_FILE_MAX ((size_t)TRUST_REVOKED_MAX * ID_TEXT_MAX)

int agent_trust_configure(struct agent *a, const struct config *cfg) {
  const struct id_key *key = cfg->identity ? &cfg->identity_key : NULL;
  const struct id_cert *cert = cfg->identity ? &cfg->identity_cert : NULL;
  int rv = trust_configure(&a->trust, cfg->cluster, key, cert,
                           (const uint8_t(*)[ID_PUBLIC_BYTES])cfg->identity_ops,
                           cfg->identity_nops, cfg->identity_required);
  char serial[17];

  if (rv != 0 || !cfg->identity)
    return rv;
  net_offer_cert(&a->net);
  id_serial_format(cfg->identity_cert.serial, serial);
  log_info("identity: certificate %s of node %s, %zu operator keys trusted, "
           "signatures %s",
           serial, cfg->identity_cert.node, cfg->identity_nops,
           cfg->identity_required ? "required" : "not required yet");
  return 0;
}

static void save_revoked(struct agent *a) {
  json_t *doc = json_pack("{s:i, s:o}", "format", 1, "revoked",
                          trust_revoked_all(&a->trust));
  char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
  int rv = text != NULL ? state_write(a->cfg->state_dir, REVOKED_FILE, text)
                        : CHOREO_ENOMEM;

  if (rv != 0)
    log_error("identity: cannot save %s/%s: %s (the revocation holds until "
              "the agent restarts)",
              a->cfg->state_dir, REVOKED_FILE, choreo_strerror(rv));
  free(text);
  json_decref(doc);
}

/* A new revocation of node (may be ""): whoever holds that certificate is
 * no longer believed; it is taken for lost now. */
static void revoked(struct agent *a, const char *node, const char *via) {
  struct peer *peer = node[0] != '\0' ? peers_find(&a->peers, node) : NULL;

  save_revoked(a);
  log_warn("identity: the certificate of %s was revoked (learnt from %s): "
           "its records are dropped from now on",
           node[0] != '\0' ? node : "a node", via);
  if (peer != NULL &&
      peers_force_lost(&a->peers, node, uv_now(&a->loop), util_wall_ms()) == 0)
    a->net.wake_at(&a->net, peers_next_deadline(&a->peers));
  /* Spread it at once, then in the next few heartbeats. */
  net_publish_soon(&a->net);
}

void agent_trust_learn(struct agent *a, const json_t *revocations,
                       const char *from) {
  char node[CHOREO_NAME_MAX + 1], err[ID_ERR_MAX], via[CHOREO_NAME_MAX + 8];
  const json_t *r;
  size_t i;

  if (!a->trust.enabled)
    return;
  snprintf(via, sizeof(via), "peer %s", from);
  json_array_foreach(revocations, i, r) {
    bool is_new = false;
    int rv = trust_revoke(&a->trust, r, true, &is_new, node, err);
    if (rv == 0 && is_new)
      revoked(a, node, via);
    else if (rv != 0) {
      a->trust.revocations_refused++;
      if (log_allow("identity:revocation", util_wall_ms()))
        log_warn("identity: a revocation from peer %s refused: %s", from, err);
    }
  }
}

int agent_trust_revoke(struct agent *a, const json_t *revocation,
                       const char *via, char node[CHOREO_NAME_MAX + 1],
                       bool *is_new, char err[ID_ERR_MAX]) {
  int rv = trust_revoke(&a->trust, revocation, true, is_new, node, err);

  if (rv == 0 && *is_new)
    revoked(a, node, via);
  return rv;
}

/* Revocations kept from earlier runs: each verified again against the
 * operators trusted now. */
void agent_trust_restore(struct agent *a) {
  char *text = NULL, node[CHOREO_NAME_MAX + 1], err[ID_ERR_MAX];
  size_t len = 0, i, kept = 0;
  json_t *doc, *list, *r;
  int rv;

  if (!a->trust.enabled)
    return;
  rv = state_read(a->cfg->state_dir, REVOKED_FILE, REVOKED_FILE_MAX, &text,
                  &len);
  if (rv == CHOREO_ENOTFOUND)
    return;
  doc = rv == 0 ? json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
  free(text);
  list = json_object_get(doc, "revoked");
  if (doc == NULL || json_integer_value(json_object_get(doc, "format")) != 1 ||
      !json_is_array(list)) {
    log_error("identity: %s/%s is unreadable or not format 1 (%s): the "
              "revocations it held are not applied; hand them in again with "
              "choreo revoke",
              a->cfg->state_dir, REVOKED_FILE,
              rv != 0 ? choreo_strerror(rv) : "bad content");
    json_decref(doc);
    return;
  }
  json_array_foreach(list, i, r) {
    bool is_new;
    if (trust_revoke(&a->trust, r, false, &is_new, node, err) == 0)
      kept += is_new;
    else
      log_warn("identity: %s/%s: revocation %zu not applied: %s",
               a->cfg->state_dir, REVOKED_FILE, i, err);
  }
  json_decref(doc);
  if (kept > 0)
    log_info("identity: %zu revocations restored", kept);
}
