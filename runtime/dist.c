/* dist.c — placeholder until distribution lands (this file is replaced). */
#include "runtime/rt_internal.h"
int rt__dist_start(const rt_config_t *c) { (void)c; return 0; }
void rt__dist_stop(void) {}
int rt__dist_send(rt_pid_t to, rt_msg_t *m) { (void)to; rt_msg_free(m); return RT_ENOTCONN; }
int rt__dist_send_name(const char *node, const char *name, rt_msg_t *m) { (void)node; (void)name; rt_msg_free(m); return RT_ENOTCONN; }
int rt__dist_link(rt_pid_t l, rt_pid_t r) { (void)l; (void)r; return RT_ENOTCONN; }
int rt__dist_unlink(rt_pid_t l, rt_pid_t r) { (void)l; (void)r; return RT_ENOTCONN; }
int rt__dist_monitor(rt_pid_t w, rt_pid_t t, rt_ref_t ref) { (void)w; (void)t; (void)ref; return RT_ENOTCONN; }
int rt__dist_demonitor(rt_pid_t w, rt_pid_t t, rt_ref_t ref) { (void)w; (void)t; (void)ref; return RT_ENOTCONN; }
int rt__dist_exit(rt_pid_t f, rt_pid_t t, int reason, bool linked) { (void)f; (void)t; (void)reason; (void)linked; return RT_ENOTCONN; }
int rt__dist_down(rt_pid_t w, rt_ref_t ref, rt_pid_t t, int reason) { (void)w; (void)ref; (void)t; (void)reason; return RT_ENOTCONN; }
void rt__dist_flush_thread(void) {}
bool rt__is_local_node_name(const char *node) { (void)node; return true; }
