// SPDX-License-Identifier: GPL-2.0
/*
 * An ordinary TCP server with no knowledge of TOA: it listens on 0.0.0.0:8080 and prints
 * the peer address accept() returns for every connection. ci/demo runs it unmodified,
 * first without toa (it sees the proxy) and then after toa-install (it sees the real client).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int port = argc > 1 ? atoi(argv[1]) : 8080;
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1, ls = socket(AF_INET, SOCK_STREAM, 0);

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(ls, (struct sockaddr *)&addr, sizeof(addr)) || listen(ls, 16)) {
		perror("server: listen");
		return 1;
	}
	printf("server: listening on 0.0.0.0:%d\n", port);
	for (;;) {
		struct sockaddr_storage peer;
		socklen_t len = sizeof(peer);
		char ip[INET6_ADDRSTRLEN] = "?";
		int port_no = 0, c = accept(ls, (struct sockaddr *)&peer, &len);

		if (c < 0) {
			perror("server: accept");
			continue;
		}
		if (peer.ss_family == AF_INET) {
			struct sockaddr_in *p = (struct sockaddr_in *)&peer;

			inet_ntop(AF_INET, &p->sin_addr, ip, sizeof(ip));
			port_no = ntohs(p->sin_port);
		} else if (peer.ss_family == AF_INET6) {
			struct sockaddr_in6 *p = (struct sockaddr_in6 *)&peer;

			inet_ntop(AF_INET6, &p->sin6_addr, ip, sizeof(ip));
			port_no = ntohs(p->sin6_port);
		}
		printf("server: accepted connection from %s:%d\n", ip, port_no);
		/*
		 * Read what the client sends until it closes (5 s at most): closing
		 * with unread data would answer it with a reset.
		 */
		{
			struct timeval tv = { .tv_sec = 5 };
			char buf[512];

			setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
			while (read(c, buf, sizeof(buf)) > 0)
				;
		}
		close(c);
	}
}
