#!/usr/bin/env bash
# distdir-sync.sh DEST — the sources as make dist ships them, kept in DEST
# for a build out of the tree (make fuzz's _build-fuzz, check-sanitize.sh's
# _build-san): such a build needs sources not configured in place. Run from
# a configured tree.
#
# make distdir copies files with their times, and the build beside DEST
# is incremental; a file whose content changed but whose time did not
# move past its last copy's (a file put back from elsewhere with its old
# time) would leave objects built from the old content. So DEST is
# updated file by file: a changed file is copied with its time, and
# touched if that time is not later than the copy it replaces; an
# unchanged one is left alone; one the dist no longer has is removed.
set -euo pipefail
dest=$1
new=$dest.new
rm -rf "$new"
make -s distdir distdir="$new" >/dev/null
mkdir -p "$dest"
(cd "$new" && find . -type f) | while IFS= read -r f; do
	if [ ! -e "$dest/$f" ]; then
		mkdir -p "$(dirname "$dest/$f")"
		cp -p "$new/$f" "$dest/$f"
	elif ! cmp -s "$new/$f" "$dest/$f"; then
		old=$(stat -c %Y "$dest/$f")
		cp -p "$new/$f" "$dest/$f"
		[ "$(stat -c %Y "$dest/$f")" -gt "$old" ] || touch "$dest/$f"
	fi
done
(cd "$dest" && find . -type f) | while IFS= read -r f; do
	[ -e "$new/$f" ] || rm -f "$dest/$f"
done
rm -rf "$new"
