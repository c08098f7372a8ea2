/* The decision: see decide.h for the rules. The view is read once, before
 * the passes, so that every pass decides on the same facts. */
#include "decide.h"

#include <stdint.h>
#include <stdlib.h>

#include "batch_outcome.h"

/* What the view said of one unsettled player. */
struct held {
  struct stats stats;
  size_t room;
  bool *seen; /* per entry: applied before this batch */
  bool *ours; /* per entry: applied by this batch's earlier write */
};

static bool is_settled(const struct decide_view *v, size_t p) {
  return v->settled && v->settled(v->cls, p);
}

static enum ts_status read_player(const struct batch *b,
                                  const struct decide_view *v, size_t p,
                                  struct held *h) {
  enum ts_status st = v->stats(v->cls, p, &h->stats);
  if (st != TS_OK)
    return st;
  h->room = v->room ? v->room(v->cls, p) : SIZE_MAX;
  size_t n = batch_entry_count(b, p);
  for (size_t e = 0; e < n && st == TS_OK; e++)
    st = v->applied(v->cls, p, batch_entry(b, p, e)->event_id, &h->seen[e]);
  return st;
}

/* One pass over player p's entries (rules 1-5 of decide.h). */
static enum ts_status decide_player(struct batch *b, size_t p,
                                    const struct held *h, bool backfilling,
                                    struct decide_player *out) {
  struct stats cur = h->stats;
  size_t room = h->room;
  bool changed = false;
  size_t n = batch_entry_count(b, p);
  for (size_t e = 0; e < n; e++) {
    const struct batch_entry *en = batch_entry(b, p, e);
    if (h->seen[e] && h->ours[e]) {
      batch_entry_set_outcome(b, p, e, ENTRY_APPLIED, NULL);
      continue;
    }
    if (h->seen[e] || batch_entry_applied_earlier(b, p, e)) {
      batch_entry_set_outcome(b, p, e, ENTRY_DUPLICATE, NULL);
      continue;
    }
    if (room == 0) {
      batch_entry_set_outcome(b, p, e, ENTRY_REJECTED,
                              stats_reason_bookkeeping_full);
      continue;
    }
    struct stats next = cur;
    enum ts_status st = stats_apply(&next, &en->delta);
    const char *reason = stats_apply_reason(st);
    bool held = false;
    if (st == TS_ERR_INVALID && backfilling && en->change &&
        en->change->seq) { /* held: rule 3 */
      next = cur;
      reason = NULL;
      st = TS_OK;
      held = true;
    }
    if (reason) {
      batch_entry_set_outcome(b, p, e, ENTRY_REJECTED, reason);
      continue;
    }
    if (st != TS_OK)
      return st;
    if (batch_entry_excluded(b, p, e)) {
      batch_entry_set_excluded(b, p, e);
      continue;
    }
    cur = next;
    room--;
    changed = true;
    batch_entry_set_outcome(b, p, e, ENTRY_APPLIED, NULL);
    if (held)
      batch_entry_set_held(b, p, e);
  }
  out->next = cur;
  out->changed = changed;
  return TS_OK;
}

enum ts_status batch_decide(struct batch *b, const struct decide_view *view,
                            struct decide_player *out) {
  size_t players = batch_player_count(b), entries = 0;
  for (size_t p = 0; p < players; p++)
    entries += batch_entry_count(b, p);
  enum ts_status st = TS_OK;
  struct held *held = calloc(players ? players : 1, sizeof *held);
  /* Per entry, in one block: seen by the view, then applied by this
   * batch's earlier write. */
  bool *flags = calloc(entries ? 2 * entries : 1, sizeof *flags);
  bool *seen = flags, *ours = flags ? flags + entries : NULL;
  if (!held || !flags) {
    st = TS_ERR_NOMEM;
    goto out;
  }
  for (size_t p = 0, at = 0; p < players; at += batch_entry_count(b, p), p++) {
    held[p].seen = seen + at;
    held[p].ours = ours + at;
    if (is_settled(view, p))
      continue;
    if (batch_player_write_noted(b, p))
      for (size_t e = 0; e < batch_entry_count(b, p); e++)
        held[p].ours[e] = batch_entry_outcome(b, p, e) == ENTRY_APPLIED;
    batch_player_reset_outcomes(b, p);
    st = read_player(b, view, p, &held[p]);
    if (st != TS_OK)
      goto out;
  }
  /* Settled players' rejections exclude their records from the start. */
  batch_reset_exclusions(b);
  (void)batch_exclude_rejected_records(b);
  do {
    for (size_t p = 0; p < players && st == TS_OK; p++)
      if (!is_settled(view, p))
        st = decide_player(b, p, &held[p], view->backfilling, &out[p]);
  } while (st == TS_OK && batch_exclude_rejected_records(b) > 0);
out:
  free(held);
  free(flags);
  return st;
}
