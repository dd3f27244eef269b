// SPDX-License-Identifier: MIT
/*
 * echo: requests per second and latency of a TCP echo server, one
 * goroutine per connection, on io_uring and on epoll; its Go twin
 * (bench/go/echo.go) runs a net echo server under the same client.
 *
 *   build/bench/echo                    goro server (uring, then epoll)
 *   build/bench/echo --client HOST:PORT LABEL    the client alone
 *
 * The client is plain C, one thread, epoll: BENCH_ECHO_CONNS (64)
 * connections, each with one BENCH_ECHO_SIZE (64) byte request in
 * flight, for BENCH_ECHO_SECONDS (5) after a 0.5 s warm-up; every echoed
 * byte is checked.  Lines: "bench echo/rps: LABEL=V req/s", then p50
 * and p99 in microseconds (keys echo/p50, echo/p99) and the server's
 * CPU time per request over the whole run, warm-up included (echo/cpu,
 * us/req; the epoll run adds /epoll to each key).  The server runs in a child process (GORODEBUG
 * picks its poller, added to any GORODEBUG given: kmod=0 or
 * kmodnetpoll=0 compare goro.ko's paths in the VM), so client and
 * server never share a runtime.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "bench_util.h"

#define MAXCONNS	4096
#define HIST_US		100000		/* 1 us buckets up to 100 ms */

static uint32_t hist[HIST_US + 1];

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long env_long(const char *name, long def)
{
	const char *s = getenv(name);

	return s && *s ? strtol(s, NULL, 0) : def;
}

struct conn {
	int fd;
	size_t got;
	int64_t sent_at;
	unsigned char seq;
};

static int send_req(struct conn *c, size_t size)
{
	unsigned char buf[4096];

	c->seq++;
	memset(buf, c->seq, size);
	c->got = 0;
	c->sent_at = now_ns();
	return send(c->fd, buf, size, MSG_NOSIGNAL) == (ssize_t)size ? 0 : -1;
}

static double percentile(uint64_t total, double p)
{
	uint64_t want = (uint64_t)(total * p), seen = 0;

	for (int i = 0; i <= HIST_US; i++) {
		seen += hist[i];
		if (seen > want)
			return i;
	}
	return HIST_US;
}

/* Drive the server at host:port; print the results under label. */
static int client(const char *hostport, const char *label, const char *sfx)
{
	static struct conn conns[MAXCONNS];
	long nconns = env_long("BENCH_ECHO_CONNS", 64);
	size_t size = (size_t)env_long("BENCH_ECHO_SIZE", 64);
	double secs = env_long("BENCH_ECHO_SECONDS", 5);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct epoll_event evs[256];
	const char *colon = strrchr(hostport, ':');
	int64_t t_start, t_end, t_warm, cpu0, cpu1;
	uint64_t done = 0, measured = 0;
	int ep, one = 1;

	if (!colon || nconns < 1 || nconns > MAXCONNS || !size || size > 4096)
		return 2;
	sin.sin_port = htons((uint16_t)atoi(colon + 1));
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	ep = epoll_create1(0);
	for (long i = 0; i < nconns; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &conns[i] };

		conns[i].fd = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(conns[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(conns[i].fd, (struct sockaddr *)&sin, sizeof(sin))) {
			perror("echo client: connect");
			return 1;
		}
		epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
	}
	cpu0 = bench_server_cpu_ns();
	t_start = now_ns();
	t_warm = t_start + 500000000;
	t_end = t_warm + (int64_t)(secs * 1e9);
	for (long i = 0; i < nconns; i++)
		send_req(&conns[i], size);
	for (;;) {
		int n = epoll_wait(ep, evs, 256, 100);
		int64_t t = now_ns();

		if (t >= t_end)
			break;
		for (int k = 0; k < n; k++) {
			struct conn *c = evs[k].data.ptr;
			unsigned char buf[4096];
			ssize_t r = read(c->fd, buf, size - c->got);

			if (r <= 0) {
				fprintf(stderr, "echo client: server closed\n");
				return 1;
			}
			for (ssize_t j = 0; j < r; j++)
				if (buf[j] != c->seq) {
					fprintf(stderr, "echo client: bad byte\n");
					return 1;
				}
			c->got += (size_t)r;
			if (c->got < size)
				continue;
			done++;
			if (c->sent_at >= t_warm) {
				int64_t us = (t - c->sent_at) / 1000;

				hist[us > HIST_US ? HIST_US : us]++;
				measured++;
			}
			send_req(c, size);
		}
	}
	cpu1 = bench_server_cpu_ns();
	for (long i = 0; i < nconns; i++)
		close(conns[i].fd);
	/* --client (the Go twin) answers for both goro keys */
	for (int pass = 0; pass < (sfx ? 1 : 2); pass++) {
		const char *k = sfx ? sfx : pass ? "/epoll" : "";

		printf("bench echo/rps%s: %s=%.1f req/s\n", k, label,
		       measured / secs);
		printf("bench echo/p50%s: %s=%.1f us\n", k, label,
		       percentile(measured, 0.50));
		printf("bench echo/p99%s: %s=%.1f us\n", k, label,
		       percentile(measured, 0.99));
		if (cpu0 >= 0 && cpu1 >= 0 && done)
			printf("bench echo/cpu%s: %s=%.2f us/req\n", k, label,
			       (double)(cpu1 - cpu0) / 1000 / (double)done);
	}
	fflush(stdout);
	return 0;
}

/* ---- the goro server, in a child ---- */

static int port_pipe[2];

static void serve_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[4096];
	ssize_t n;

	while ((n = goro_read(fd, buf, sizeof(buf))) > 0)
		if (goro_write(fd, buf, (size_t)n) != n)
			break;
	goro_close(fd);
}

static void server_main(void *arg)
{
	int lfd = bench_listen_loopback(port_pipe[1]), fd;

	(void)arg;
	while ((fd = goro_accept(lfd, NULL, NULL)) >= 0 || fd == -EMFILE)
		if (fd >= 0)
			go(serve_conn, (void *)(intptr_t)fd);
}

static int run_goro(const char *poller, const char *sfx)
{
	return bench_run_server(server_main, port_pipe, poller, client, sfx);
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "--client"))
		return client(argv[2], argv[3], NULL);
	if (run_goro("uring", ""))
		return 1;
	memset(hist, 0, sizeof(hist));
	return run_goro("epoll", "/epoll");
}
