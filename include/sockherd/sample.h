/* Sampling what the workers use, for metrics: CPU time and resident
 * memory of each worker's process group from /proc, and the TCP
 * connections it holds on the pool's listening ports (a sock_diag dump
 * matched against the socket inodes in /proc/PID/fd). Bounded cost: one
 * netlink dump and one pass over /proc per call, for the whole pool. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct SampleWorker {
        pid_t pgid;             /* in: the worker's pid, which leads its process group */
        bool found;             /* out: some process of the group was there */
        unsigned processes;
        uint64_t cpu_usec;      /* out: user + system time of its live processes, cumulative */
        uint64_t rss_bytes;
        unsigned connections;   /* TCP connections on the ports, each counted once per worker */
} SampleWorker;

/* The socket inodes of TCP connections (established or closing) whose
 * local port is one of ports, over IPv4 and IPv6, sorted. Returns the count
 * or -errno. */
int tcp_connection_inodes(const uint16_t *ports, size_t n_ports, uint64_t **ret_inodes);

/* Fill in each worker's numbers. With n_ports == 0 connections stay 0 and
 * no dump is made. Returns 0 or -errno (the dump or /proc failed). */
int sample_workers(SampleWorker *workers, size_t n, const uint16_t *ports, size_t n_ports);

/* The TCP port fd listens on, or 0 when fd is not an IPv4/IPv6 TCP socket. */
uint16_t socket_tcp_port(int fd);
