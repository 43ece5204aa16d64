/*
 * timer.c — send_after and cancel. Pending timers live in one binary min-heap under a mutex;
 * the loop thread keeps a uv_timer armed at the earliest deadline and fires what is due.
 * A timer leaves the heap under the mutex before its message is sent, so a cancel that finds
 * it in the heap guarantees the message is never delivered.
 *
 * Handles are (generation << 32 | slot): a stale handle never cancels a reused slot.
 */
#include "runtime/rt_internal.h"

#include <string.h>
#include <uv.h>

typedef struct timer_slot {
    uint64_t deadline;
    rt_pid_t to;
    rt_msg_t *msg;
    uint32_t gen;
    uint32_t heap_pos;  /* index in heap, or UINT32_MAX when free */
    uint32_t next_free;
} timer_slot_t;

static struct {
    pthread_mutex_t mx;
    timer_slot_t *slots;
    uint32_t nslots, cap;
    uint32_t free_head;     /* UINT32_MAX: none */
    uint32_t *heap;         /* slot indices */
    uint32_t nheap;
    uv_timer_t uvt;         /* loop thread only */
    uint64_t armed;         /* deadline the uv timer is set for (0: none); under mx */
    bool uv_ready;
} T;

static void heap_swap(uint32_t i, uint32_t j)
{
    uint32_t a = T.heap[i], b = T.heap[j];
    T.heap[i] = b;
    T.heap[j] = a;
    T.slots[b].heap_pos = i;
    T.slots[a].heap_pos = j;
}

static void heap_up(uint32_t i)
{
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (T.slots[T.heap[p]].deadline <= T.slots[T.heap[i]].deadline)
            break;
        heap_swap(i, p);
        i = p;
    }
}

static void heap_down(uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < T.nheap && T.slots[T.heap[l]].deadline < T.slots[T.heap[m]].deadline)
            m = l;
        if (r < T.nheap && T.slots[T.heap[r]].deadline < T.slots[T.heap[m]].deadline)
            m = r;
        if (m == i)
            return;
        heap_swap(i, m);
        i = m;
    }
}

static void heap_remove(uint32_t pos)
{
    uint32_t last = --T.nheap;
    if (pos != last) {
        heap_swap(pos, last);
        heap_down(pos);
        heap_up(pos);
    }
}

static void slot_release(uint32_t idx)
{
    timer_slot_t *t = &T.slots[idx];
    t->msg = NULL;
    t->heap_pos = UINT32_MAX;
    t->gen++;
    t->next_free = T.free_head;
    T.free_head = idx;
}

static void on_uv_timer(uv_timer_t *h);

/* Loop thread: (re)arm the uv timer for the earliest deadline. */
static void rearm(void *arg)
{
    if (!T.uv_ready) {
        uv_timer_init(rt__loop(), &T.uvt);
        T.uv_ready = true;
    }
    pthread_mutex_lock(&T.mx);
    uint64_t next = T.nheap ? T.slots[T.heap[0]].deadline : 0;
    T.armed = next;
    pthread_mutex_unlock(&T.mx);
    if (next == 0) {
        uv_timer_stop(&T.uvt);
        return;
    }
    uint64_t now = rt_now_ns();
    uint64_t ms = next > now ? (next - now + 999999) / 1000000 : 0;
    uv_update_time(rt__loop());
    uv_timer_start(&T.uvt, on_uv_timer, ms, 0);
}

static void on_uv_timer(uv_timer_t *h)
{
    enum { BATCH = 256 };
    rt_pid_t to[BATCH];
    rt_msg_t *msg[BATCH];
    for (;;) {
        unsigned n = 0;
        uint64_t now = rt_now_ns();
        pthread_mutex_lock(&T.mx);
        while (T.nheap && T.slots[T.heap[0]].deadline <= now && n < BATCH) {
            uint32_t idx = T.heap[0];
            heap_remove(0);
            to[n] = T.slots[idx].to;
            msg[n] = T.slots[idx].msg;
            n++;
            slot_release(idx);
        }
        pthread_mutex_unlock(&T.mx);
        for (unsigned i = 0; i < n; i++)
            rt__send_local(to[i], msg[i]);
        if (n < BATCH)
            break;
    }
    rearm(NULL);
}

rt_timer_t rt_send_after(uint32_t ms, rt_pid_t to, rt_msg_t *m)
{
    if (m == rt__tls.cur_msg)
        rt__tls.cur_msg = NULL;
    if (atomic_load(&rt__g.state) != 1) {
        rt_msg_free(m);
        return 0;
    }
    uint64_t deadline = rt_now_ns() + (uint64_t)ms * 1000000ull;
    if (deadline == 0)
        deadline = 1;
    pthread_mutex_lock(&T.mx);
    uint32_t idx;
    if (T.free_head != UINT32_MAX) {
        idx = T.free_head;
        T.free_head = T.slots[idx].next_free;
    } else {
        if (T.nslots == T.cap) {
            T.cap = T.cap ? T.cap * 2 : 256;
            T.slots = rt__xrealloc(T.slots, T.cap * sizeof *T.slots);
            T.heap = rt__xrealloc(T.heap, T.cap * sizeof *T.heap);
        }
        idx = T.nslots++;
        T.slots[idx].gen = 1;
    }
    timer_slot_t *t = &T.slots[idx];
    t->deadline = deadline;
    t->to = to;
    t->msg = m;
    t->heap_pos = T.nheap;
    T.heap[T.nheap++] = idx;
    heap_up(t->heap_pos);
    bool need_rearm = T.armed == 0 || deadline < T.armed;
    if (need_rearm)
        T.armed = deadline; /* so concurrent inserts with later deadlines skip the wake-up */
    rt_timer_t h = ((uint64_t)t->gen << 32) | idx;
    pthread_mutex_unlock(&T.mx);
    if (need_rearm)
        rt__loop_call(rearm, NULL);
    return h;
}

bool rt_cancel_timer(rt_timer_t h)
{
    uint32_t idx = (uint32_t)h, gen = (uint32_t)(h >> 32);
    rt_msg_t *m = NULL;
    pthread_mutex_lock(&T.mx);
    if (idx < T.nslots && T.slots[idx].gen == gen && T.slots[idx].heap_pos != UINT32_MAX) {
        heap_remove(T.slots[idx].heap_pos);
        m = T.slots[idx].msg;
        slot_release(idx);
    }
    pthread_mutex_unlock(&T.mx);
    if (!m)
        return false;
    rt_msg_free(m);
    return true;
}

void rt__timers_init(void)
{
    /* Adaptive: every rt_call arms and cancels a timer here, from every scheduler; the
     * critical sections are a few heap steps, so a short spin beats a futex sleep/wake. */
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(&T.mx, &a);
    pthread_mutexattr_destroy(&a);
    T.slots = NULL;
    T.heap = NULL;
    T.nslots = T.cap = T.nheap = 0;
    T.free_head = UINT32_MAX;
    T.armed = 0;
    T.uv_ready = false;
}

/* After the loop thread stopped: free the messages of timers that never fired. */
void rt__timers_free(void)
{
    for (uint32_t i = 0; i < T.nheap; i++)
        rt_msg_free(T.slots[T.heap[i]].msg);
    free(T.slots);
    free(T.heap);
    T.slots = NULL;
    T.heap = NULL;
    T.nslots = T.cap = T.nheap = 0;
    pthread_mutex_destroy(&T.mx);
}
