/*
 * gossip.c — the gossip protocol's decisions (ring/gossip.h): peer choice and the handling of
 * a received state, on top of cstate_merge. Holds no state of its own.
 */
#include "ring/gossip.h"

#include <string.h>

uint64_t gossip_random(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

size_t gossip_pick_peers(const cstate_t *s, const char *self, uint64_t *rng_state,
                         unsigned fanout, uint32_t *out_member_idx)
{
    uint32_t candidates[CSTATE_MAX_MEMBERS];
    uint32_t n = cstate_member_count(s), self_i = cstate_member_index(s, self), k = 0;
    for (uint32_t i = 0; i < n; i++) {
        cstate_status_t st = cstate_member_status(s, i);
        if (i != self_i && st != CSTATE_REMOVED && st != CSTATE_DOWN)
            candidates[k++] = i;
    }
    size_t want = fanout < k ? fanout : k;
    for (size_t t = 0; t < want; t++) { /* a partial Fisher-Yates shuffle */
        size_t r = t + (size_t)(gossip_random(rng_state) % (k - t));
        uint32_t pick = candidates[r];
        candidates[r] = candidates[t];
        candidates[t] = pick;
        out_member_idx[t] = pick;
    }
    return want;
}

static bool same_cluster(const cstate_t *a, const cstate_t *b)
{
    return cstate_size(a) == cstate_size(b) &&
           strcmp(cstate_cluster_name(a), cstate_cluster_name(b)) == 0 &&
           strcmp(cstate_founder(a), cstate_founder(b)) == 0;
}

unsigned gossip_receive(const cstate_t *mine, const cstate_t *theirs, const char *self,
                        const char *sender, cstate_t **new_state)
{
    *new_state = NULL;
    if (!mine || !theirs)
        return GOSSIP_FOREIGN;
    cstate_t *next = NULL;
    unsigned flags = 0;
    switch (cstate_merge(mine, theirs, self, sender, &next)) {
    case CSTATE_MERGE_IGNORED:
        if (same_cluster(mine, theirs) && cstate_sender_is_removed(mine, theirs, sender))
            return GOSSIP_TELL_REMOVED;
        return GOSSIP_FOREIGN;
    case CSTATE_MERGE_KEPT: /* equal: nothing; else mine has what theirs lacks */
        flags = cstate_fingerprint(mine) == cstate_fingerprint(theirs) ? 0 : GOSSIP_REPLY;
        break;
    case CSTATE_MERGE_ADOPTED:
        flags = GOSSIP_INSTALL | GOSSIP_SPREAD;
        break;
    case CSTATE_MERGE_MERGED:
        flags = GOSSIP_INSTALL | GOSSIP_SPREAD | GOSSIP_REPLY;
        break;
    }
    const cstate_t *current = next ? next : mine;
    uint32_t si = cstate_member_index(current, self);
    if (si != CSTATE_NONE && cstate_member_status(current, si) == CSTATE_DOWN) {
        cstate_t *up = NULL; /* alive and gossiping: down -> valid, and everyone must hear it */
        if (cstate_mark_up(current, self, self, &up, NULL, 0) == 0) {
            cstate_free(next);
            next = up;
            current = up;
            flags |= GOSSIP_INSTALL | GOSSIP_SPREAD | GOSSIP_REPLY | GOSSIP_SELF_UP;
        }
    }
    if (si != CSTATE_NONE && cstate_member_status(current, si) == CSTATE_REMOVED) {
        flags |= GOSSIP_SELF_REMOVED;
        flags &= ~(unsigned)GOSSIP_SPREAD;
    }
    *new_state = next;
    return flags;
}
