// SPDX-License-Identifier: MIT
/*
 * httpd: an HTTP/1.1 server with keep-alive, one goroutine per
 * connection, answering `GET /` with a short body (and 404 elsewhere).
 *
 *   build/examples/httpd [ADDR]    ADDR defaults to tcp::8080
 *   wrk -t2 -c64 -d5s http://127.0.0.1:8080/
 *
 * Requests are read into a per-connection buffer and answered in order,
 * so pipelined requests work; responses of one read are written with a
 * single goro_write.  "Connection: close" and HTTP/1.0 without
 * keep-alive end the connection after the answer; a request body
 * (Content-Length) is skipped.  It is an example, not a web server: no
 * chunked bodies, no header longer than the buffer.
 */
#include <errno.h>
#include <goro.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BUF_SIZE	8192
#define OUT_SIZE	16384

static const char *addr = "tcp::8080";

static const char ok_resp[] =
	"HTTP/1.1 200 OK\r\n"
	"Content-Type: text/plain\r\n"
	"Content-Length: 13\r\n"
	"\r\n"
	"Hello, World!";
static const char notfound_resp[] =
	"HTTP/1.1 404 Not Found\r\n"
	"Content-Type: text/plain\r\n"
	"Content-Length: 10\r\n"
	"\r\n"
	"not found\n";
static const char bad_resp[] =
	"HTTP/1.1 400 Bad Request\r\n"
	"Content-Length: 0\r\n"
	"Connection: close\r\n"
	"\r\n";

/* The value of header name in [hdrs, end), or NULL; *len its length. */
static const char *header(const char *hdrs, const char *end,
			  const char *name, size_t *len)
{
	size_t nlen = strlen(name);

	for (const char *l = hdrs; l < end;) {
		const char *eol = memchr(l, '\n', (size_t)(end - l));

		if (!eol)
			break;
		if ((size_t)(eol - l) > nlen && l[nlen] == ':' &&
		    !strncasecmp(l, name, nlen)) {
			const char *v = l + nlen + 1;

			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			*len = (size_t)(eol - v);
			if (*len && v[*len - 1] == '\r')
				(*len)--;
			return v;
		}
		l = eol + 1;
	}
	return NULL;
}

/*
 * Answer the request at req (complete: ends at hend, after its blank
 * line) into out.  Returns the bytes of body to skip, or -1 to close
 * after writing out.
 */
static long answer(const char *req, const char *hend, char *out,
		   size_t *outlen, bool *close_after)
{
	const char *sp1 = memchr(req, ' ', (size_t)(hend - req));
	const char *sp2, *hdrs, *v;
	bool http10, ka = false, cl = false;
	const char *resp;
	size_t vlen, rlen;
	long body = 0;

	hdrs = memchr(req, '\n', (size_t)(hend - req));
	sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(hdrs - sp1 - 1)) : NULL;
	if (!sp1 || !sp2 || !hdrs) {
		resp = bad_resp;
		rlen = sizeof(bad_resp) - 1;
		*close_after = true;
		goto out;
	}
	hdrs++;
	http10 = !strncmp(sp2 + 1, "HTTP/1.0", 8);
	v = header(hdrs, hend, "Connection", &vlen);
	if (v) {
		ka = vlen == 10 && !strncasecmp(v, "keep-alive", 10);
		cl = vlen == 5 && !strncasecmp(v, "close", 5);
	}
	*close_after = cl || (http10 && !ka);
	v = header(hdrs, hend, "Content-Length", &vlen);
	if (v)
		body = strtol(v, NULL, 10);
	if (sp1 - req == 3 && !strncmp(req, "GET", 3) &&
	    sp2 - sp1 == 2 && sp1[1] == '/') {
		resp = ok_resp;
		rlen = sizeof(ok_resp) - 1;
	} else {
		resp = notfound_resp;
		rlen = sizeof(notfound_resp) - 1;
	}
out:
	if (*outlen + rlen <= OUT_SIZE) {
		memcpy(out + *outlen, resp, rlen);
		*outlen += rlen;
	}
	return body < 0 ? 0 : body;
}

static void serve_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[BUF_SIZE], out[OUT_SIZE];
	size_t have = 0;
	long skip = 0;
	bool done = false;

	while (!done) {
		size_t outlen = 0, used = 0;
		ssize_t n = goro_read(fd, buf + have, sizeof(buf) - have);

		if (n <= 0)
			break;
		have += (size_t)n;
		for (;;) {
			const char *end;

			if (skip) {
				size_t s = (size_t)skip < have - used ?
					   (size_t)skip : have - used;

				used += s;
				skip -= (long)s;
				if (skip)
					break;
			}
			end = memmem(buf + used, have - used, "\r\n\r\n", 4);
			if (!end)
				break;
			end += 4;
			skip = answer(buf + used, end, out, &outlen, &done);
			used = (size_t)(end - buf);
			if (done || outlen + sizeof(ok_resp) > OUT_SIZE)
				break;
		}
		if (outlen && goro_write(fd, out, outlen) != (ssize_t)outlen)
			break;
		memmove(buf, buf + used, have - used);
		have -= used;
		if (have == sizeof(buf)) {	/* a header too big for us */
			goro_write(fd, bad_resp, sizeof(bad_resp) - 1);
			break;
		}
	}
	goro_close(fd);
}

static void httpd_main(void *arg)
{
	int lfd, fd;

	(void)arg;
	lfd = goro_net_listen(addr);
	if (lfd < 0) {
		fprintf(stderr, "httpd: listen %s: %s\n", addr, strerror(-lfd));
		exit(1);
	}
	printf("httpd: listening on %s\n", addr);
	fflush(stdout);
	for (;;) {
		fd = goro_accept(lfd, NULL, NULL);
		if (fd == -EMFILE || fd == -ENFILE || fd == -ECONNABORTED)
			continue;	/* goro_accept already backed off */
		if (fd < 0)
			break;
		if (go(serve_conn, (void *)(intptr_t)fd))
			goro_close(fd);
	}
	fprintf(stderr, "httpd: accept: %s\n", strerror(-fd));
	exit(1);
}

int main(int argc, char **argv)
{
	int err;

	if (argc > 1)
		addr = argv[1];
	err = goro_main(httpd_main, NULL);
	if (err)
		fprintf(stderr, "httpd: goro_main: %s\n", strerror(-err));
	return 1;
}
