#!/usr/bin/env bash
# GTIDs never repeat: creating a log is an explicit act, a missing, zeroed
# or emptied log refuses the start with a clear message, and a log created
# afresh for the same coordinator id starts above every epoch the earlier
# one used (branches of those epochs are in doubt for it, never presumed).
. "$(dirname "$0")/lib.sh"
dtx_start_all
epoch_of() { echo "$1" | cut -d. -f2; }

out=$("$DTXCTL" exec --on shop --sql "INSERT INTO orders VALUES ('g1', 'alice', 'widget', 1, 10)" --expect 1); rc=$?
is "$rc" 0 "a transaction commits on the first log"
g1=${out%% *}
e1=$(epoch_of "$g1")

# A second log in the same folder is refused.
out=$(as_daemon "$COORDINATORD" -c "$T/coord.conf" --create-log 2>&1); rc=$?
is "$rc" 1 "--create-log where a log is refuses"
like "$out" 'a log is there already' "... saying so"

kill_wait "$COORD_PID"
size=$(stat -c %s "$T/log/data.mdb")
cp "$T/log/data.mdb" "$T/data.mdb.saved"
dd if=/dev/zero of="$T/log/data.mdb" bs="$size" count=1 conv=notrunc status=none
out=$(timeout 20 "${AS_DAEMON[@]}" "$COORDINATORD" -c "$T/coord.conf" 2>&1); rc=$?
is "$rc" 1 "a zeroed log refuses the start"
like "$out" 'cannot start: .*(holds no coordinator record|not an LMDB file|Invalid argument|truncated|damaged)' \
	"... with a clear message ($(printf '%s' "$out" | tail -1))"
: >"$T/log/data.mdb"
out=$(timeout 20 "${AS_DAEMON[@]}" "$COORDINATORD" -c "$T/coord.conf" 2>&1); rc=$?
is "$rc" 1 "an emptied log refuses the start"
rm -rf "$T/log"
out=$(timeout 20 "${AS_DAEMON[@]}" "$COORDINATORD" -c "$T/coord.conf" 2>&1); rc=$?
is "$rc" 1 "no log at all refuses the start: it is not created on the way"
like "$out" 'no log in .*--create-log' "... and says how to create one"

# The log is lost for good: a new one, and a branch of the old log's epoch
# still prepared in bank.
q bank "CREATE TABLE marks (n int)"
q bank "BEGIN; INSERT INTO marks VALUES (1); PREPARE TRANSACTION 'dtx:c1:$e1:999:0'" >/dev/null
out=$(as_daemon "$COORDINATORD" -c "$T/coord.conf" --create-log 2>&1); rc=$?
is "$rc" 0 "--create-log makes a new log"
e2=$(printf '%s' "$out" | sed -n 's/.*first epoch \([0-9]*\).*/\1/p')
ok "$([ -n "$e2" ] && [ "$e2" -gt "$e1" ]; echo $?)" "its first epoch ($e2) is above the lost log's ($e1)"
dtx_start_coord || exit 1
wait_all_up
out=$("$DTXCTL" exec --on shop --sql "INSERT INTO orders VALUES ('g2', 'alice', 'widget', 1, 10)" --expect 1); rc=$?
is "$rc" 0 "a transaction commits on the new log"
g2=${out%% *}
ok "$([ "$(epoch_of "$g2")" -gt "$e1" ]; echo $?)" "its GTID $g2 cannot be one the lost log handed out ($g1)"
listed() { ctl_rows in_doubt list --state in-doubt | grep -qF "\"gid\":\"dtx:c1:$e1:999:0\",\"participant\":\"bank\""; }
wait_for 10 listed; ok $? "the lost log's prepared branch is left in doubt, not presumed aborted (waited for it in list --state in-doubt)"
is "$(q bank "SELECT count(*) FROM pg_prepared_xacts WHERE gid = 'dtx:c1:$e1:999:0'")" 1 "... and stays prepared"
q bank "ROLLBACK PREPARED 'dtx:c1:$e1:999:0'" >/dev/null
# g1 committed in the lost log: asked about on the new one, it is in doubt
# (the new log cannot know), never presumed aborted.
out=$("$DTXCTL" query "$g1" 2>&1); rc=$?
is "$rc" 5 "a GTID of the lost log's epoch is in doubt on the new one (exit 5), not presumed aborted"
like "$out" "epoch $e1 is not one of this log's" "... and the answer says why"
done_testing
