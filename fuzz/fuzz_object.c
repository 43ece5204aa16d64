/*
 * fuzz_object.c — libFuzzer target for the stored-object decoder: any bytes either fail with
 * STORE_EDECODE or give an object that satisfies the invariants and re-encodes to bytes that
 * decode to an equal object.
 */
#include "storage/err.h"
#include "storage/object.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    store_obj_t *o = NULL, *back = NULL;
    int rc = store_obj_decode(data, size, &o);
    if (rc != 0) {
        if (rc != STORE_EDECODE)
            abort();
        return 0;
    }
    if (store_obj_check(o) != 0)
        abort();
    uint8_t *buf;
    size_t len;
    if (store_obj_encode(o, &buf, &len) != 0 || store_obj_decode(buf, len, &back) != 0 ||
        !store_obj_equal(o, back))
        abort();
    free(buf);
    store_obj_free(back);
    store_obj_free(o);
    return 0;
}
