/*
 * admin_print.h — cairn-admin's output for people (prefix admin_print_): the answer of each
 * command laid out the way riak-admin lays it out (member-status, ring-status, cluster plan,
 * ringready, transfers; ../shared/reference/riak-facts.md section 2.4), plus transfer-limit,
 * status and ping. Errors are not printed here: the caller reports !ok answers on stderr.
 *
 * Ring shares are partitions owned / ring size, as percentages with one decimal. Transfer
 * rates (objects/s, MB/s with MB = 10^6 bytes) are objects and bytes sent over the time the
 * running sender has taken; a transfer that is not sending any more shows none.
 */
#ifndef CAIRN_ADMIN_PRINT_H
#define CAIRN_ADMIN_PRINT_H

#include "proto/admin.pb-c.h"

#include <stdio.h>

/* Writes the successful answer r (r->ok) to cmd on out. */
void admin_print_answer(FILE *out, const Cairn__Admin__AdminResp *r, Cairn__Admin__Command cmd);

#endif
