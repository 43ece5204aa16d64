/*
 * registry.c — local names for processes (Erlang's register/whereis). A name belongs to at
 * most one live process and dies with it. A hash table of name -> pid under one mutex;
 * the name is also kept on the process (ext->name) so its exit path can drop it.
 */
#include "runtime/rt_internal.h"

#include <string.h>

typedef struct reg_ent {
    struct reg_ent *next;
    rt_pid_t pid;
    char name[];
} reg_ent_t;

#define REG_BUCKETS 1024
static pthread_mutex_t reg_mx = PTHREAD_MUTEX_INITIALIZER;
static reg_ent_t *reg_tab[REG_BUCKETS];

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h & (REG_BUCKETS - 1);
}

static reg_ent_t **find(const char *name)
{
    reg_ent_t **pp = &reg_tab[name_hash(name)];
    while (*pp && strcmp((*pp)->name, name) != 0)
        pp = &(*pp)->next;
    return pp;
}

int rt_register(const char *name, rt_pid_t pid)
{
    if (!name || !*name || strlen(name) > 255 || pid.node != 0)
        return RT_EINVAL;
    rt_proc_t *p = rt__acquire(pid);
    if (!p)
        return RT_ENOPROC;
    int rc = 0;
    pthread_mutex_lock(&reg_mx);
    reg_ent_t **pp = find(name);
    if (*pp) {
        rc = RT_EEXIST;
    } else if (p->ext && p->ext->name) {
        rc = RT_EEXIST; /* one name per process, as in Erlang */
    } else {
        size_t n = strlen(name) + 1;
        reg_ent_t *e = rt__xmalloc(sizeof *e + n);
        memcpy(e->name, name, n);
        e->pid = pid;
        e->next = NULL;
        *pp = e;
        rt__spin_lock(&p->lock);
        rt__ext(p)->name = rt__xstrdup(name);
        rt__spin_unlock(&p->lock);
    }
    pthread_mutex_unlock(&reg_mx);
    rt__release(p);
    return rc;
}

static void drop_locked(reg_ent_t **pp)
{
    reg_ent_t *e = *pp;
    *pp = e->next;
    free(e);
}

int rt_unregister(const char *name)
{
    if (!name)
        return RT_EINVAL;
    pthread_mutex_lock(&reg_mx);
    reg_ent_t **pp = find(name);
    if (!*pp) {
        pthread_mutex_unlock(&reg_mx);
        return RT_ENOTFOUND;
    }
    rt_pid_t pid = (*pp)->pid;
    drop_locked(pp);
    rt_proc_t *p = rt__acquire(pid);
    if (p) {
        rt__spin_lock(&p->lock);
        if (p->ext) {
            free(p->ext->name);
            p->ext->name = NULL;
        }
        rt__spin_unlock(&p->lock);
        rt__release(p);
    }
    pthread_mutex_unlock(&reg_mx);
    return 0;
}

rt_pid_t rt_whereis(const char *name)
{
    if (!name)
        return RT_NOPID;
    pthread_mutex_lock(&reg_mx);
    reg_ent_t **pp = find(name);
    rt_pid_t pid = *pp ? (*pp)->pid : RT_NOPID;
    pthread_mutex_unlock(&reg_mx);
    return pid;
}

void rt__registry_drop(rt_proc_t *p)
{
    if (!p->ext || !p->ext->name)
        return;
    pthread_mutex_lock(&reg_mx);
    reg_ent_t **pp = find(p->ext->name);
    if (*pp && (*pp)->pid.id == p->id)
        drop_locked(pp);
    free(p->ext->name);
    p->ext->name = NULL;
    pthread_mutex_unlock(&reg_mx);
}

void rt__registry_free(void)
{
    pthread_mutex_lock(&reg_mx);
    for (unsigned i = 0; i < REG_BUCKETS; i++)
        while (reg_tab[i])
            drop_locked(&reg_tab[i]);
    pthread_mutex_unlock(&reg_mx);
}

int rt_send_name(const char *node, const char *name, rt_msg_t *m)
{
    if (m == rt__tls.cur_msg)
        rt__tls.cur_msg = NULL;
    if (node && !rt__is_local_node_name(node))
        return rt__dist_send_name(node, name, m);
    rt_pid_t pid = rt_whereis(name);
    if (rt_pid_is_nil(pid)) {
        rt_msg_free(m);
        return RT_ENOPROC;
    }
    return rt__send_local(pid, m);
}
