/*
 * dtx-rawframe — test helper: send one raw frame (given in hex) to a dtx
 * endpoint and print the answer as "TYPE code text [id N]". Used to prove that a
 * malformed frame gets an ERROR and leaves the daemon serving. The frame
 * goes out as given, not through dtx_send (it is meant to be malformed);
 * the answer is read as any dtx client reads one. --req sends from a REQ
 * socket instead of a DEALER, to see that a REQ client is answered.
 * --count N (DEALER only) sends the frame N times and reads the answers,
 * printing the last one and "N answers" (a flood of refused frames).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "dtx_frame.h"
#include "dtx_wire.h"

int main(int argc, char **argv)
{
	bool req = argc == 4 && strcmp(argv[1], "--req") == 0;
	long count = 1;
	if (argc == 5 && strcmp(argv[1], "--count") == 0 && (count = atol(argv[2])) > 0) {
		argv += 2;
		argc -= 2;
	} else if (argc != 3 && !req) {
		fprintf(stderr, "usage: dtx-rawframe [--req | --count N] ENDPOINT HEX\n");
		return 2;
	}
	const char *endpoint = argv[argc - 2], *hex = argv[argc - 1];
	size_t n = strlen(hex) / 2;
	unsigned char *buf = malloc(n + 1);
	for (size_t i = 0; i < n; i++)
		sscanf(hex + 2 * i, "%2hhx", &buf[i]);
	void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, req ? ZMQ_REQ : ZMQ_DEALER);
	int zero = 0, rc = 1;
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_connect(s, endpoint);
	int hwm = 0; /* a flood is not dropped on our side */
	zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	for (long i = 0; i < count; i++)
		zmq_send(s, buf, n, 0);
	dtx_msg_t m;
	char why[256];
	int drc = dtx_recv_wait(s, &m, 5000, why, sizeof(why));
	for (long got = 1; drc == 0 && got < count; got++) {
		dtx_msg_t next;
		if (dtx_recv_wait(s, &next, 5000, why, sizeof(why)) != 0) {
			printf("%ld answers\n", got);
			break;
		}
		dtx_msg_clear(&m);
		m = next;
		if (got + 1 == count)
			printf("%ld answers\n", count);
	}
	if (drc == 0) {
		printf("%s %lld %s", dtx_msg_type_str(m.type), (long long)m.code,
		       (m.has & DTX_F_TEXT) ? m.text : "");
		if (m.has & DTX_F_ID)
			printf(" [id %llu]", (unsigned long long)m.id);
		putchar('\n');
		rc = 0;
		dtx_msg_clear(&m);
	} else if (drc == DTX_ETIMEOUT || drc == DTX_EIO) {
		printf("no answer\n");
	} else {
		printf("undecodable answer: %s\n", why);
	}
	zmq_close(s);
	zmq_ctx_term(ctx);
	free(buf);
	return rc;
}
