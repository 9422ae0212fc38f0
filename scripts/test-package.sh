#!/usr/bin/env bash
# Tests the Debian package as installed (run by .ci/run; needs root):
#
#   1. builds it (scripts/package-deb.sh; or takes the .deb given as $1),
#      lints it (lintian: no errors; the accepted warnings are listed in
#      docs/packaging.md) and installs it with dpkg -i;
#   2. every file where it belongs; check_pg_tls --help as 'nobody';
#      man -l renders both pages without warnings;
#   3. the exporter's unit: systemd-analyze verify, and the exposure score
#      of systemd-analyze security (at most 2.0);
#   4. two TLS clusters per the article (scripts/lib/cluster.sh), the
#      second letting plaintext reach password authentication, probed by
#      a real Nagios 4 running as 'nagios' through the shipped command
#      definitions and templates: one host (db.internal, address
#      127.0.0.1: host= and hostaddr= apart), three services, forced checks
#      through the external command file, states read from status.dat:
#      OK, OK (the hourly scan's command) and CRITICAL;
#   5. icinga2 daemon -C on a configuration using the installed
#      CheckCommand and the shipped services example, whose command must
#      resolve to the installed plugin;
#   6. dpkg -r: nothing left but the conffiles; dpkg --purge: nothing.
#
# Env: PG_BINDIR (server binaries), PACKAGE_NO_BUILD=1 (package the
# release binary already built).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
die() {
	echo "test-package: FAILED: $*" >&2
	exit 1
}
[ "$(id -u)" = 0 ] || die "needs root (dpkg -i, runs Nagios as nagios)"
id nagios >/dev/null 2>&1 || die "no nagios user (apt-get install nagios4-core)"

# shellcheck source=scripts/lib/cluster.sh
. "$repo/scripts/lib/cluster.sh"

if [ $# -ge 1 ]; then
	deb=$(realpath "$1")
else
	step "building the package (scripts/package-deb.sh)"
	deb=$(scripts/package-deb.sh)
fi
echo "$deb"

nagios_pid=
scratch=$(mktemp -d /tmp/pgtls-package.XXXXXX)
chmod 755 "$scratch"
finish() {
	if [ -n "$nagios_pid" ]; then
		kill "$nagios_pid" 2>/dev/null || true
		wait "$nagios_pid" 2>/dev/null || true
	fi
	# Never leave the package behind: another test's Icinga 2 would find
	# a second CheckCommand "pg-tls-probe" in plugins-contrib.d.
	if dpkg-query -W -f '${Status}' pg-tls-probe 2>/dev/null | grep -q 'ok installed\|config-files'; then
		dpkg --purge pg-tls-probe >/dev/null || true
	fi
	rm -rf "$scratch"
	cluster_cleanup
}
trap finish EXIT

step "lintian"
lintian_out=$scratch/lintian.txt
# --fail-on error: a warning is listed below and in docs/packaging.md.
if ! lintian --fail-on error --display-info "$deb" >"$lintian_out" 2>&1; then
	cat "$lintian_out"
	die "lintian reports errors"
fi
cat "$lintian_out"

if dpkg-query -W pg-tls-probe >/dev/null 2>&1; then
	die "pg-tls-probe is already installed; remove it first (dpkg --purge pg-tls-probe)"
fi
step "dpkg -i"
dpkg -i "$deb"

step "installed files"
for f in \
	/usr/bin/pg-tls-probe \
	/usr/lib/nagios/plugins/check_pg_tls \
	/usr/share/man/man1/pg-tls-probe.1.gz \
	/usr/share/man/man1/pg-tls-probe-serve.1.gz \
	/usr/share/bash-completion/completions/pg-tls-probe \
	/usr/share/zsh/vendor-completions/_pg-tls-probe \
	/usr/share/fish/vendor_completions.d/pg-tls-probe.fish \
	/usr/share/icinga2/include/plugins-contrib.d/pg-tls-probe.conf \
	/usr/share/doc/pg-tls-probe/examples/nagios/pg-tls-probe.cfg \
	/usr/share/doc/pg-tls-probe/examples/icinga2/two-services.conf \
	/usr/share/doc/pg-tls-probe/copyright \
	/usr/lib/systemd/system/pg-tls-probe.service \
	/etc/pg-tls-probe/pg_service.conf \
	/etc/pg-tls-probe/pgpass; do
	[ -e "$f" ] || die "$f not installed"
	echo "  $f"
done
[ "$(readlink /usr/lib/nagios/plugins/check_pg_tls)" = ../../../bin/pg-tls-probe ] ||
	die "check_pg_tls is not a relative link to /usr/bin/pg-tls-probe"
[ "$(stat -c %a /etc/pg-tls-probe/pgpass)" = 600 ] || die "/etc/pg-tls-probe/pgpass is not 0600"
# Whatever examples/prometheus/ held at build time is shipped.
for f in examples/prometheus/* examples/ci/*; do
	[ -e "$f" ] || continue
	[ -e "/usr/share/doc/pg-tls-probe/$f" ] || die "$f not shipped"
done

step "check_pg_tls --help as nobody"
help=$(runuser -u nobody -- /usr/lib/nagios/plugins/check_pg_tls --help)
for word in --scan --audit --format PGSSLROOTCERT "Exit codes"; do
	grep -q -- "$word" <<<"$help" || die "--help does not mention $word"
done
echo "  ok: $(head -n 1 <<<"$help")"
version=$(runuser -u nobody -- /usr/bin/pg-tls-probe --version)
echo "  $version"

step "man -l"
for page in pg-tls-probe pg-tls-probe-serve; do
	file=/usr/share/man/man1/$page.1.gz
	warnings=$(MANWIDTH=80 man --warnings -l "$file" 2>&1 >/dev/null)
	[ -z "$warnings" ] || die "man $page: $warnings"
	rendered=$(MANWIDTH=80 man -l "$file" 2>/dev/null)
	grep -q -- '--timeout' <<<"$rendered" || die "man $page: no --timeout"
	echo "  $page: $(wc -l <<<"$rendered") lines"
done
MANWIDTH=80 man -l /usr/share/man/man1/pg-tls-probe.1.gz 2>/dev/null | grep -q PGSSLROOTCERT ||
	die "man pg-tls-probe does not mention PGSSLROOTCERT"

step "systemd unit"
unit=/usr/lib/systemd/system/pg-tls-probe.service
verify=$(systemd-analyze verify "$unit" 2>&1 | grep pg-tls-probe || true)
[ -z "$verify" ] || die "systemd-analyze verify: $verify"
score=$(systemd-analyze security --offline=true --no-pager "$unit" 2>/dev/null |
	sed -n 's/.*Overall exposure level for pg-tls-probe.service: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || die "no systemd-analyze security score"
awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || die "exposure $score > 2.0"
echo "  systemd-analyze verify: clean; security exposure: $score"

step "two clusters: the article's, and one letting plaintext reach scram"
cluster_start pgtls-package-good
good_port=$port good_password=$password good_ca=$work/ssl/ca.crt
cluster_start pgtls-package-open
cluster_allow_plaintext
open_port=$port open_password=$password open_ca=$work/ssl/ca.crt

step "Nagios 4 as nagios, with the shipped command definitions"
nag=$scratch/nagios
mkdir -p "$nag/checkresults"
printf '*:%s:*:probe:%s\n*:%s:*:probe:%s\n' \
	"$good_port" "$good_password" "$open_port" "$open_password" >"$nag/pgpass"
chmod 600 "$nag/pgpass"
keywords() { # port CA
	echo "port=$1 dbname=postgres user=probe sslrootcert=$2 passfile=$nag/pgpass"
}
cat >"$nag/objects.cfg" <<EOF
define timeperiod {
    timeperiod_name 24x7
    alias           always
    sunday 00:00-24:00
    monday 00:00-24:00
    tuesday 00:00-24:00
    wednesday 00:00-24:00
    thursday 00:00-24:00
    friday 00:00-24:00
    saturday 00:00-24:00
}
define contact {
    contact_name                  nobody
    host_notifications_enabled    0
    service_notifications_enabled 0
    host_notification_period      24x7
    service_notification_period   24x7
    host_notification_options     n
    service_notification_options  n
    host_notification_commands    notify-none
    service_notification_commands notify-none
}
define command {
    command_name notify-none
    command_line /bin/true
}
define host {
    host_name          db.internal
    alias              a server known by its DNS name, dialled at its address
    address            127.0.0.1
    max_check_attempts 1
    check_period       24x7
    contacts           nobody
}
define service {
    use                 pg-tls
    host_name           db.internal
    service_description good
    check_command       check_pg_tls!$(keywords "$good_port" "$good_ca")
    check_period        24x7
    contacts            nobody
}
define service {
    use                 pg-tls-scan
    host_name           db.internal
    service_description good protocols
    check_command       check_pg_tls_scan!$(keywords "$good_port" "$good_ca")
    check_period        24x7
    contacts            nobody
}
define service {
    use                 pg-tls
    host_name           db.internal
    service_description plaintext
    check_command       check_pg_tls!$(keywords "$open_port" "$open_ca")
    check_period        24x7
    contacts            nobody
}
EOF
cat >"$nag/nagios.cfg" <<EOF
cfg_file=/usr/share/doc/pg-tls-probe/examples/nagios/pg-tls-probe.cfg
cfg_file=$nag/objects.cfg
log_file=$nag/nagios.log
object_cache_file=$nag/objects.cache
precached_object_file=$nag/objects.precache
status_file=$nag/status.dat
status_update_interval=1
nagios_user=nagios
nagios_group=nagios
check_external_commands=1
command_file=$nag/nagios.cmd
query_socket=$nag/nagios.qh
lock_file=$nag/nagios.lock
temp_file=$nag/nagios.tmp
temp_path=$nag
check_result_path=$nag/checkresults
check_result_reaper_frequency=1
retain_state_information=0
state_retention_file=$nag/retention.dat
use_syslog=0
enable_notifications=0
execute_host_checks=0
interval_length=60
service_inter_check_delay_method=n
max_service_check_spread=1
illegal_macro_output_chars=\`~\$&|'"<>
EOF
chown -R nagios:nagios "$nag"
/usr/sbin/nagios4 -v "$nag/nagios.cfg" >"$scratch/nagios-verify.txt" 2>&1 || {
	cat "$scratch/nagios-verify.txt"
	die "nagios4 -v rejects the configuration"
}
grep -E 'Total (Warnings|Errors)' "$scratch/nagios-verify.txt" | sed 's/^/  /'
# Started as root with nagios_user=nagios: Nagios drops to 'nagios' itself,
# so every check runs as nagios.
/usr/sbin/nagios4 "$nag/nagios.cfg" >"$scratch/nagios.out" 2>&1 &
nagios_pid=$!

deadline=$((SECONDS + 60))
wait_for() { # description, command...
	local what=$1
	shift
	until "$@"; do
		[ $SECONDS -lt $deadline ] || {
			tail -n 30 "$nag/nagios.log" "$scratch/nagios.out" >&2 || true
			die "Nagios: timed out waiting for $what"
		}
		kill -0 "$nagios_pid" 2>/dev/null || die "Nagios exited: $(tail -n 20 "$scratch/nagios.out")"
		sleep 0.2
	done
}
wait_for "its command file" test -p "$nag/nagios.cmd"
now=$(date +%s)
for svc in good "good protocols" plaintext; do
	printf '[%d] SCHEDULE_FORCED_SVC_CHECK;db.internal;%s;%d\n' "$now" "$svc" "$now" >"$nag/nagios.cmd"
done

# status.dat: "servicestatus {" blocks of key=value lines.
field() { # service, key
	awk -v svc="$1" -v key="$2" '
		/^servicestatus \{/ { inside = 1; desc = ""; value = ""; next }
		inside && /^\t}/ { if (desc == svc) { print value; exit } inside = 0; next }
		inside {
			line = $0; sub(/^\t/, "", line)
			k = substr(line, 1, index(line, "=") - 1); v = substr(line, index(line, "=") + 1)
			if (k == "service_description") desc = v
			if (k == key) value = v
		}' "$nag/status.dat" 2>/dev/null
}
checked() { [ "$(field "$1" last_check)" != "" ] && [ "$(field "$1" last_check)" -ge "$now" ]; }
for svc in good "good protocols" plaintext; do
	wait_for "a check result of '$svc' in status.dat" checked "$svc"
done
expect_state() { # service, state, output prefix
	local state output
	state=$(field "$1" current_state)
	output=$(field "$1" plugin_output)
	echo "  $1: state $state: $output"
	[ "$state" = "$2" ] || die "'$1': state $state, expected $2 ($output)"
	[[ $output == "$3"* ]] || die "'$1': output does not start with '$3'"
}
expect_state good 0 "PGTLS OK: db.internal:$good_port TLSv1."
expect_state "good protocols" 0 "PGTLS OK: db.internal:$good_port TLSv1."
expect_state plaintext 2 "PGTLS CRITICAL: "
field plaintext plugin_output | grep -q plaintext || die "the CRITICAL output does not name plaintext"
grep -q 'accepted: TLSv1.2, TLSv1.3' <<<"$(field "good protocols" long_plugin_output)" ||
	die "the scan service did not scan: $(field "good protocols" long_plugin_output)"
kill "$nagios_pid"
wait "$nagios_pid" 2>/dev/null || true
nagios_pid=

step "icinga2 daemon -C with the installed CheckCommand"
ic=$scratch/icinga2
mkdir -p "$ic"/{data,log,cache,spool,run}
cat >"$ic/icinga2.conf" <<EOF
const PluginDir = "/usr/lib/nagios/plugins"
const ManubulonPluginDir = "/usr/lib/nagios/plugins"
const PluginContribDir = "/usr/lib/nagios/plugins"
include <itl>
include <plugins>
include <plugins-contrib>
template Host "generic-host" {
  check_command = "dummy"
}
template Service "generic-service" {
  max_check_attempts = 3
}
include "/usr/share/doc/pg-tls-probe/examples/icinga2/two-services.conf"
object Host "db.internal" {
  import "generic-host"
  address = "127.0.0.1"
  vars.pg_tls_probe = true
  vars.postgres_port = $good_port
  vars.postgres_dbuser = "probe"
  vars.postgres_dbname = "postgres"
  vars.postgres_sslrootcert = "$good_ca"
}
EOF
icinga() {
	/usr/sbin/icinga2 "$@" -c "$ic/icinga2.conf" -DRunAsUser=root -DRunAsGroup=root \
		-DDataDir="$ic/data" -DLogDir="$ic/log" -DCacheDir="$ic/cache" \
		-DSpoolDir="$ic/spool" -DInitRunDir="$ic/run"
}
icinga daemon -C >"$scratch/icinga2.txt" 2>&1 || {
	cat "$scratch/icinga2.txt"
	die "icinga2 daemon -C rejects the configuration"
}
grep -q 'Instantiated 2 Services' "$scratch/icinga2.txt" || {
	cat "$scratch/icinga2.txt"
	die "icinga2: the shipped services example did not make 2 services"
}
grep -E 'Instantiated [0-9]+ (Services|CheckCommands)' "$scratch/icinga2.txt" | sed 's/^ *information\/ConfigItem: /  /'
# The command as Icinga resolved it must be the installed plugin.
command=$(/usr/sbin/icinga2 object list --type CheckCommand --name pg-tls-probe \
	-DCacheDir="$ic/cache" -DRunAsUser=root -DRunAsGroup=root 2>&1 |
	sed -n 's/^ *\* command = \[ "\([^"]*\)" \]$/\1/p')
[ -x "$command" ] || die "the CheckCommand runs '$command', not an installed plugin"
echo "  CheckCommand pg-tls-probe runs $command"

step "dpkg -r, then dpkg --purge"
dpkg-query -L pg-tls-probe >"$scratch/files.txt"
dpkg -r pg-tls-probe
while read -r f; do
	case $f in
	/etc/pg-tls-probe | /etc/pg-tls-probe/*) ;;
	*) if [ -e "$f" ] && [ ! -d "$f" ]; then die "dpkg -r left $f"; fi ;;
	esac
done <"$scratch/files.txt"
for f in /etc/pg-tls-probe/pg_service.conf /etc/pg-tls-probe/pgpass; do
	[ -e "$f" ] || die "dpkg -r removed the conffile $f"
done
dpkg --purge pg-tls-probe
[ ! -e /etc/pg-tls-probe ] || die "dpkg --purge left /etc/pg-tls-probe"
[ ! -e /usr/share/doc/pg-tls-probe ] || die "dpkg --purge left /usr/share/doc/pg-tls-probe"

step "package test passed"
