// SPDX-License-Identifier: MIT
/*
 * accept: connections per second and connect-to-reply latency of a TCP
 * server that accepts, answers one request and closes, one goroutine per
 * connection, on io_uring and on epoll; its Go twin (bench/go/accept.go)
 * runs a net server under the same client.  Unlike bench/echo, whose 64
 * connections are established before timing starts, every request here
 * pays for a handshake, an accept and a close.
 *
 *   build/bench/accept                    goro server (uring, then epoll)
 *   build/bench/accept --client HOST:PORT LABEL    the client alone
 *
 * The client is plain C: BENCH_ACCEPT_THREADS (4) threads, each looping
 * socket, connect, write 16 bytes, read the 16-byte reply, close, for
 * BENCH_ACCEPT_SECONDS (3) after a 0.3 s warm-up; the reply is checked.
 * Lines: "bench accept/cps: LABEL=V conn/s", then p50 and p99 of the
 * time from socket() to the last reply byte, in microseconds (keys
 * accept/p50, accept/p99), and the server's CPU time per connection
 * over the measured window (accept/cpu, us/conn; the epoll run adds
 * /epoll to each key).
 *
 * TIME_WAIT.  Tens of thousands of connections a second over loopback
 * would use up the ephemeral ports within a run if either side kept its
 * socket in TIME_WAIT for 60 s.  The client closes with SO_LINGER 0,
 * which sends RST: its own socket skips TIME_WAIT, and the server's,
 * which closed first and sits in FIN_WAIT, is torn down by the RST
 * rather than entering TIME_WAIT.  The reply is read in full before the
 * RST, so the server never sees an error it would count.  This needs no
 * root and no sysctl (net.ipv4.tcp_tw_reuse would, per namespace).
 *
 * The server runs in a child process (GORODEBUG picks its poller, added
 * to any GORODEBUG given), so client and server never share a runtime.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "bench_util.h"

#define MSG		16
#define MAXTHREADS	16
#define HIST_US		100000		/* 1 us buckets up to 100 ms */

struct worker {
	pthread_t tid;
	uint64_t measured;
	uint32_t hist[HIST_US + 1];
};

static struct worker workers[MAXTHREADS];
static struct sockaddr_in server_sin;
static int64_t t_warm, t_end;
static atomic_int client_failed;

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

/* One connection: 0 on a checked reply, -1 on any failure. */
static int one_conn(uint32_t seq)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	unsigned char req[MSG], rep[MSG];
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1, err = -1;
	size_t got = 0;

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&server_sin, sizeof(server_sin)))
		goto out;
	memset(req, 0, sizeof(req));
	memcpy(req, &seq, sizeof(seq));
	if (send(fd, req, MSG, MSG_NOSIGNAL) != MSG)
		goto out;
	while (got < MSG) {
		ssize_t r = read(fd, rep + got, MSG - got);

		if (r <= 0)
			goto out;
		got += (size_t)r;
	}
	/* the server replies with the request, its first byte inverted */
	req[0] = (unsigned char)~req[0];
	err = memcmp(req, rep, MSG) ? -1 : 0;
out:
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
	return err;
}

static void *client_thread(void *arg)
{
	struct worker *w = arg;
	uint32_t seq = (uint32_t)(w - workers) << 24;

	for (;;) {
		int64_t t0 = now_ns(), t1, us;

		if (t0 >= t_end)
			break;
		if (one_conn(seq++)) {
			perror("accept client: connection");
			atomic_store(&client_failed, 1);
			break;
		}
		t1 = now_ns();
		if (t0 < t_warm || t1 > t_end)
			continue;
		us = (t1 - t0) / 1000;
		w->hist[us > HIST_US ? HIST_US : us]++;
		w->measured++;
	}
	return NULL;
}

static double percentile(uint64_t total, long nthreads, double p)
{
	uint64_t want = (uint64_t)(total * p), seen = 0;

	for (int i = 0; i <= HIST_US; i++) {
		for (long t = 0; t < nthreads; t++)
			seen += workers[t].hist[i];
		if (seen > want)
			return i;
	}
	return HIST_US;
}

/* Drive the server at host:port; print the results under label. */
static int client(const char *hostport, const char *label, const char *sfx)
{
	long nthreads = env_long("BENCH_ACCEPT_THREADS", 4);
	double secs = env_long("BENCH_ACCEPT_SECONDS", 3);
	const char *colon = strrchr(hostport, ':');
	uint64_t measured = 0;
	int64_t cpu0, cpu1;

	if (!colon || nthreads < 1 || nthreads > MAXTHREADS || secs <= 0)
		return 2;
	memset(workers, 0, sizeof(workers));
	server_sin.sin_family = AF_INET;
	server_sin.sin_port = htons((uint16_t)atoi(colon + 1));
	inet_pton(AF_INET, "127.0.0.1", &server_sin.sin_addr);
	t_warm = now_ns() + 300000000;
	t_end = t_warm + (int64_t)(secs * 1e9);
	for (long t = 0; t < nthreads; t++)
		if (pthread_create(&workers[t].tid, NULL, client_thread,
				   &workers[t]))
			return 1;
	/* the server's CPU over the window the connections are counted in */
	while (now_ns() < t_warm)
		usleep(1000);
	cpu0 = bench_server_cpu_ns();
	while (now_ns() < t_end)
		usleep(1000);
	cpu1 = bench_server_cpu_ns();
	for (long t = 0; t < nthreads; t++) {
		pthread_join(workers[t].tid, NULL);
		measured += workers[t].measured;
	}
	if (atomic_load(&client_failed))
		return 1;
	/* --client (the Go twin) answers for both goro keys */
	for (int pass = 0; pass < (sfx ? 1 : 2); pass++) {
		const char *k = sfx ? sfx : pass ? "/epoll" : "";

		printf("bench accept/cps%s: %s=%.1f conn/s\n", k, label,
		       measured / secs);
		printf("bench accept/p50%s: %s=%.1f us\n", k, label,
		       percentile(measured, nthreads, 0.50));
		printf("bench accept/p99%s: %s=%.1f us\n", k, label,
		       percentile(measured, nthreads, 0.99));
		if (cpu0 >= 0 && cpu1 >= 0 && measured)
			printf("bench accept/cpu%s: %s=%.2f us/conn\n", k,
			       label, (double)(cpu1 - cpu0) / 1000 /
			       (double)measured);
	}
	fflush(stdout);
	return 0;
}

/* ---- the goro server, in a child ---- */

static int port_pipe[2];

static void serve_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	unsigned char buf[MSG];
	size_t got = 0;

	while (got < MSG) {
		ssize_t n = goro_read(fd, buf + got, MSG - got);

		if (n <= 0)
			goto out;
		got += (size_t)n;
	}
	buf[0] = (unsigned char)~buf[0];
	goro_write(fd, buf, MSG);
out:
	goro_close(fd);
}

static void server_main(void *arg)
{
	int lfd = bench_listen_loopback(port_pipe[1]), fd;

	(void)arg;
	while ((fd = goro_accept(lfd, NULL, NULL)) >= 0 || fd == -EMFILE ||
	       fd == -ENFILE)
		if (fd >= 0)
			go(serve_conn, (void *)(intptr_t)fd);
	fprintf(stderr, "accept server: goro_accept: %s\n", strerror(-fd));
	exit(1);
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
	return run_goro("epoll", "/epoll");
}
