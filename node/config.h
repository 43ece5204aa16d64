/*
 * config.h — cairnd's configuration: the file (`key = value`, riak.conf style), the command
 * line flags that override it, defaults, and validation (prefix node_config_).
 *
 * Every key is documented in docs/configuration.md with its default; `cairnd --help` lists
 * the flags. A bad value is refused at start with the key, the value and the reason. The
 * struct is filled once at start and then read-only (shared by every process of the node
 * without locks).
 */
#ifndef CAIRN_NODE_CONFIG_H
#define CAIRN_NODE_CONFIG_H

#include "node/errors.h"
#include "storage/backend.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NODE_CONFIG_STR 256
#define NODE_AUTO (-1) /* an on/off/auto key set to auto */
#define NODE_QUORUM_DEFAULT 4294967291u /* Riak's symbolic quorum values (riak-facts 6.4) */
#define NODE_QUORUM_ALL 4294967292u
#define NODE_QUORUM_QUORUM 4294967293u
#define NODE_QUORUM_ONE 4294967294u

typedef enum { DELETE_MODE_DELAY, DELETE_MODE_KEEP, DELETE_MODE_IMMEDIATE } delete_mode_t;

/* Bucket-property defaults for the `default` bucket type (Riak's names and defaults).
 * Quorum values are a number or one of NODE_QUORUM_*. */
typedef struct node_bucket_defaults_s {
    uint32_t n_val;                 /* 3 */
    uint32_t r, w, dw, rw;          /* quorum */
    uint32_t pr, pw;                /* 0 */
    bool allow_mult;                /* false */
    bool last_write_wins;           /* false */
    bool notfound_ok;               /* true */
    bool basic_quorum;              /* false */
    uint32_t small_vclock, big_vclock;   /* 50, 50 */
    uint32_t young_vclock, old_vclock;   /* 20, 86400 (seconds) */
} node_bucket_defaults_t;

typedef struct node_config_s {
    /* identity and addresses */
    char nodename[NODE_CONFIG_STR];      /* name@host:port; host:port is the node link
                                          * (default cairn@127.0.0.1:8086) */
    char client_host[64];                /* client (PB) listener, default 127.0.0.1 */
    int client_port;                     /* default 8087 */
    char data_dir[NODE_CONFIG_STR];      /* default ./data */
    char cookie[NODE_CONFIG_STR];        /* "" at parse: read from <data_dir>/cookie, or
                                          * generated there on first start */
    uint32_t ring_size;                  /* power of 2 in [1, 1024], default 64 */

    /* logging */
    int log_level;                       /* RT_LOG_* value; default info */
    char log_file[NODE_CONFIG_STR];      /* default <data_dir>/cairnd.log; "off": none */

    /* runtime */
    unsigned schedulers;                 /* 0: one per CPU */
    unsigned workers;                    /* worker pool threads, default 4 */
    unsigned idle_spin;                  /* scheduler idle spin rounds (rt_config_t) */
    bool io_thread;                      /* sockets on a thread of their own (rt_config_t) */

    /* cluster */
    uint32_t heartbeat_ms;               /* node-link heartbeat when idle, default 1000 */
    uint32_t node_timeout_ms;            /* a silent peer is down after this, default 4000 */
    uint32_t gossip_interval_ms;         /* anti-entropy push to a random peer, default 1000 */
    uint32_t claimant_tick_ms;           /* the claimant's duty cycle, default 1000 */
    uint32_t target_n_val;               /* claim's spacing window, default 4 */
    bool anti_entropy;                   /* read-repair sweeps (node/anti_entropy.h), on */
    uint32_t ae_interval_ms;             /* between two partition passes, default 2000 */
    uint32_t ae_max_rate;                /* keys checked per second at most, default 500 */
    uint32_t handoff_concurrency;        /* outbound partition transfers at once, default 2
                                          * (0: none start) */

    /* storage */
    store_config_t storage;              /* backend, cache, write buffer, bloom, sync */
    bool storage_auto;                   /* storage.backend = auto (the default): the data
                                          * dir's engine, bitcask for a new one; node_start
                                          * resolves it into storage.kind */

    /* client protocol limits */
    uint32_t max_frame_bytes;            /* default 64 MiB (largest accepted request) */
    uint32_t max_connections;            /* default 1024; beyond: refused with an error */
    uint32_t frame_timeout_ms;           /* a started frame must complete within this,
                                          * default 10000 */
    uint32_t idle_timeout_ms;            /* 0 (default): idle connections stay open */

    /* requests */
    uint32_t max_concurrent_requests;    /* coordinators alive at once; beyond: `overload`
                                          * (default 50000) */
    uint32_t request_timeout_ms;         /* get/put/delete default 60000 */
    uint32_t list_timeout_ms;            /* list keys/buckets default 480000 */
    uint64_t vnode_cache_bytes;          /* the object cache's budget for all vnodes
                                          * (storage/cache.h); 0: off */
    int vnode_write_thread;              /* puts' LevelDB writes on node/write_queue.c's thread:
                                          * 1 on, 0 off, NODE_AUTO (default): on when the node
                                          * may use more CPUs than it has schedulers */
    uint32_t vnode_queue_max;            /* NOT ENFORCED YET (docs/configuration.md): meant as
                                          * a vnode mailbox beyond this answers OVERLOAD
                                          * (default 10000) */
    delete_mode_t delete_mode;           /* default DELETE_MODE_DELAY */
    uint32_t delete_delay_ms;            /* DELETE_MODE_DELAY: default 3000 */
    uint64_t object_warn_bytes, object_max_bytes;  /* 5 MiB, 50 MiB */
    uint32_t siblings_warn, siblings_max;           /* 25, 100 */

    node_bucket_defaults_t bucket_defaults;
} node_config_t;

/* Fills c with every default (data_dir "./data"). */
void node_config_default(node_config_t *c);

/* Reads `key = value` lines from path into c (keys not in the file keep their values).
 * '#' starts a comment; blank lines are ignored. On error returns -1 and writes
 * "<path>:<line>: <key>: <reason>" to err[0..errlen). */
int node_config_load(node_config_t *c, const char *path, char *err, size_t errlen);

/* Sets one key from text (the file and `--set key=value` use it). -1 with the reason in err. */
int node_config_set(node_config_t *c, const char *key, const char *value, char *err,
                    size_t errlen);

/* Cross-field checks after everything is loaded (e.g. ports, quorum values vs n_val).
 * -1 with "<key>: <reason>" in err. */
int node_config_validate(const node_config_t *c, char *err, size_t errlen);

/* Writes every key with its current value, one `key = value` per line (cairnd
 * --print-config). */
void node_config_print(const node_config_t *c, void *file /* FILE * */);

/* The known keys, in documentation order (tests check each is in docs/configuration.md). */
size_t node_config_key_count(void);
const char *node_config_key_name(size_t i);   /* NULL past the end */

/* The storage.backend value of an engine kind: "leveldb", "bitcask" or "memory" (static). */
const char *node_engine_name(store_engine_kind_t kind);

/* The log file to use: log_file with a leading "$(platform_data_dir)" replaced by data_dir,
 * or <data_dir>/cairnd.log when log_file is "" (the default). Writes it to buf and returns
 * buf, or NULL when logging to a file is off ("off"). */
const char *node_config_log_path(const node_config_t *c, char *buf, size_t n);

#endif
