/*
 * call.c — request/reply. A call is a monitor on the target whose reference doubles as the
 * call reference, plus a timer. The caller's monitor map marks the entry as a call (v[2]: the
 * timer handle, or CALL_NO_TIMER), so exactly one outcome reaches the caller: the reply, a
 * DOWN turned into RT_MSG_CALL_FAILED, or the timeout. Whichever comes first removes the
 * entry; anything for that reference that comes later is dropped.
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

/* Sends req as a call from `me`; returns the reference. timer: arm a timeout message. */
static rt_ref_t call_send(rt_proc_t *me, rt_pid_t to, rt_msg_t *req, uint32_t timeout_ms, bool timer)
{
    rt_ref_t ref = rt__monitor_from(me, to);
    rt_hent_t *e = rt__hmap_get(&me->ext->monitors, rt__ref_key(ref));
    if (e) { /* just recorded by rt__monitor_from (a refused monitor answers with a message) */
        e->v[2] = CALL_NO_TIMER;
        if (timer && timeout_ms != RT_INFINITY) {
            rt_msg_t *t = rt__sig_new(RT_SIG_CALL_TIMEOUT, RT_NOPID, 0);
            t->ref = ref;
            e->v[2] = rt_send_after(timeout_ms, rt__pid_of(me), t);
        }
    }
    req->flags |= RT_MSGF_CALL;
    req->flags &= (uint16_t)~RT_MSGF_REPLY;
    req->ref = ref;
    req->from = rt__pid_of(me);
    rt__send_local(to, req);
    return ref;
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

int rt_call_sync(rt_pid_t to, rt_msg_t *req, uint32_t timeout_ms, rt_msg_t **reply, int *reason_out)
{
    if (rt__tls.sched || rt__tls.cur) {
        rt_msg_free(req);
        return RT_ECALLER;
    }
    rt_proc_t *me = rt__thread_proc();
    if (!me) {
        rt_msg_free(req);
        return RT_ESTATE;
    }
    rt_ref_t ref = call_send(me, to, req, timeout_ms, false);
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
