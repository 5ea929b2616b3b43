/*
 * fuzz_wal_rec.c — libFuzzer target: wal_rec_decode, which reads every
 * record of the coordinator log back (wal_open's check, the scans of
 * recovery and of dtxctl). A log on a damaged disk, or written by another
 * version, must come back as DTX_ECRC, never as a read out of bounds.
 *
 * The input is a record as LMDB holds it: 9 bytes of key, then the value
 * (wal.c's layout, CRC-32 last). Each input is decoded twice: as it is,
 * and with its CRC made right, since a mutated record almost never keeps
 * a valid checksum and the layout checks behind it would go unexplored.
 *
 * Checked beyond ASan and UBSan: 0 or DTX_ECRC / DTX_ENOMEM; on 0, the
 * fields within their bounds and every string terminated inside scratch.
 */
#include "config.h"

#include <zlib.h>

#include "fuzz.h"
#include "wal.h"

#define KEY_LEN 9

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	return 0;
}

static void s_decode(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	wal_rec_t rec;
	char *scratch = (char *)1;
	int rc = wal_rec_decode(key, klen, val, vlen, &rec, &scratch);
	FUZZ_CHECK(scratch != (char *)1);
	if (rc) {
		FUZZ_CHECK(rc == DTX_ECRC || rc == DTX_ENOMEM);
		free(scratch);
		return;
	}
	FUZZ_CHECK(scratch && rec.nparts <= WAL_MAX_PARTS);
	/* strlen of each runs inside scratch, or ASan says so */
	size_t total = 0;
	for (unsigned i = 0; i < rec.nparts; i++)
		total += strlen(rec.parts[i]);
	if (rec.note)
		total += strlen(rec.note);
	/* (a key or a part may hold a NUL, ending it early: the CRC stands
	 * between that and anything but a writer that stored one) */
	if (rec.key)
		FUZZ_CHECK(strlen(rec.key) <= 255);
	FUZZ_CHECK(total <= vlen);
	free(scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t klen = size < KEY_LEN ? size : KEY_LEN;
	size_t vlen = size - klen;

	/* the decoder reads exactly what it is given: copies, so ASan sees
	 * a read past either end */
	uint8_t *key = calloc(1, klen ? klen : 1), *val = calloc(1, vlen ? vlen : 1);
	FUZZ_CHECK(key && val);
	memcpy(key, data, klen);
	memcpy(val, data + klen, vlen);
	s_decode(key, klen, val, vlen);

	if (klen == KEY_LEN && vlen >= 4) {
		uLong c = crc32(0L, Z_NULL, 0);
		c = crc32(c, key, KEY_LEN);
		c = crc32(c, val, (uInt)(vlen - 4));
		for (int i = 0; i < 4; i++)
			val[vlen - 4 + i] = (uint8_t)(c >> (8 * i));
		s_decode(key, klen, val, vlen);
	}
	free(key);
	free(val);
	return 0;
}
