/*
 * dtx_journal.h — the daemons' log lines into systemd's journal with
 * structured fields, when their standard error is the journal's stream.
 * Linked by coordinatord and dtx-pgagent only (libsystemd), never by the
 * client library.
 */
#ifndef DTX_JOURNAL_H
#define DTX_JOURNAL_H

#include <stdbool.h>

/*
 * If JOURNAL_STREAM names this process's standard error (systemd sets it
 * for StandardError=journal), send every line with sd_journal_sendv():
 * MESSAGE, PRIORITY, SYSLOG_IDENTIFIER=ident, and where the line is about
 * one: DTX_GTID, DTX_GID (a branch's PostgreSQL GID, DTX_GTID then being
 * its transaction's), DTX_PARTICIPANT (else participant when not NULL).
 * They come from the caller's arguments (dtx_log_ctx, dtx_info_tx...),
 * never from the text; a line logged without (dtx_log, dtx_info...) has
 * none but the daemon's own participant.
 * Returns whether it did; otherwise lines stay on standard error with
 * their "<N>" priority prefix.
 */
bool dtx_journal_setup(const char *ident, const char *participant);

#endif
