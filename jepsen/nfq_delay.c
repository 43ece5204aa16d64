/*
 * nfq_delay — the packet-delay nemesis of the fault-injection suite (jepsen/nemesis.sh): a
 * user-space stand-in for `tc netem delay`, which this kernel lacks (no sch_netem). It reads
 * the packets an iptables NFQUEUE rule sends to queue QUEUE, holds each for DELAY_MS and then
 * accepts it, dropping LOSS_PCT % of them at random. Verdicts go out in arrival order, so
 * packets are delayed, never reordered. The rule must use --queue-bypass: when this program
 * exits, traffic flows again undelayed.
 *
 *   nfq_delay QUEUE DELAY_MS LOSS_PCT        (SIGTERM/SIGINT: accept what is held, exit)
 *
 * Built by nemesis.sh with `gcc -O2 -o nfq_delay nfq_delay.c -lnetfilter_queue` (Debian:
 * libnetfilter-queue-dev); not by the Makefile, whose programs link no libnetfilter_queue.
 * Adapted from the delayer of ../shared/reference/netns-recipe.sh.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#define HELD_MAX 65536

static struct held {
    uint32_t id;
    int64_t due_ns;
} held[HELD_MAX];
static size_t head, tail;
static int64_t delay_ns;
static double loss;
static volatile sig_atomic_t stop;

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void on_signal(int s)
{
    (void)s;
    stop = 1;
}

static int on_packet(struct nfq_q_handle *q, struct nfgenmsg *m, struct nfq_data *a, void *d)
{
    (void)m;
    (void)d;
    struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(a);
    if (!ph)
        return 0;
    uint32_t id = ntohl(ph->packet_id);
    if (loss > 0 && drand48() < loss)
        return nfq_set_verdict(q, id, NF_DROP, 0, NULL);
    if ((tail + 1) % HELD_MAX == head) /* full: let it through rather than stall */
        return nfq_set_verdict(q, id, NF_ACCEPT, 0, NULL);
    held[tail].id = id;
    held[tail].due_ns = now_ns() + delay_ns;
    tail = (tail + 1) % HELD_MAX;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s QUEUE DELAY_MS LOSS_PCT\n", argv[0]);
        return 2;
    }
    int qnum = atoi(argv[1]);
    delay_ns = (int64_t)(atof(argv[2]) * 1e6);
    loss = atof(argv[3]) / 100.0;
    srand48(now_ns());
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    struct nfq_handle *h = nfq_open();
    if (!h) {
        perror("nfq_open");
        return 1;
    }
    nfq_bind_pf(h, AF_INET);
    struct nfq_q_handle *qh = nfq_create_queue(h, (uint16_t)qnum, &on_packet, NULL);
    if (!qh) {
        perror("nfq_create_queue");
        return 1;
    }
    if (nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0) {
        perror("nfq_set_mode");
        return 1;
    }
    nfq_set_queue_maxlen(qh, HELD_MAX);
    int fd = nfq_fd(h);
    static char buf[65536];
    fprintf(stderr, "nfq_delay: queue %d, delay %s ms, loss %s %%\n", qnum, argv[2], argv[3]);
    while (!stop) {
        int64_t t = now_ns();
        while (head != tail && held[head].due_ns <= t) {
            nfq_set_verdict(qh, held[head].id, NF_ACCEPT, 0, NULL);
            head = (head + 1) % HELD_MAX;
        }
        int timeout = head != tail ? (int)((held[head].due_ns - t) / 1000000) + 1 : 1000;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, timeout);
        if (r < 0 && errno != EINTR) {
            perror("poll");
            break;
        }
        if (r > 0)
            for (;;) {
                ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
                if (n < 0) {
                    if (errno == ENOBUFS)
                        continue; /* the kernel dropped some: go on reading */
                    break;
                }
                nfq_handle_packet(h, buf, (int)n);
            }
    }
    while (head != tail) {
        nfq_set_verdict(qh, held[head].id, NF_ACCEPT, 0, NULL);
        head = (head + 1) % HELD_MAX;
    }
    nfq_destroy_queue(qh);
    nfq_close(h);
    return 0;
}
