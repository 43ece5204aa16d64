/*
 * fuzz_vclock.c — libFuzzer target for the client context (vclock) decoder: hostile bytes
 * fail with STORE_EDECODE; anything accepted is canonical and round-trips exactly.
 */
#include "storage/err.h"
#include "storage/vclock.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    store_vclock_t vc = STORE_VCLOCK_INIT, back = STORE_VCLOCK_INIT;
    int rc = store_vclock_decode(data, size, &vc);
    if (rc != 0) {
        if (rc != STORE_EDECODE)
            abort();
        return 0;
    }
    for (uint32_t i = 1; i < vc.n; i++)
        if (store_actor_cmp(&vc.e[i - 1].actor, &vc.e[i].actor) >= 0)
            abort();
    uint8_t *buf;
    size_t len;
    if (store_vclock_encode(&vc, &buf, &len) != 0 || store_vclock_decode(buf, len, &back) != 0 ||
        !store_vclock_equal(&vc, &back) || store_vclock_dominates(&vc, &back))
        abort();
    free(buf);
    store_vclock_clear(&vc);
    store_vclock_clear(&back);
    return 0;
}
