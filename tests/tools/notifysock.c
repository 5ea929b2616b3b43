/*
 * dtx-notifysock — a stand-in for systemd's notification socket, for tests:
 * binds a Unix datagram socket at PATH and writes each message it receives
 * to standard output as one line, "<ms since start> <fields, space-separated>",
 * until killed. Run a daemon with NOTIFY_SOCKET=PATH to see what it tells
 * systemd (READY=1, WATCHDOG=1, STOPPING=1, STATUS=...).
 *
 *   dtx-notifysock PATH
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dtx_util.h"

int main(int argc, char **argv)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (argc != 2 || strlen(argv[1]) >= sizeof(a.sun_path)) {
		fprintf(stderr, "usage: dtx-notifysock PATH\n");
		return 2;
	}
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", argv[1]);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	unlink(a.sun_path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		perror("dtx-notifysock");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	int64_t t0 = dtx_now_ms();
	char buf[4096];
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n < 0)
			continue;
		buf[n] = '\0';
		for (char *p = buf; *p; p++)
			if (*p == '\n')
				*p = ' ';
		printf("%lld %s\n", (long long)(dtx_now_ms() - t0), buf);
	}
}
