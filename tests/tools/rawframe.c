/*
 * dtx-rawframe — test helper: send one raw frame (given in hex) to a dtx
 * endpoint and print the answer as "TYPE code text [id N]". Used to prove that a
 * malformed frame gets an ERROR and leaves the daemon serving.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "dtx_wire.h"

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: dtx-rawframe ENDPOINT HEX\n");
		return 2;
	}
	size_t n = strlen(argv[2]) / 2;
	unsigned char *buf = malloc(n + 1);
	for (size_t i = 0; i < n; i++)
		sscanf(argv[2] + 2 * i, "%2hhx", &buf[i]);
	void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
	int zero = 0, rc = 1;
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_connect(s, argv[1]);
	zmq_send(s, buf, n, 0);
	zmq_pollitem_t it = {.socket = s, .events = ZMQ_POLLIN};
	if (zmq_poll(&it, 1, 5000) == 1) {
		zmq_msg_t f;
		dtx_msg_t m;
		char why[256];
		zmq_msg_init(&f);
		zmq_msg_recv(&f, s, 0);
		if (dtx_msg_decode(zmq_msg_data(&f), zmq_msg_size(&f), &m, why, sizeof(why)) == 0) {
			printf("%s %lld %s", dtx_msg_type_str(m.type), (long long)m.code,
			       (m.has & DTX_F_TEXT) ? m.text : "");
			if (m.has & DTX_F_ID)
				printf(" [id %llu]", (unsigned long long)m.id);
			putchar('\n');
			rc = 0;
			dtx_msg_clear(&m);
		} else {
			printf("undecodable answer: %s\n", why);
		}
		zmq_msg_close(&f);
	} else {
		printf("no answer\n");
	}
	zmq_close(s);
	zmq_ctx_term(ctx);
	free(buf);
	return rc;
}
