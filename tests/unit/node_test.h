/*
 * node_test.h — the in-process node that the KV-layer suites build by hand
 * (tests/unit/test_node_kv.c, test_node_list.c, test_node_vnode.c, test_node_bucket.c): the
 * runtime, a temporary data dir, a single-node configuration, the ring, the storage engine,
 * the vnode table and the vnode supervisor, the bucket store; starting and stopping the vnodes;
 * crashing a vnode on purpose and waiting for its supervisor to restart it.
 *
 * The test thread is not a process of the node: it calls the entry points and the vnodes
 * directly and receives the replies (rt_test.h). Each suite is one .c compiled alone, so
 * everything here is static.
 */
#ifndef CAIRN_NODE_TEST_H
#define CAIRN_NODE_TEST_H

#include "node/bucket.h"
#include "node/kv.h"
#include "node/kvobj.h"
#include "node/vnode.h"
#include "rt_test.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "criterion_lsan.h"

typedef struct node_test {
    char dir[256];      /* the data dir: made by node_test_setup, removed by node_test_teardown */
    node_config_t cfg;  /* kv.cfg points here: a test may change a field at any time */
    kv_node_t kv;
    rt_pid_t sup;       /* the vnode supervisor, while vnodes_up */
    bool vnodes_up;
} node_test_t;

typedef struct node_test_opts {
    const char *what;           /* names the data dir: /tmp/cairn-test-<what>-XXXXXX */
    uint32_t q;                 /* ring size */
    bool vnodes;                /* ring, storage engine, vnode table, and the vnodes started */
    store_engine_kind_t engine; /* with vnodes: LevelDB or memory */
    uint64_t node_id;           /* the node part of the vnodes' actors */
    bool buckets;               /* the bucket store */
    bool no_object_cache;       /* vnode.cache_size = 0 (else the default, with LevelDB) */
} node_test_opts_t;

static inline int node_test_rm_entry(const char *path, const struct stat *sb, int flag,
                                     struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* rm -rf dir. */
static inline void node_test_rmtree(const char *dir)
{
    nftw(dir, node_test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A deep copy of m for a message that takes ownership of its payload (asserts it worked). */
static inline ProtobufCMessage *node_test_pb_clone(const ProtobufCMessage *m)
{
    ProtobufCMessage *c = kvobj_pb_clone(m);
    cr_assert_not_null(c);
    return c;
}

/* Opens the bucket store of t's configuration (asserts it opens). */
static inline void node_test_open_buckets(node_test_t *t)
{
    char err[512];
    t->kv.buckets = bucket_store_open(&t->cfg, err, sizeof err);
    cr_assert_not_null(t->kv.buckets, "bucket store: %s", err);
}

/* Closes the bucket store and opens it again from its file. */
static inline void node_test_reopen_buckets(node_test_t *t)
{
    bucket_store_close(t->kv.buckets);
    t->kv.buckets = NULL;
    node_test_open_buckets(t);
}

/* Starts the vnode supervisor; every partition has a vnode when it returns. */
static inline void node_test_start_vnodes(node_test_t *t)
{
    cr_assert_eq(vnode_sup_start(&t->kv, &t->sup), 0);
    t->vnodes_up = true;
    for (uint32_t p = 0; p < t->cfg.ring_size; p++)
        cr_assert(!rt_pid_is_nil(vnode_pid(&t->kv, p)), "vnode %u has no pid", p);
}

/* Stops the vnode supervisor and its vnodes (bounded); no partition has a vnode after. */
static inline void node_test_stop_vnodes(node_test_t *t)
{
    if (!t->vnodes_up)
        return;
    rt_ref_t ref = rt_monitor(t->sup);
    rt_exit_signal(t->sup, RT_R_SHUTDOWN);
    cr_assert_neq(rt_test_wait_down(ref, 15000), -1, "vnode supervisor did not stop");
    t->vnodes_up = false;
    for (uint32_t p = 0; p < t->cfg.ring_size; p++)
        cr_assert(rt_pid_is_nil(vnode_pid(&t->kv, p)), "vnode %u still published", p);
}

/* The runtime (2 schedulers) with the KV messages registered, a fresh data dir, the default
 * configuration for a single node of o.q partitions (request defaults as cairnd's; storage in
 * the data dir with a 1 MiB cache), and what o asks for. */
static inline void node_test_setup(node_test_t *t, node_test_opts_t o)
{
    memset(t, 0, sizeof *t);
    rt_test_start_n(2);
    kv_register_msgs();
    snprintf(t->dir, sizeof t->dir, "/tmp/cairn-test-%s-XXXXXX", o.what);
    cr_assert_not_null(mkdtemp(t->dir), "mkdtemp %s", t->dir);
    node_config_default(&t->cfg);
    snprintf(t->cfg.nodename, sizeof t->cfg.nodename, "test@127.0.0.1:0");
    snprintf(t->cfg.data_dir, sizeof t->cfg.data_dir, "%s", t->dir);
    t->cfg.ring_size = o.q;
    t->cfg.storage = store_config_default(t->cfg.data_dir);
    t->cfg.storage.kind = o.engine;
    t->cfg.storage.cache_bytes = 1u << 20;
    t->kv.cfg = &t->cfg;
    t->kv.node_id = o.node_id;
    if (o.no_object_cache)
        t->cfg.vnode_cache_bytes = 0;
    t->kv.obj_cache.limit = vnode_cache_limit(&t->cfg); /* LevelDB tests run with the cache */
    if (o.buckets)
        node_test_open_buckets(t);
    if (o.vnodes) {
        cstate_t *cs = cstate_new(o.q, t->cfg.nodename, NULL);
        cr_assert_not_null(cs);
        t->kv.states = kv_states_new(cs);
        cr_assert_eq(store_engine_new(&t->cfg.storage, &t->kv.engine), 0);
        t->kv.vnodes = vnode_table_new(o.q);
        node_test_start_vnodes(t);
    }
}

/* Stops the vnodes and the runtime (which also ends coordinators still running), checks that
 * nothing leaked, frees what setup made and removes the data dir. t->kv's counters stay
 * readable. */
static inline void node_test_teardown(node_test_t *t)
{
    node_test_stop_vnodes(t);
    rt_test_stop();
    cr_assert_eq(atomic_load(&t->kv.obj_cache.used), 0,
                 "every vnode's object cache gave its bytes back");
    bucket_store_close(t->kv.buckets);
    t->kv.buckets = NULL;
    vnode_table_free(t->kv.vnodes);
    t->kv.vnodes = NULL;
    store_engine_free(t->kv.engine);
    t->kv.engine = NULL;
    kv_states_free(t->kv.states);
    t->kv.states = NULL;
    node_test_rmtree(t->dir);
}

/* Makes partition p's vnode crash on purpose (KV_MSG_VNODE_CRASH, a plain send) and returns
 * the pid it had; nil, and nothing sent, when the partition has no vnode right now. */
static inline rt_pid_t node_test_crash_vnode(node_test_t *t, uint32_t p)
{
    rt_pid_t pid = vnode_pid(&t->kv, p);
    if (rt_pid_is_nil(pid))
        return pid;
    Cairn__Kv__VnodeCrashReq req = CAIRN__KV__VNODE_CRASH_REQ__INIT;
    req.has_partition = 1;
    req.partition = p;
    rt_send(pid, rt_msg_pb(KV_MSG_VNODE_CRASH, node_test_pb_clone(&req.base), NULL));
    return pid;
}

/* Waits (up to 5 s) until partition p has a vnode other than `old`, and returns it. */
static inline rt_pid_t node_test_wait_restarted(node_test_t *t, uint32_t p, rt_pid_t old)
{
    for (int i = 0; i < 500; i++) {
        rt_pid_t now = vnode_pid(&t->kv, p);
        if (!rt_pid_is_nil(now) && !rt_pid_eq(now, old))
            return now;
        usleep(10 * 1000);
    }
    cr_assert_fail("vnode %u was not restarted", p);
    return old;
}

#endif
