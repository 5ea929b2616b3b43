/*
 * fuzz_wire.c — libFuzzer target: dtx_msg_decode, the one decoder of what
 * a peer sends (clients, agents, dtxctl). The input is one frame.
 *
 * Checked beyond ASan and UBSan: the return is 0 or one of the codes the
 * header lists, with a terminated reason on error; a refused frame is
 * cleared but for the id it may echo; a frame that decodes encodes again
 * and that encoding decodes to the same type and fields (the decoder
 * accepts nothing the encoder could not send).
 */
#include "config.h"

#include "dtx_wire.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	dtx_msg_t msg = {0}, again = {0};
	char why[256], *buf = NULL;
	size_t len = 0;

	memset(why, 'x', sizeof(why));
	int rc = dtx_msg_decode(data, size, &msg, why, sizeof(why));
	if (rc) {
		FUZZ_CHECK(rc == DTX_EPROTO || rc == DTX_EVERSION || rc == DTX_ETOOBIG ||
			   rc == DTX_ENOMEM);
		FUZZ_CHECK(fuzz_terminated(why, sizeof(why)) && why[0]);
		FUZZ_CHECK((msg.has & ~(uint32_t)DTX_F_ID) == 0 && !msg.arena_);
		dtx_msg_clear(&msg);
		return 0;
	}
	FUZZ_CHECK(msg.type > DTX_T_NONE && msg.type < DTX_T__COUNT);
	if (dtx_msg_encode(&msg, &buf, &len) == 0) {
		rc = dtx_msg_decode(buf, len, &again, why, sizeof(why));
		FUZZ_CHECK(rc == 0);
		FUZZ_CHECK(again.type == msg.type && again.has == msg.has);
		FUZZ_CHECK(again.id == msg.id && again.code == msg.code &&
			   again.timeout_ms == msg.timeout_ms && again.nbranches == msg.nbranches &&
			   again.nstmts == msg.nstmts && again.ngids == msg.ngids);
		free(buf);
	} else {
		FUZZ_CHECK(!"a decoded frame does not encode");
	}
	dtx_msg_clear(&again);
	dtx_msg_clear(&msg);
	dtx_msg_clear(&msg); /* idempotent */
	return 0;
}
