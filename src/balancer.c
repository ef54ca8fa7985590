/* The manager's side of balance = least-connections (see balancer.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "balancer.skel.h"
#include "sockherd/balancer.h"
#include "sockherd/util.h"

#ifndef SO_ATTACH_REUSEPORT_EBPF
#define SO_ATTACH_REUSEPORT_EBPF 52
#endif

struct Balancer {
        BalancerFds fds;
        struct balancer_lane *lanes;     /* the lanes map, mapped shared */
        struct balancer_chooser *chooser; /* the chooser map, mapped shared */
};

static size_t page_round(size_t n) {
        size_t page = (size_t) sysconf(_SC_PAGESIZE);
        return (n + page - 1) / page * page;
}

#define LANES_SIZE page_round(sizeof(struct balancer_lane) * BALANCER_LANES_MAX)
#define CHOOSER_SIZE page_round(sizeof(struct balancer_chooser))

static int balancer_map(Balancer *b) {
        void *p = mmap(NULL, LANES_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, b->fds.lanes, 0);
        if (p == MAP_FAILED)
                return -errno;
        b->lanes = p;
        p = mmap(NULL, CHOOSER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, b->fds.chooser, 0);
        if (p == MAP_FAILED)
                return -errno;
        b->chooser = p;
        return 0;
}

static Balancer *balancer_alloc(void) {
        Balancer *b = calloc(1, sizeof(Balancer));
        if (b)
                b->fds = (BalancerFds) { -1, -1, -1, -1, -1, -1 };
        return b;
}

static int dup_cloexec(int fd) {
        int r = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        return r < 0 ? -errno : r;
}

static int libbpf_quiet(enum libbpf_print_level level _unused_, const char *fmt _unused_, va_list ap _unused_) {
        return 0;
}

int balancer_load(uint16_t port, Balancer **ret) {
        _cleanup_(balancer_freep) Balancer *b = balancer_alloc();
        struct balancer_bpf *skel;
        int r;

        if (!b)
                return -ENOMEM;
        /* the verifier's log is for developers: the caller says what failed */
        libbpf_print_fn_t old = libbpf_set_print(libbpf_quiet);
        skel = balancer_bpf__open();
        if (!skel) {
                r = -errno;
                goto finish;
        }
        skel->rodata->balanced_port = port;
        r = balancer_bpf__load(skel);
        if (r < 0)
                goto finish;
        struct bpf_link *link = bpf_program__attach_raw_tracepoint(skel->progs.count_close, "inet_sock_set_state");
        if (!link) {
                r = -errno;
                goto finish;
        }
        /* our own copies: the skeleton and its link go, the objects stay */
        int sources[BALANCER_FDS_N] = {
                bpf_program__fd(skel->progs.choose_lane), bpf_link__fd(link),
                bpf_map__fd(skel->maps.lanes), bpf_map__fd(skel->maps.chooser),
                bpf_map__fd(skel->maps.conns), bpf_map__fd(skel->maps.lane_sockets),
        };
        int *dest = &b->fds.program;
        r = 0;
        for (size_t i = 0; i < BALANCER_FDS_N && r >= 0; i++)
                r = dest[i] = dup_cloexec(sources[i]);
        /* the link fd is ours now: destroying the bpf_link must not detach it */
        bpf_link__disconnect(link);
        bpf_link__destroy(link);
        if (r >= 0)
                r = balancer_map(b);
finish:
        balancer_bpf__destroy(skel);
        libbpf_set_print(old);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(b);
        return 0;
}

int balancer_adopt(const BalancerFds *fds, Balancer **ret) {
        _cleanup_(balancer_freep) Balancer *b = balancer_alloc();
        if (!b)
                return -ENOMEM;
        b->fds = *fds;
        int r = balancer_map(b);
        if (r < 0) {
                b->fds = (BalancerFds) { -1, -1, -1, -1, -1, -1 }; /* the caller still owns them */
                return r;
        }
        *ret = TAKE_PTR(b);
        return 0;
}

void balancer_fds(const Balancer *b, BalancerFds *ret) {
        *ret = b->fds;
}

int balancer_set_socket(Balancer *b, unsigned lane, int fd) {
        uint32_t key = lane;
        if (lane >= BALANCER_LANES_MAX)
                return -ERANGE;
        if (fd < 0) {
                if (bpf_map_delete_elem(b->fds.sockets, &key) < 0 && errno != ENOENT)
                        return -errno;
                return 0;
        }
        uint64_t value = (uint64_t) fd;
        if (bpf_map_update_elem(b->fds.sockets, &key, &value, BPF_ANY) < 0)
                return -errno;
        return 0;
}

void balancer_set_state(Balancer *b, unsigned lane, unsigned state) {
        if (lane < BALANCER_LANES_MAX)
                __atomic_store_n(&b->lanes[lane].state, state, __ATOMIC_RELEASE);
}

void balancer_set_lanes(Balancer *b, unsigned n) {
        __atomic_store_n(&b->chooser->n_lanes, n > BALANCER_LANES_MAX ? BALANCER_LANES_MAX : n, __ATOMIC_RELEASE);
}

int balancer_attach(Balancer *b, int group_fd) {
        if (setsockopt(group_fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &b->fds.program, sizeof(int)) < 0)
                return -errno;
        return 0;
}

int balancer_find_socket(const Balancer *b, int fd) {
        uint64_t cookie = 0, value;
        socklen_t len = sizeof(cookie);

        if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) < 0)
                return -errno;
        for (uint32_t lane = 0; lane < BALANCER_LANES_MAX; lane++)
                if (bpf_map_lookup_elem(b->fds.sockets, &lane, &value) == 0 && value == cookie)
                        return (int) lane;
        return -ENOENT;
}

unsigned balancer_live(const Balancer *b, unsigned lane) {
        if (lane >= BALANCER_LANES_MAX)
                return 0;
        return __atomic_load_n(&b->lanes[lane].live, __ATOMIC_RELAXED);
}

static uint64_t coarse_now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

unsigned balancer_expire(Balancer *b, uint64_t max_age_usec) {
        struct balancer_conn_key key, next;
        struct balancer_conn c;
        uint64_t now = coarse_now_usec();
        unsigned n = 0;
        void *prev = NULL;

        /* deleting while walking can restart the walk: bounded by the map size */
        for (unsigned steps = 0; steps < BALANCER_CONNECTIONS_MAX &&
                                 bpf_map_get_next_key(b->fds.conns, prev, &next) == 0; steps++) {
                key = next;
                prev = &key;
                if (bpf_map_lookup_elem(b->fds.conns, &key, &c) < 0 || c.established)
                        continue;
                if (c.born_ns / 1000 + max_age_usec > now)
                        continue;
                /* the one whose delete succeeds counts it down */
                if (bpf_map_delete_elem(b->fds.conns, &key) == 0 && c.lane < BALANCER_LANES_MAX) {
                        __atomic_fetch_sub(&b->lanes[c.lane].live, 1, __ATOMIC_RELAXED);
                        n++;
                }
        }
        return n;
}

void balancer_stats(const Balancer *b, uint64_t *ret_unplaced, uint64_t *ret_untracked) {
        *ret_unplaced = __atomic_load_n(&b->chooser->unplaced, __ATOMIC_RELAXED);
        *ret_untracked = __atomic_load_n(&b->chooser->untracked, __ATOMIC_RELAXED);
}

uint64_t balancer_handshake_max_usec(void) {
        /* SYN-ACKs are retried after 1, 2, 4, ... s */
        unsigned retries = 5;
        _cleanup_fclose_ FILE *f = fopen("/proc/sys/net/ipv4/tcp_synack_retries", "re");
        if (f && fscanf(f, "%u", &retries) != 1)
                retries = 5;
        if (retries > 10)
                retries = 10;
        return ((UINT64_C(1) << (retries + 1)) - 1 + 10) * USEC_PER_SEC;
}

Balancer *balancer_free(Balancer *b) {
        if (!b)
                return NULL;
        if (b->lanes)
                munmap(b->lanes, LANES_SIZE);
        if (b->chooser)
                munmap(b->chooser, CHOOSER_SIZE);
        int *fds = &b->fds.program;
        for (size_t i = 0; i < BALANCER_FDS_N; i++)
                safe_close(fds[i]);
        free(b);
        return NULL;
}
