/*
 * gossip.h — the gossip protocol's decisions (prefix gossip_): whom to push the cluster state
 * to, and what to do with a state a peer pushed. Pure functions over ring/cstate.h: no
 * sockets, no timers, no clock; randomness only from a caller-held seed. The node's ring
 * manager does the sending, persisting and timing; bench/gossip-sim drives the same
 * functions for n nodes in one process.
 *
 * The protocol (every message is the sender's whole state, cstate_encode):
 *   1. On every change of its state that a node makes itself (a join, a commit, down/up, a
 *      transfer done, a claimant tick that changed something), it installs the new state
 *      (persist, publish) and pushes it to GOSSIP_FANOUT random peers at once.
 *   2. Every GOSSIP_INTERVAL_MS (anti-entropy), it pushes its state to 1 random peer, changed
 *      or not.
 *   3. On receiving a state it calls gossip_receive and does what the flags say: install the
 *      merged or adopted state and spread it to GOSSIP_FANOUT peers (rule 1 again, so a
 *      change travels as an epidemic); reply with its own state when the sender is behind or
 *      concurrent (push-pull: the sender learns in the same exchange); tell a removed sender
 *      it is out (the node's state, sent to it, shows it its removal).
 *   Peers (gossip_pick_peers) are the members other than self that are not removed and not
 *   down: a down member is unreachable by definition, so pushing to it would waste a slot.
 *   A member marked down that is in fact alive still pushes (it sees the others as up); the
 *   reply shows it that it is down, and gossip_receive then marks it up (down -> valid),
 *   which is Riak's "a down node that gossips rejoins".
 *
 * Why it converges in O(log n) intervals: the change-triggered pushes (fanout 2) form an
 * epidemic that reaches about 80% of the nodes within log2(n)+O(1) hops of network latency
 * (a push-once epidemic of fanout f misses a fraction s = e^(-f(1-s)), 0.2 for f = 2); then
 * each anti-entropy interval every node that still lacks the change pushes to a random peer,
 * which is up to date with probability 1 - s and replies (pull), and every up-to-date node
 * pushes to a random peer; a node stays behind only if its own push hit a node behind too
 * (probability s) and no up-to-date node pushed to it (about e^-(1-s)), so the fraction
 * falls at least as s -> s * s * e^-(1-s) per interval (faster, since every node that learns
 * spreads again): doubly exponential, a few intervals even for n = 1000. Merges never bump a
 * version
 * (cstate.h), so concurrent changes settle into one state instead of breeding new versions.
 * Measured figures: docs/ring.md ("Gossip").
 */
#ifndef CAIRN_RING_GOSSIP_H
#define CAIRN_RING_GOSSIP_H

#include "ring/cstate.h"

#include <stddef.h>
#include <stdint.h>

#define GOSSIP_FANOUT 2u           /* peers pushed to on a change of the local state */
#define GOSSIP_FANOUT_MAX 16u      /* the most peers one push should name (array sizes) */
#define GOSSIP_INTERVAL_MS 1000u   /* anti-entropy period: one push to one random peer */

/* The next value of a small, fast generator (splitmix64) over *state; any seed works. */
uint64_t gossip_random(uint64_t *state);

/* Up to `fanout` distinct random peers of self in s (member indexes into s, written to
 * out_member_idx[0..]): members other than self whose status is neither removed nor down.
 * Returns how many (fewer than fanout when there are fewer peers; 0 when none). self need
 * not be a member (a removed or foreign node picks among all of them). */
size_t gossip_pick_peers(const cstate_t *s, const char *self, uint64_t *rng_state,
                         unsigned fanout, uint32_t *out_member_idx);

/* What gossip_receive tells its caller to do (bit flags). */
enum {
    GOSSIP_INSTALL = 1u << 0,        /* *new_state is the node's state now: persist it, publish
                                      * it, free the old one */
    GOSSIP_SPREAD = 1u << 1,         /* push the (new) state to GOSSIP_FANOUT random peers now */
    GOSSIP_REPLY = 1u << 2,          /* send the node's state (after any install) to the sender:
                                      * the sender is behind, or concurrent and lacks the merge */
    GOSSIP_TELL_REMOVED = 1u << 3,   /* the sender is a removed member; its state was ignored.
                                      * Tell it it is out: sending it the node's state does
                                      * (it sees itself removed, GOSSIP_SELF_REMOVED there) */
    GOSSIP_SELF_REMOVED = 1u << 4,   /* the node's state (after any install) records self as
                                      * removed: stop serving and gossiping (Riak shuts down) */
    GOSSIP_SELF_UP = 1u << 5,        /* the merged state recorded self as down; *new_state
                                      * marks it valid again (INSTALL, SPREAD, REPLY set) */
    GOSSIP_FOREIGN = 1u << 6         /* ignored: another cluster (name, founder or ring size),
                                      * or out of memory; log it */
};

/* Handles the state `theirs` pushed by `sender` to node `self` holding `mine`. Returns the
 * flags above (0: nothing to do, the states are equal). *new_state is set only with
 * GOSSIP_INSTALL (caller owns it), NULL otherwise. mine and theirs are left alone. */
unsigned gossip_receive(const cstate_t *mine, const cstate_t *theirs, const char *self,
                        const char *sender, cstate_t **new_state);

#endif
