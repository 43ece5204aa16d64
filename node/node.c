/*
 * node.c — a running cairnd (node/node.h): the data dir (lock, cookie, ring), the runtime
 * with distribution, the shared kv_node_t, the supervision tree, and the ordered stop.
 *
 * The node owns, in start order: the data-dir lock fd, the log file, the ring, the runtime,
 * the storage engine, the vnode table, the bucket store and the tree. node_stop releases
 * them in reverse; a failed node_start does the same for what it had taken.
 */
#include "node/node.h"

#include "node/admin_endpoint.h"
#include "node/anti_entropy.h"
#include "node/bucket.h"
#include "node/handoff.h"
#include "node/list.h"
#include "node/listener.h"
#include "node/ring_mgr.h"
#include "node/vnode.h"
#include "node/write_queue.h"
#include "ring/ring.h"
#include "runtime/dist.h"
#include "runtime/sup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define NODE_TOP_NAME "cairn_sup"
#define NODE_LISTENER_ID "client_listener"
#define NODE_VNODE_SUP_NAME "cairn_vnode_sup"
#define NODE_VNODES_UP_MS 120000u /* every vnode must be up within this at start */
#define NODE_TREE_STOP_MS 60000u  /* the whole tree (vnodes close LevelDB) */
#define NODE_START_CALL_MS 60000u


struct node_s {
    node_config_t cfg; /* the node's own copy; kv.cfg points here */
    kv_node_t kv;
    admin_ctx_t admin;
    listener_args_t client_args; /* the client listener's in/out arguments */
    int lock_fd;                 /* flock on <data_dir>/cairnd.lock */
    bool rt_started;
    bool stopping; /* node_stop (not a failed start) is releasing */
    rt_pid_t top;
    rt_ref_t top_mon; /* main thread's monitor of the top supervisor */
    /* specs of the tree (the supervisors copy them, but they are kept for clarity) */
    ring_mgr_args_t ring_args;   /* the ring manager's (ring_path is set before the ring loads) */
    rt_sup_child_spec_t vnode_tmpl, vnodes_children[2], top_children[7];
    rt_sup_spec_t vnode_sup_spec, vnodes_spec, top_spec;
};

/* ---------------------------------------------------------------- the data dir */

/* mkdir -p */
static int make_dirs(const char *path, char *err, size_t errlen)
{
    char buf[NODE_CONFIG_STR];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char saved = *p;
            *p = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return node_errorf(err, errlen, "platform_data_dir: cannot create %s: %s", buf,
                            strerror(errno));
            *p = saved;
            if (!saved)
                break;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return node_errorf(err, errlen, "platform_data_dir: %s is not a directory", path);
    return 0;
}

/* One cairnd per data dir: an flock held for the node's life (released by the kernel if the
 * process dies, so a kill -9 never leaves a stale lock). */
static int lock_data_dir(node_t *n, char *err, size_t errlen)
{
    char path[NODE_CONFIG_STR + 32];
    snprintf(path, sizeof path, "%s/cairnd.lock", n->cfg.data_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return node_errorf(err, errlen, "platform_data_dir: cannot open %s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t got = pread(fd, pid, sizeof pid - 1, 0);
        pid[got > 0 ? got : 0] = 0;
        pid[strcspn(pid, "\n")] = 0;
        close(fd);
        return node_errorf(err, errlen, "platform_data_dir: %s is in use by another cairnd%s%s%s",
                    n->cfg.data_dir, pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "");
    }
    char text[32];
    int len = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)len, 0) != len)
        rt_warn("cannot write the pid into %s: %s", path, strerror(errno));
    n->lock_fd = fd;
    return 0;
}

/* ---------------------------------------------------------------- the cookie */

static bool cookie_text_ok(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s <= ' ' || *s > '~')
            return false;
    return true;
}

static int read_cookie(const char *path, char *out, size_t outlen, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT
                   ? 1
                   : node_errorf(err, errlen, "cookie: cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) == 0 && (st.st_mode & 077))
        rt_warn("cookie file %s is readable by other users (mode %03o): chmod 600 it", path,
                (unsigned)(st.st_mode & 0777));
    char buf[NODE_CONFIG_STR + 2];
    ssize_t got = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (got < 0)
        return node_errorf(err, errlen, "cookie: cannot read %s: %s", path, strerror(errno));
    buf[got] = 0;
    size_t len = strcspn(buf, "\r\n");
    buf[len] = 0;
    if ((size_t)got >= sizeof buf - 1 || len >= outlen || !cookie_text_ok(buf))
        return node_errorf(err, errlen,
                    "cookie: %s must hold one line of 1..%zu printable characters "
                    "without spaces",
                    path, outlen - 1);
    memcpy(out, buf, len + 1);
    return 0;
}

static int write_new_cookie(const char *path, char *out, size_t outlen, char *err, size_t errlen)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"; /* 32: 5 bits a char */
    unsigned char rnd[32];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        return node_errorf(err, errlen, "cookie: no randomness available: %s", strerror(errno));
    char cookie[sizeof rnd + 2];
    for (size_t i = 0; i < sizeof rnd; i++)
        cookie[i] = alphabet[rnd[i] & 31];
    cookie[sizeof rnd] = '\n';
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return node_errorf(err, errlen, "cookie: cannot create %s: %s", path, strerror(errno));
    bool ok = write(fd, cookie, sizeof rnd + 1) == (ssize_t)(sizeof rnd + 1) && fsync(fd) == 0;
    int e = errno;
    close(fd);
    if (!ok) {
        unlink(path);
        return node_errorf(err, errlen, "cookie: cannot write %s: %s", path, strerror(e));
    }
    cookie[sizeof rnd] = 0;
    snprintf(out, outlen, "%s", cookie);
    rt_info("generated a new cookie in %s", path);
    return 0;
}

/* cfg->cookie, else <data_dir>/cookie, else a new one written there. */
static int resolve_cookie(node_t *n, char *err, size_t errlen)
{
    if (n->cfg.cookie[0])
        return 0;
    char path[NODE_CONFIG_STR + 16];
    snprintf(path, sizeof path, "%s/cookie", n->cfg.data_dir);
    int rc = read_cookie(path, n->cfg.cookie, sizeof n->cfg.cookie, err, errlen);
    if (rc <= 0)
        return rc;
    return write_new_cookie(path, n->cfg.cookie, sizeof n->cfg.cookie, err, errlen);
}

/* ---------------------------------------------------------------- the ring */

static int fresh_state(node_t *n, uint32_t q, const char *path, char *err, size_t errlen)
{
    char why[512];
    cstate_t *cs = cstate_new(q, n->cfg.nodename, NULL);
    if (!cs)
        return node_errorf(err, errlen, "ring_size: cannot build a ring of %" PRIu32 " partitions", q);
    if (cstate_save(cs, path, why, sizeof why) != 0) {
        cstate_free(cs);
        return node_errorf(err, errlen, "ring: %s", why);
    }
    n->kv.states = kv_states_new(cs);
    return 0;
}

/* The cluster state from <data_dir>/ring, or a fresh cluster of one saved there. */
static int load_ring(node_t *n, char *err, size_t errlen)
{
    char why[512];
    const char *path = n->ring_args.ring_path;
    cstate_t *cs = NULL;
    int rc = cstate_load(path, &cs, why, sizeof why);
    if (rc == CSTATE_ENOENT) {
        if (fresh_state(n, n->cfg.ring_size, path, err, errlen) != 0)
            return -1;
        rt_info("created a ring of %" PRIu32 " partitions in %s", n->cfg.ring_size, path);
        return 0;
    }
    if (rc != 0)
        return node_errorf(err, errlen,
                    "ring: %s (move it away to start over; the data is laid out by its partitions)",
                    why);
    uint32_t q = cstate_size(cs);
    if (q != n->cfg.ring_size) {
        cstate_free(cs);
        node_errorf(err, errlen,
                    "ring_size: the data dir %s holds a ring of %" PRIu32
                    " partitions but the configuration asks for %" PRIu32
                    "; ring_size is fixed when a data dir is first used (set ring_size = %" PRIu32
                    ", or use a new data dir)",
                    n->cfg.data_dir, q, n->cfg.ring_size, q);
        return NODE_ECONFIG;
    }
    if (cstate_member_index(cs, n->cfg.nodename) == CSTATE_NONE) {
        if (cstate_member_count(cs) == 1) {
            /* A single-node ring belongs to whoever runs on this data dir: follow the rename. */
            rt_warn("ring: %s was saved by node %s; this node is %s: taking it over", path,
                    cstate_member_name(cs, 0), n->cfg.nodename);
            cstate_free(cs);
            return fresh_state(n, q, path, err, errlen);
        }
        node_errorf(err, errlen,
                    "nodename: the data dir %s belongs to a cluster of %" PRIu32
                    " members and %s is not one of them (was the node renamed? start it with its "
                    "old name, or use a new data dir)",
                    n->cfg.data_dir, cstate_member_count(cs), n->cfg.nodename);
        cstate_free(cs);
        return NODE_ECONFIG;
    }
    n->kv.states = kv_states_new(cs);
    return 0;
}

/* ---------------------------------------------------------------- the vnode starter */

/* A permanent child of the "vnodes" group (one_for_all with the vnode supervisor),
 * registered as VNODE_PROXY_NAME. It starts vnodes:
 *   - every time the group (re)starts, one per partition the node should run
 *     (vnode_should_run), and again for partitions it gains whenever the ring manager
 *     publishes a new state (RING_MGR_MSG_VNODES_CHANGED);
 *   - on demand: a vnode request (KV_MSG_VNODE_GET/PUT/REAP call) addressed to it is passed
 *     on, unchanged (the vnode replies to the original caller), to the partition's live
 *     vnode; when there is none, a fallback vnode is started first and the request waits
 *     for it (at most STARTER_MAX_WAITING per partition; beyond, or when the start fails,
 *     it is refused with a FAILED answer).
 * At the group's start it also starts a vnode for every partition with a data directory on
 * disk (vnode_has_data_dir), so held data left by a stop is handed off after a restart.
 * It remembers what it asked for, so a partition never gets two vnodes, until a retired
 * vnode reports VNODE_MSG_RETIRED (node/vnode.h). A vnode that crashes is restarted by the
 * supervisor (requests meanwhile are refused: "restarting"). A failed start call crashes
 * the starter, which restarts the whole group (a clean slate). */
#define STARTER_MAX_WAITING 1024u

typedef struct starter_slot_s {
    bool asked;             /* a vnode was asked for (running, starting or restarting) */
    rt_ref_t start;         /* the start call in flight (0: none) */
    rt_msg_t **waiting;     /* requests waiting for the start (kept messages, owned) */
    uint32_t n_waiting, cap_waiting;
} starter_slot_t;

typedef struct starter_s {
    kv_node_t *kv;
    uint32_t q;
    uint32_t pending;       /* start calls in flight */
    uint32_t started;
    bool scanned;           /* the data directories were looked at (first VNODES_CHANGED) */
    starter_slot_t *slots;  /* q entries (owned) */
} starter_t;

static int starter_init(void *state, void *arg)
{
    starter_t *s = state;
    s->kv = arg;
    s->q = ring_size(kv_ring(s->kv));
    s->slots = calloc(s->q, sizeof *s->slots);
    if (!s->slots)
        return RT_R_INIT_FAILED;
    if (rt_register(VNODE_PROXY_NAME, rt_self()) != 0) {
        rt_error("vnode starter: cannot register as %s", VNODE_PROXY_NAME);
        return RT_R_INIT_FAILED;
    }
    rt_send(rt_self(), rt_msg_new(RING_MGR_MSG_VNODES_CHANGED, 0));
    return 0;
}

static void slot_refuse_waiting(starter_slot_t *sl, const char *why)
{
    for (uint32_t i = 0; i < sl->n_waiting; i++) {
        vnode_refuse(sl->waiting[i], why);
        rt_msg_free(sl->waiting[i]);
    }
    sl->n_waiting = 0;
}

static void starter_terminate(void *state, int reason)
{
    starter_t *s = state;
    (void)reason;
    for (uint32_t p = 0; s->slots && p < s->q; p++) {
        slot_refuse_waiting(&s->slots[p], "the node's vnodes are restarting");
        free(s->slots[p].waiting);
    }
    free(s->slots);
    s->slots = NULL;
}

/* Asks the vnode supervisor for a vnode of p. false (logged) when there is no supervisor. */
static bool starter_start(starter_t *s, uint32_t p)
{
    rt_pid_t sup = rt_whereis(NODE_VNODE_SUP_NAME);
    if (rt_pid_is_nil(sup)) {
        rt_error("vnode starter: no %s", NODE_VNODE_SUP_NAME);
        return false;
    }
    s->slots[p].asked = true;
    s->slots[p].start = rt_call(sup, rt_sup_req_start_dynamic_child((void *)(uintptr_t)(p + 1),
                                                                     NULL),
                                NODE_START_CALL_MS);
    s->pending++;
    return true;
}

/* A vnode request for a partition: passed on, held for the vnode being started, or refused. */
static void starter_forward(starter_t *s, rt_msg_t *m)
{
    uint32_t p;
    if (!vnode_request_partition(m, &p) || p >= s->q) {
        vnode_refuse(m, "the request names no partition of this node's ring");
        return;
    }
    rt_pid_t pid = vnode_pid(s->kv, p);
    if (!rt_pid_is_nil(pid)) {
        rt_send(pid, m); /* passed on: the vnode answers the caller */
        return;
    }
    starter_slot_t *sl = &s->slots[p];
    if (sl->asked && !sl->start) {
        vnode_refuse(m, "the vnode is restarting");
        return;
    }
    if (sl->n_waiting >= STARTER_MAX_WAITING) {
        vnode_refuse(m, "overload: too many requests wait for the vnode to start");
        return;
    }
    if (!sl->start) {
        if (!starter_start(s, p)) {
            vnode_refuse(m, "the vnode supervisor is not running");
            return;
        }
        rt_info("vnode %" PRIu32 ": starting on demand (fallback)", p);
    }
    if (sl->n_waiting == sl->cap_waiting) {
        sl->cap_waiting = sl->cap_waiting ? sl->cap_waiting * 2 : 8;
        sl->waiting = realloc(sl->waiting, sl->cap_waiting * sizeof *sl->waiting);
        if (!sl->waiting)
            abort();
    }
    rt_msg_keep(m);
    sl->waiting[sl->n_waiting++] = m;
}

/* The start of p's vnode ended (rc: the supervisor's result). false when a vnode of a
 * partition the node should run did not start: the group restarts. */
static bool starter_started(starter_t *s, uint32_t p, int rc)
{
    starter_slot_t *sl = &s->slots[p];
    sl->start = 0;
    s->pending--;
    if (rc < 0) {
        rt_error("vnode %" PRIu32 ": did not start: %s", p, rt_strerror(rc));
        sl->asked = false;
        slot_refuse_waiting(sl, "the vnode did not start");
        return !vnode_should_run(s->kv, p);
    }
    s->started++;
    if (s->pending == 0)
        rt_info("vnodes: %" PRIu32 " started", s->started);
    rt_pid_t pid = vnode_pid(s->kv, p);
    for (uint32_t i = 0; i < sl->n_waiting; i++) {
        if (rt_pid_is_nil(pid)) { /* it died already */
            vnode_refuse(sl->waiting[i], "the vnode is restarting");
            rt_msg_free(sl->waiting[i]);
        } else {
            rt_send(pid, sl->waiting[i]);
        }
    }
    sl->n_waiting = 0;
    return true;
}

static int starter_handle(void *state, rt_msg_t *m)
{
    starter_t *s = state;
    switch (m->type) {
    case RING_MGR_MSG_VNODES_CHANGED:
        for (uint32_t p = 0; p < s->q; p++) {
            /* at the group's start, also the partitions with data on disk: a fallback's or
             * an old owner's not handed off before the node stopped (the handoff service
             * hands it off and retires it) */
            bool want = vnode_should_run(s->kv, p) || (!s->scanned && vnode_has_data_dir(s->kv, p));
            if (!s->slots[p].asked && want && !starter_start(s, p))
                return -1;
        }
        s->scanned = true;
        return RT_CONTINUE;
    case KV_MSG_VNODE_GET:
    case KV_MSG_VNODE_PUT:
    case KV_MSG_VNODE_REAP:
        starter_forward(s, m);
        return RT_CONTINUE;
    case VNODE_MSG_RETIRED: {
        uint32_t p;
        if (m->size != sizeof p)
            return RT_CONTINUE;
        memcpy(&p, m->data, sizeof p);
        if (p < s->q && !s->slots[p].start) {
            s->slots[p].asked = false;
            /* owned again meanwhile: start it again */
            if (vnode_should_run(s->kv, p) && !starter_start(s, p))
                return -1;
        }
        return RT_CONTINUE;
    }
    case RT_MSG_CALL_FAILED: {
        const rt_call_failed_t *f = (const void *)m->data;
        rt_error("vnode starter: starting a vnode failed: %s", rt_reason_str(f->reason));
        return -1;
    }
    default:
        break;
    }
    const rt_sup_result_t *res = rt_sup_result_of(m);
    if (res && (m->flags & RT_MSGF_REPLY))
        for (uint32_t p = 0; p < s->q; p++)
            if (s->slots[p].start == m->ref)
                return starter_started(s, p, res->rc) ? RT_CONTINUE : -1;
    return RT_CONTINUE;
}

static const rt_behaviour_t starter_behaviour = {
    .name = "vnode_starter",
    .state_size = sizeof(starter_t),
    .init = starter_init,
    .handle = starter_handle,
    .terminate = starter_terminate,
};

/* ---------------------------------------------------------------- the tree */

static void build_specs(node_t *n)
{
    vnode_sup_spec(&n->kv, &n->vnode_tmpl, &n->vnode_sup_spec);
    n->vnode_sup_spec.name = NODE_VNODE_SUP_NAME;
    n->vnodes_children[0] = (rt_sup_child_spec_t){
        .id = "vnode_sup",
        .behaviour = &rt_sup_behaviour,
        .arg = &n->vnode_sup_spec,
        .restart = RT_SUP_PERMANENT,
        .shutdown_ms = RT_INFINITY,
    };
    n->vnodes_children[1] = (rt_sup_child_spec_t){
        .id = "vnode_starter",
        .behaviour = &starter_behaviour,
        .arg = &n->kv,
        .restart = RT_SUP_PERMANENT,
        .shutdown_ms = 5000,
    };
    n->vnodes_spec = (rt_sup_spec_t){
        .strategy = RT_SUP_ONE_FOR_ALL,
        .intensity = 5,
        .period_ms = 10000,
        .children = n->vnodes_children,
        .nchildren = 2,
    };
    size_t nc = 0;
    n->top_children[nc++] = (rt_sup_child_spec_t){
        .id = "vnodes",
        .behaviour = &rt_sup_behaviour,
        .arg = &n->vnodes_spec,
        .restart = RT_SUP_PERMANENT,
        .shutdown_ms = RT_INFINITY,
    };
    n->ring_args.kv = &n->kv;
    n->top_children[nc++] = (rt_sup_child_spec_t){
        .id = "ring_mgr",
        .behaviour = &ring_mgr_behaviour,
        .arg = &n->ring_args,
        .restart = RT_SUP_PERMANENT,
        .shutdown_ms = 2000,
    };
    n->top_children[nc++] = (rt_sup_child_spec_t){
        .id = "list_fold",
        .behaviour = &list_fold_service_behaviour,
        .arg = &n->kv,
        .restart = RT_SUP_PERMANENT,
        .shutdown_ms = 2000,
    };
    n->top_children[nc++] = (rt_sup_child_spec_t){
        .id = "handoff",
        .behaviour = &handoff_service_behaviour,
        .arg = &n->kv,
        .restart = RT_SUP_PERMANENT,
        .shutdown_ms = 2000,
    };
    n->top_children[nc++] = (rt_sup_child_spec_t){
        .id = "anti_entropy",
        .behaviour = &ae_service_behaviour,
        .arg = &n->kv,
        .restart = RT_SUP_PERMANENT,
        .shutdown_ms = 2000,
    };
    n->top_children[nc++] = (rt_sup_child_spec_t){
        .id = "admin",
        .behaviour = &admin_endpoint_behaviour,
        .arg = &n->admin,
        .restart = RT_SUP_PERMANENT,
        .shutdown_ms = 2000,
    };
    n->client_args.kv = &n->kv;
    n->client_args.drain_ms = NODE_DRAIN_MS;
    n->top_children[nc++] = (rt_sup_child_spec_t){
        .id = NODE_LISTENER_ID,
        .behaviour = &listener_behaviour,
        .arg = &n->client_args,
        .restart = RT_SUP_PERMANENT,
        .shutdown_ms = listener_shutdown_ms(&n->client_args),
    };
    n->top_spec = (rt_sup_spec_t){
        .strategy = RT_SUP_ONE_FOR_ONE,
        .intensity = 5,
        .period_ms = 10000,
        .children = n->top_children,
        .nchildren = nc,
        .name = NODE_TOP_NAME,
    };
}

/* Waits until every local partition has a live vnode, the tree is gone, or the time is up. */
static int wait_vnodes_up(node_t *n, char *err, size_t errlen)
{
    uint64_t end = rt_now_ns() + (uint64_t)NODE_VNODES_UP_MS * 1000000u;
    uint32_t q = ring_size(kv_ring(&n->kv));
    for (;;) {
        uint32_t missing = 0;
        for (uint32_t p = 0; p < q; p++)
            if (vnode_is_local(&n->kv, p) && rt_pid_is_nil(vnode_pid(&n->kv, p)))
                missing++;
        if (missing == 0)
            return 0;
        int reason;
        if (node_wait_down(n, 5, &reason))
            return node_errorf(err, errlen, "the supervision tree stopped during start (%s); see the log",
                        rt_reason_str(reason));
        if (rt_now_ns() > end)
            return node_errorf(err, errlen, "%" PRIu32 " vnode(s) not up after %u s; see the log", missing,
                        NODE_VNODES_UP_MS / 1000);
    }
}

/* ---------------------------------------------------------------- start / stop */

static void release(node_t *n)
{
    if (n->rt_started) {
        if (!rt_pid_is_nil(n->top))
            rt_demonitor(n->top_mon, RT_DEMONITOR_FLUSH);
        rt_stop(NODE_TREE_STOP_MS);
    }
    wq_stop(n->kv.writes); /* after rt_stop: every vnode, and so every write, is done */
    bucket_store_close(n->kv.buckets);
    vnode_table_free(n->kv.vnodes);
    store_engine_free(n->kv.engine);
    kv_states_free(n->kv.states);
    if (n->stopping)
        rt_info("stopped: storage closed");
    rt_log_set_file(NULL);
    if (n->lock_fd >= 0)
        close(n->lock_fd);
    free(n);
}

int node_start(const node_config_t *cfg, node_t **out, char *err, size_t errlen)
{
    node_t *n = calloc(1, sizeof *n);
    if (!n)
        return node_errorf(err, errlen, "out of memory");
    n->cfg = *cfg;
    n->cfg.storage.data_dir = n->cfg.data_dir;
    if (n->cfg.storage_auto) /* the engine the data dir already holds, else bitcask */
        n->cfg.storage.kind = store_engine_of(n->cfg.data_dir, STORE_ENGINE_BITCASK);
    n->lock_fd = -1;
    n->top = RT_NOPID;
    char why[512], logpath[NODE_CONFIG_STR + 32];
    int status = -1;

    rt_log_set_level(n->cfg.log_level);
    if (make_dirs(n->cfg.data_dir, err, errlen) != 0 || lock_data_dir(n, err, errlen) != 0)
        goto failed;
    if (node_config_log_path(&n->cfg, logpath, sizeof logpath) && rt_log_set_file(logpath) != 0) {
        node_errorf(err, errlen, "log.file: cannot open %s: %s", logpath, strerror(errno));
        goto failed;
    }
    rt_info("cairnd %s starting: node %s, data dir %s, storage %s%s", CAIRN_VERSION,
            n->cfg.nodename, n->cfg.data_dir, node_engine_name(n->cfg.storage.kind),
            n->cfg.storage_auto ? " (storage.backend = auto)" : "");
    int e = 0;
    if (resolve_cookie(n, err, errlen) != 0)
        goto failed;

    rt_config_t rc;
    rt_config_default(&rc);
    /* 0: one scheduler per CPU but one, which is left to LevelDB's compactions, the worker
     * pool and clients on the same host (on 2 CPUs with the load generator alongside, one
     * scheduler measured less CPU per request and half the p99 of two: docs/benchmarks.md). */
    rc.schedulers = n->cfg.schedulers;
    if (rc.schedulers == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        rc.schedulers = cpus > 2 ? (unsigned)cpus - 1 : 1;
    }
    rc.workers = n->cfg.workers;
    rc.idle_spin = n->cfg.idle_spin;
    rc.io_thread = n->cfg.io_thread;
    rc.heartbeat_ms = n->cfg.heartbeat_ms;
    rc.net_timeout_ms = n->cfg.node_timeout_ms;
    rc.node_name = n->cfg.nodename;
    rc.cookie = n->cfg.cookie;
    e = rt_start(&rc);
    if (e != 0) {
        node_errorf(err, errlen, "nodename: cannot start the runtime listening for node links on %s: %s",
             strchr(n->cfg.nodename, '@') + 1, e == RT_EEXIST ? "address in use" : rt_strerror(e));
        goto failed;
    }
    n->rt_started = true;
    /* nodename with port 0: the runtime picked a free port; the node is named after it. */
    snprintf(n->cfg.nodename, sizeof n->cfg.nodename, "%s", rt_node_self());
    snprintf(n->ring_args.ring_path, sizeof n->ring_args.ring_path, "%s/ring", n->cfg.data_dir);
    if ((e = load_ring(n, err, errlen)) != 0) {
        status = e == NODE_ECONFIG ? NODE_ECONFIG : -1;
        goto failed;
    }
    kv_register_msgs();

    n->kv.cfg = &n->cfg;
    n->kv.node_id = XXH3_64bits(n->cfg.nodename, strlen(n->cfg.nodename));
    if ((e = store_engine_new(&n->cfg.storage, &n->kv.engine)) == STORE_ELAYOUT) {
        bool node = n->cfg.storage.layout == STORE_LAYOUT_NODE;
        node_errorf(err, errlen, "storage: %s holds LevelDB data in the %s layout, not the "
                    "configured %s layout: set leveldb.layout = %s", n->cfg.storage.data_dir,
                    node ? "partition" : "node", node ? "node" : "partition",
                    node ? "partition" : "node");
        goto failed;
    }
    if (e == STORE_EENGINE) {
        const char *found = node_engine_name(store_engine_of(n->cfg.storage.data_dir,
                                                             n->cfg.storage.kind));
        node_errorf(err, errlen, "storage: %s holds %s data, not %s data: set "
                    "storage.backend = %s (a node keeps the engine its data dir was created "
                    "with)", n->cfg.storage.data_dir, found,
                    node_engine_name(n->cfg.storage.kind), found);
        goto failed;
    }
    if (e != 0) {
        node_errorf(err, errlen, "storage: cannot start the %s engine: %s",
                    node_engine_name(n->cfg.storage.kind), store_strerror(e));
        goto failed;
    }
    n->kv.obj_cache.limit = vnode_cache_limit(&n->cfg);
    /* Puts write in groups (node/write_queue.h). vnode.write_thread = auto: the writer
     * thread itself decides, from its CPU affinity, whether to take them; on one CPU the hop
     * is pure cost (docs/benchmarks.md, "Sixth sitting"). */
    wq_mode_t wq_mode = n->cfg.vnode_write_thread == NODE_AUTO ? WQ_AUTO
                        : n->cfg.vnode_write_thread                ? WQ_ON
                                                                   : WQ_OFF;
    if (n->cfg.storage.kind != STORE_ENGINE_MEMORY &&
        (e = wq_start(wq_mode, rc.schedulers, &n->kv.writes)) != 0) {
        node_errorf(err, errlen, "vnode.write_thread: cannot start the writer thread: %s",
                    strerror(-e));
        goto failed;
    }
    n->kv.vnodes = vnode_table_new(ring_size(kv_ring(&n->kv)));
    if (!(n->kv.buckets = bucket_store_open(&n->cfg, why, sizeof why))) {
        node_errorf(err, errlen, "buckets: %s", why);
        goto failed;
    }

    n->admin.kv = &n->kv;
    n->admin.started_ns = rt_now_ns();
    n->admin.version = CAIRN_VERSION;
    build_specs(n);
    if ((e = rt_sup_start(&n->top_spec, &n->top)) != 0) {
        n->top = RT_NOPID;
        int lerr = atomic_load(&n->client_args.error);
        if (lerr)
            node_errorf(err, errlen, "listener.protobuf: cannot listen on %s:%d: %s", n->cfg.client_host,
                 n->cfg.client_port, lerr == RT_EADDRINUSE ? "address in use" : rt_strerror(lerr));
        else
            node_errorf(err, errlen, "the supervision tree did not start: %s; see the log",
                 rt_strerror(e));
        goto failed;
    }
    n->top_mon = rt_monitor(n->top);
    rt_set_root(n->top);
    if (wait_vnodes_up(n, err, errlen) != 0)
        goto failed;
    atomic_store(&n->admin.client_port, atomic_load(&n->client_args.port));
    rt_info("node %s up: %" PRIu32 " partitions, node link %s, client port %s:%d", n->cfg.nodename,
            ring_size(kv_ring(&n->kv)), strchr(n->cfg.nodename, '@') + 1, n->cfg.client_host,
            atomic_load(&n->client_args.port));
    *out = n;
    return 0;

failed:
    rt_error("start failed: %s", err);
    release(n);
    return status;
}

bool node_wait_down(node_t *n, uint32_t timeout_ms, int *reason)
{
    if (rt_pid_is_nil(n->top))
        return false;
    rt_msg_t *m;
    bool down = false;
    if (rt_receive(timeout_ms, &m) == 0) {
        if (m->type == RT_MSG_DOWN) {
            const rt_down_msg_t *d = (const void *)m->data;
            if (d->ref == n->top_mon) {
                down = true;
                *reason = d->reason;
                n->top = RT_NOPID;
            }
        }
        rt_msg_free(m);
    }
    return down;
}

void node_stop(node_t *n)
{
    if (!n)
        return;
    uint64_t end = rt_now_ns() + (uint64_t)NODE_DRAIN_MS * 1000000u;
    atomic_store(&n->kv.draining, true);
    if (!rt_pid_is_nil(n->top)) {
        /* The listener drains: no new clients, each connection finishes its request. */
        rt_info("stopping: draining client connections (at most %u ms)", NODE_DRAIN_MS);
        int e = rt_sup_terminate_child(n->top, NODE_LISTENER_ID);
        if (e != 0 && e != RT_ENOTFOUND)
            rt_warn("stopping the client listener: %s", rt_strerror(e));
    }
    uint32_t left;
    while ((left = atomic_load(&n->kv.inflight)) > 0 && rt_now_ns() < end)
        usleep(2000);
    if (left)
        rt_warn("stopping with %" PRIu32 " request(s) still in flight", left);
    rt_info("stopping: admin endpoint, then vnodes");
    n->stopping = true;
    release(n);
}

const node_config_t *node_config(const node_t *n) { return &n->cfg; }
int node_client_port(const node_t *n) { return atomic_load(&((node_t *)n)->admin.client_port); }
kv_node_t *node_kv(node_t *n) { return &n->kv; }
