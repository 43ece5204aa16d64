/*
 * call.c — request/reply. A call is a monitor on the target whose reference doubles as the
 * call reference, plus a timer. The caller's monitor map marks the entry as a call (v[2]: the
 * timer handle, or CALL_NO_TIMER), so exactly one outcome reaches the caller: the reply, a
 * DOWN turned into RT_MSG_CALL_FAILED, or the timeout. Whichever comes first removes the
 * entry; anything for that reference that comes later is dropped.
 *
 * A call by name (rt_call_name) is the same entry with a target the caller may not know: a
 * local name is resolved here; a remote one is resolved by the node that owns it, which
 * monitors the process for the caller, so its DOWN (or the link's noconnection) ends the
 * call as for a call by pid.
 */
#include "runtime/rt_internal.h"

#define CALL_NO_TIMER UINT64_MAX


static rt_msg_t *call_failed(rt_ref_t ref, int reason)
{
    rt_msg_t *f = rt__sig_new(RT_MSG_CALL_FAILED, RT_NOPID, sizeof(rt_call_failed_t));
    rt_call_failed_t *cf = (rt_call_failed_t *)(void *)f->data;
    cf->ref = ref;
    cf->reason = reason;
    f->ref = ref;
    return f;
}

/* Turns the monitor `ref` that `me` just recorded into a call entry; timer: arm a timeout
 * message. */
static void call_arm(rt_proc_t *me, rt_ref_t ref, uint32_t timeout_ms, bool timer)
{
    rt_hent_t *e = rt__hmap_get(&me->ext->monitors, rt__ref_key(ref));
    if (!e) /* recorded just now, so always there; a refused monitor answers with a message */
        return;
    e->v[2] = CALL_NO_TIMER;
    if (timer && timeout_ms != RT_INFINITY) {
        rt_msg_t *t = rt__sig_new(RT_SIG_CALL_TIMEOUT, RT_NOPID, 0);
        t->ref = ref;
        e->v[2] = rt_send_after(timeout_ms, rt__pid_of(me), t);
    }
}

static void call_mark(rt_msg_t *req, rt_ref_t ref, rt_pid_t from)
{
    req->flags |= RT_MSGF_CALL;
    req->flags &= (uint16_t)~RT_MSGF_REPLY;
    req->ref = ref;
    req->from = from;
}

/* Sends req as a call from `me`; returns the reference. timer: arm a timeout message. */
static rt_ref_t call_send(rt_proc_t *me, rt_pid_t to, rt_msg_t *req, uint32_t timeout_ms, bool timer)
{
    rt_ref_t ref = rt__monitor_from(me, to);
    call_arm(me, ref, timeout_ms, timer);
    call_mark(req, ref, rt__pid_of(me));
    rt__send_local(to, req);
    return ref;
}

/* Sends req as a call from `me` to the process registered as `name` on `node`. */
static rt_ref_t call_name_send(rt_proc_t *me, const char *node, const char *name, rt_msg_t *req,
                               uint32_t timeout_ms, bool timer)
{
    bool valid_name = name && *name;
    if (!node || rt__is_local_node_name(node) || !valid_name) {
        /* Resolved here. An unknown (or empty) name is RT_NOPID, whose monitor is refused
         * at once with noproc: the call fails without waiting. */
        rt_pid_t to = valid_name ? rt_whereis(name) : RT_NOPID;
        return call_send(me, to, req, timeout_ms, timer);
    }
    rt_ref_t ref = rt_make_ref();
    rt_pid_t self = rt__pid_of(me);
    call_mark(req, ref, self);
    /* Any failure of the send comes back as a DOWN for ref, through me's mailbox: handled
     * only after the entry below exists. */
    rt_pid_t target = rt__dist_call_name(self, node, name, req);
    rt__monitor_record(me, ref, target);
    call_arm(me, ref, timeout_ms, timer);
    return ref;
}

rt_ref_t rt_call_name(const char *node, const char *name, rt_msg_t *req, uint32_t timeout_ms)
{
    if (req == rt__tls.cur_msg)
        rt__tls.cur_msg = NULL;
    rt_proc_t *me = rt__tls.cur;
    if (!me) {
        rt_msg_free(req);
        return 0;
    }
    return call_name_send(me, node, name, req, timeout_ms, true);
}

rt_ref_t rt_call(rt_pid_t to, rt_msg_t *req, uint32_t timeout_ms)
{
    if (req == rt__tls.cur_msg)
        rt__tls.cur_msg = NULL;
    rt_proc_t *me = rt__tls.cur;
    if (!me) {
        rt_msg_free(req);
        return 0;
    }
    return call_send(me, to, req, timeout_ms, true);
}

int rt_reply(rt_from_t to, rt_msg_t *reply)
{
    if (reply == rt__tls.cur_msg)
        rt__tls.cur_msg = NULL;
    reply->flags |= RT_MSGF_REPLY;
    reply->flags &= (uint16_t)~RT_MSGF_CALL;
    reply->ref = to.ref;
    return rt__send_local(to.pid, reply);
}

bool rt__call_filter(rt_proc_t *p, rt_msg_t **mp)
{
    rt_msg_t *m = *mp;
    rt_ref_t ref = m->type == RT_MSG_DOWN ? ((rt_down_msg_t *)(void *)m->data)->ref : m->ref;
    rt_hent_t *e = p->ext ? rt__hmap_get(&p->ext->monitors, rt__ref_key(ref)) : NULL;
    bool is_call = e && e->v[2] != 0;
    if (m->type == RT_MSG_DOWN) {
        if (!is_call)
            return false; /* a plain monitor's DOWN */
        rt_hent_t old;
        rt__hmap_del(&p->ext->monitors, rt__ref_key(ref), &old);
        if (old.v[2] != CALL_NO_TIMER)
            rt_cancel_timer(old.v[2]);
        *mp = call_failed(ref, ((rt_down_msg_t *)(void *)m->data)->reason);
        rt_msg_free(m);
        return true;
    }
    if (!is_call) { /* late reply or late timeout: dropped */
        rt_msg_free(m);
        *mp = NULL;
        return true;
    }
    uint64_t timer = e->v[2];
    if (m->type == RT_SIG_CALL_TIMEOUT) {
        rt__demonitor_from(p, ref);
        *mp = call_failed(ref, RT_R_TIMEOUT);
        rt_msg_free(m);
        return true;
    }
    /* the reply */
    rt__demonitor_from(p, ref);
    if (timer != CALL_NO_TIMER)
        rt_cancel_timer(timer);
    return true;
}

/* ------------------------------------------------------------------ blocking form */

static bool match_ref(const rt_msg_t *m, void *ctx)
{
    rt_ref_t ref = *(rt_ref_t *)ctx;
    return m->ref == ref && ((m->flags & RT_MSGF_REPLY) || m->type == RT_MSG_CALL_FAILED);
}

/* This thread's mailbox for a blocking call, or an error (req is then freed). */
static int sync_caller(rt_msg_t *req, rt_proc_t **me)
{
    if (rt__tls.sched || rt__tls.cur) {
        rt_msg_free(req);
        return RT_ECALLER;
    }
    *me = rt__thread_proc();
    if (!*me) {
        rt_msg_free(req);
        return RT_ESTATE;
    }
    return 0;
}

/* Waits for the outcome of the call `ref` made from this thread. */
static int sync_wait(rt_proc_t *me, rt_ref_t ref, uint32_t timeout_ms, rt_msg_t **reply, int *reason_out)
{
    rt_msg_t *m = NULL;
    int rc = rt_receive_match(timeout_ms, match_ref, &ref, &m);
    if (rc == RT_ETIMEDOUT) {
        rt__demonitor_from(me, ref); /* a reply after this point is dropped */
        return RT_ETIMEDOUT;
    }
    if (rc != 0)
        return rc;
    if (m->type == RT_MSG_CALL_FAILED) {
        if (reason_out)
            *reason_out = ((rt_call_failed_t *)(void *)m->data)->reason;
        rt_msg_free(m);
        return RT_EDOWN;
    }
    *reply = m;
    return 0;
}

int rt_call_sync(rt_pid_t to, rt_msg_t *req, uint32_t timeout_ms, rt_msg_t **reply, int *reason_out)
{
    rt_proc_t *me;
    int rc = sync_caller(req, &me);
    if (rc != 0)
        return rc;
    rt_ref_t ref = call_send(me, to, req, timeout_ms, false);
    return sync_wait(me, ref, timeout_ms, reply, reason_out);
}

int rt_call_name_sync(const char *node, const char *name, rt_msg_t *req, uint32_t timeout_ms,
                      rt_msg_t **reply, int *reason_out)
{
    rt_proc_t *me;
    int rc = sync_caller(req, &me);
    if (rc != 0)
        return rc;
    rt_ref_t ref = call_name_send(me, node, name, req, timeout_ms, false);
    return sync_wait(me, ref, timeout_ms, reply, reason_out);
}
