/*
 * bench_util.h: what every libgoro benchmark shares.  Each benchmark
 * prints one line per case, "bench KEY: goro=VALUE UNIT", which
 * scripts/bench.sh joins with the "go=VALUE" line of its Go twin.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <goro.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

static inline long bench_arg(int argc, char **argv, long def)
{
	return argc > 1 ? strtol(argv[1], NULL, 0) : def;
}

/* Resident set size of this process, in bytes, from /proc/self/statm. */
static inline long bench_rss(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
		resident = -1;
	fclose(f);
	return resident * sysconf(_SC_PAGESIZE);
}

static inline void bench_print(const char *key, double v, const char *unit)
{
	printf("bench %s: goro=%.1f %s\n", key, v, unit);
	fflush(stdout);
}

static inline int bench_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The collections between two goro_read_memstats (the last 256 at
 * most): prints NAME/maxpause, NAME/p99pause (the largest pause when
 * there are fewer than 100) and NAME/collections. */
static inline void bench_print_pauses(const char *name,
				      const struct goro_memstats *st0,
				      const struct goro_memstats *st1)
{
	uint32_t n = st1->num_gc - st0->num_gc;
	uint64_t pauses[256];
	char key[96];

	if (n > 256)
		n = 256;
	for (uint32_t i = 0; i < n; i++)
		pauses[i] = st1->pause_ns[(st0->num_gc + i) % 256];
	qsort(pauses, n, sizeof(pauses[0]), bench_cmp_u64);
	snprintf(key, sizeof(key), "%s/maxpause", name);
	bench_print(key, n ? (double)pauses[n - 1] / 1e3 : 0, "us");
	snprintf(key, sizeof(key), "%s/p99pause", name);
	bench_print(key, n ? (double)pauses[n * 99 / 100 < n ? n * 99 / 100
							     : n - 1] / 1e3
			   : 0, "us");
	snprintf(key, sizeof(key), "%s/collections", name);
	bench_print(key, n, "n");
}

/* The server half of bench_run_server: a listener on a free loopback
 * port, which it writes to wfd (port_pipe[1]); exits on failure. */
static inline int bench_listen_loopback(int wfd)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int lfd = goro_net_listen("tcp4:127.0.0.1:0");
	uint16_t port;

	if (lfd < 0 || getsockname(lfd, (struct sockaddr *)&sin, &len))
		exit(1);
	port = ntohs(sin.sin_port);
	if (write(wfd, &port, sizeof(port)) != sizeof(port))
		exit(1);
	return lfd;
}

/* The network benchmarks' server: the goro child of bench_run_server,
 * or (0: --client under a Go twin, which runs the client as its child)
 * the parent. */
static pid_t bench_server_pid;

/* CPU time (user + system) the server has used so far, in ns, from
 * /proc/PID/stat; -1 if unknown.  The client reads it around its
 * measurement, so that each benchmark also reports what a request cost
 * the server, which on a shared host is steadier than the rate. */
static inline int64_t bench_server_cpu_ns(void)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	pid_t pid = bench_server_pid ? bench_server_pid : getppid();
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')');	/* the name may hold spaces */
	/* state ppid pgrp session tty tpgid flags minflt cminflt majflt
	 * cmajflt utime stime */
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
			 "%llu %llu", &ut, &st) != 2)
		return -1;
	return (int64_t)((ut + st) * (1000000000ULL /
				      (unsigned long long)sysconf(_SC_CLK_TCK)));
}

/*
 * The network benchmarks' driver: fork a goro server (server_main
 * writes its port, a uint16_t, to port_pipe[1]) with netpoll=poller
 * added to the caller's GORODEBUG (kmod=0, kmodnetpoll=0 stay), run
 * client against 127.0.0.1:port, then kill the server.
 */
static inline int bench_run_server(void (*server_main)(void *),
				   int port_pipe[2], const char *poller,
				   int (*client)(const char *hostport,
						 const char *label,
						 const char *sfx),
				   const char *sfx)
{
	char hostport[32], env[256];
	const char *dbg = getenv("GORODEBUG");
	uint16_t port;
	int status, err;
	pid_t pid;

	if (pipe(port_pipe))
		return 1;
	pid = fork();
	if (pid == 0) {
		snprintf(env, sizeof(env), "GORODEBUG=%s%snetpoll=%s",
			 dbg ? dbg : "", dbg && *dbg ? "," : "", poller);
		putenv(env);
		goro_main(server_main, NULL);
		_exit(1);
	}
	if (read(port_pipe[0], &port, sizeof(port)) != sizeof(port))
		return 1;
	snprintf(hostport, sizeof(hostport), "127.0.0.1:%u", port);
	bench_server_pid = pid;
	err = client(hostport, "goro", sfx);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	close(port_pipe[0]);
	close(port_pipe[1]);
	return err;
}

#endif
