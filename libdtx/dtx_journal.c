/*
 * dtx_journal.c — the daemons' log sink for systemd's journal: each line
 * with its priority and the structured fields of what it is about, taken
 * from the caller's context (dtx_log_ctx). See dtx_journal.h.
 */
#include "config.h"

#define SD_JOURNAL_SUPPRESS_LOCATION
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include "dtx_journal.h"
#include "dtx_util.h"
#include "dtx_wire.h"

static char s_ident[64], s_participant[64];

/* id, a GTID or a branch's GID, into the fields: gtid always, gid for a
 * GID. Neither when id is neither (the fields name only what they are). */
static void s_ids(const char *id, char *gtid, size_t gtid_len, char *gid, size_t gid_len)
{
	dtx_gtid_t g;
	uint32_t branch;

	if (dtx_gtid_parse(id, &g) == 0) {
		dtx_gtid_format(&g, gtid, gtid_len);
	} else if (dtx_gid_parse(id, &g, &branch) == 0) {
		snprintf(gid, gid_len, "%s", id);
		dtx_gtid_format(&g, gtid, gtid_len);
	}
}

static void s_sink(int level, const char *line, const dtx_log_ctx_t *ctx, void *arg)
{
	char gtid[160] = "", gid[160] = "", part[64] = "", buf[7][2100];
	struct iovec iov[7];
	int n = 0;
	(void)arg;

	/* What the line is about comes from its caller (dtx_log_ctx), never
	 * from its text. */
	if (ctx && ctx->gtid)
		s_ids(ctx->gtid, gtid, sizeof(gtid), gid, sizeof(gid));
	if (ctx && ctx->participant && dtx_name_valid(ctx->participant))
		snprintf(part, sizeof(part), "%s", ctx->participant);
	if (!part[0] && s_participant[0])
		snprintf(part, sizeof(part), "%s", s_participant);

#define FIELD(...)                                                                                 \
	do {                                                                                       \
		snprintf(buf[n], sizeof(buf[n]), __VA_ARGS__);                                     \
		iov[n].iov_base = buf[n];                                                          \
		iov[n].iov_len = strlen(buf[n]);                                                   \
		n++;                                                                               \
	} while (0)
	FIELD("MESSAGE=%s", line);
	FIELD("PRIORITY=%d", level);
	FIELD("SYSLOG_IDENTIFIER=%s", s_ident);
	if (gtid[0])
		FIELD("DTX_GTID=%s", gtid);
	if (gid[0])
		FIELD("DTX_GID=%s", gid);
	if (part[0])
		FIELD("DTX_PARTICIPANT=%s", part);
#undef FIELD
	if (sd_journal_sendv(iov, n) < 0)
		fprintf(stderr, "<%d>%s\n", level, line); /* the journal is away */
}

bool dtx_journal_setup(const char *ident, const char *participant)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(2, &st) != 0 ||
	    (unsigned long long)st.st_dev != dev || (unsigned long long)st.st_ino != ino)
		return false;
	snprintf(s_ident, sizeof(s_ident), "%s", ident);
	snprintf(s_participant, sizeof(s_participant), "%s", participant ? participant : "");
	dtx_log_set(dtx_log_level(), s_sink, NULL);
	return true;
}
