// SPDX-License-Identifier: MIT
/*
 * echo: a TCP echo server, one goroutine per connection.
 *
 *   build/examples/echo [ADDR]     ADDR defaults to tcp::7007
 *
 * Each connection's goroutine reads and writes back until the peer
 * closes; it blocks in goro_read/goro_write while its thread runs the
 * other connections.  Try: `nc localhost 7007`.  ADDR takes any
 * goro_net_listen address ("tcp:[::1]:7007", "unix:/tmp/echo.sock").
 * With GORO_ECHO_ONCE=1 in the environment the server instead answers
 * one client of its own and exits 0 if the echo came back intact (what
 * the tests and the demo use).
 */
#include <errno.h>
#include <goro.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *addr = "tcp::7007";
static int status;

static void serve_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[16384];
	ssize_t n;

	while ((n = goro_read(fd, buf, sizeof(buf))) > 0)
		if (goro_write(fd, buf, (size_t)n) != n)
			break;
	goro_close(fd);
}

static void accept_loop(void *arg)
{
	int lfd = (int)(intptr_t)arg, fd;

	for (;;) {
		fd = goro_accept(lfd, NULL, NULL);
		if (fd == -EMFILE || fd == -ENFILE || fd == -ECONNABORTED)
			continue;	/* goro_accept already backed off */
		if (fd < 0)
			break;
		if (go(serve_conn, (void *)(intptr_t)fd))
			goro_close(fd);
	}
}

/* GORO_ECHO_ONCE: one round trip through our own server. */
static void self_test(int lfd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char dial[64], back[12];
	ssize_t got = 0, n;
	int fd;

	getsockname(lfd, (struct sockaddr *)&ss, &len);
	snprintf(dial, sizeof(dial), "tcp:127.0.0.1:%d",
		 ntohs(((struct sockaddr_in *)&ss)->sin_port));
	fd = goro_net_dial(dial);
	if (fd < 0 || goro_write(fd, "hello, echo", 11) != 11)
		goto fail;
	while (got < 11 && (n = goro_read(fd, back + got, 11 - got)) > 0)
		got += n;
	if (got != 11 || memcmp(back, "hello, echo", 11))
		goto fail;
	printf("echo: round trip ok\n");
	goro_close(fd);
	return;
fail:
	fprintf(stderr, "echo: round trip failed\n");
	status = 1;
}

static void echo_main(void *arg)
{
	bool once = getenv("GORO_ECHO_ONCE") != NULL;
	int lfd;

	(void)arg;
	lfd = goro_net_listen(once ? "tcp4:127.0.0.1:0" : addr);
	if (lfd < 0) {
		fprintf(stderr, "echo: listen %s: %s\n", addr, strerror(-lfd));
		status = 1;
		return;
	}
	if (once) {
		go(accept_loop, (void *)(intptr_t)lfd);
		self_test(lfd);
		goro_close(lfd);
		return;
	}
	printf("echo: listening on %s\n", addr);
	fflush(stdout);
	accept_loop((void *)(intptr_t)lfd);
	status = 1;
}

int main(int argc, char **argv)
{
	int err;

	if (argc > 1)
		addr = argv[1];
	err = goro_main(echo_main, NULL);
	if (err) {
		fprintf(stderr, "echo: goro_main: %s\n", strerror(-err));
		return 1;
	}
	return status;
}
