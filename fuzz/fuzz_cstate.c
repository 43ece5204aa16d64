/*
 * fuzz_cstate.c — libFuzzer target for the cluster-state decoder (ring/cstate.h), which reads
 * gossip from the network and the ring file from disk: hostile bytes are refused with
 * CSTATE_EINVAL; anything accepted re-encodes to a state with the same fingerprint, and
 * merging it with itself or with a fresh cluster never crashes.
 */
#include "ring/cstate.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cstate_t *s = NULL, *back = NULL;
    char err[256];
    int rc = cstate_decode(data, size, &s, err, sizeof err);
    if (rc != 0) {
        if (rc != CSTATE_EINVAL || s)
            abort();
        return 0;
    }
    size_t len = 0;
    uint8_t *buf = cstate_encode(s, &len);
    if (!buf || cstate_decode(buf, len, &back, err, sizeof err) != 0 ||
        cstate_fingerprint(back) != cstate_fingerprint(s))
        abort();
    free(buf);
    cstate_t *merged = NULL;
    cstate_merge(s, back, "fuzz@127.0.0.1:1", NULL, &merged);
    cstate_free(merged);
    cstate_t *fresh = cstate_new(cstate_size(s), "fuzz@127.0.0.1:1", NULL);
    merged = NULL;
    if (fresh)
        cstate_merge(fresh, s, "fuzz@127.0.0.1:1", cstate_claimant(s), &merged);
    cstate_free(merged);
    cstate_free(fresh);
    cstate_free(back);
    cstate_free(s);
    return 0;
}
