#!/bin/sh
# Runs every litmus test under docs/litmus/ with herd7 and checks each
# Observation against the expectation written in the test's header.
#
#   HERD=/path/to/herd7 LKMM=/path/to/linux/tools/memory-model \
#     [HERDLIB=/path/to/herdtools7/herd/libdir] sh docs/litmus/run.sh [TEST...]
#
# HERDLIB is herd7's own library (cross.cat, cos.cat, rc11.cat, ...); it is
# needed when herd7 was built but not installed (herd7 also reads HERDLIB
# itself).  TEST arguments (paths to .litmus files) restrict the run.
#
# Models:
#   lkmm           lkmm/*.litmus: $LKMM/linux-kernel.cfg (variant lkmmv2)
#   rc11           c11/*.litmus: herd's rc11.cat (RC11, PLDI 2017; forbids
#                  load buffering: acyclic (sb | rf))
#   rc11-lb        c11/*.litmus: rc11.cat with its no-thin-air axiom removed
#                  (generated here; allows load buffering, keeps RC11's
#                  C++20-style SC rules)
#   c11_partialSC  c11/*.litmus: herd's c11_partialSC.cat (Batty et al.,
#                  POPL 2016; allows load buffering; has mutexes)
#
# Expectations, one line each in the header:
#   (* expect: Never *)               default for every model of the test
#   (* expect rc11: Never *)          override for one model
#   (* expect rc11-lb: skip *)        do not run under that model
# Values: Always, Sometimes, Never, skip.
#
# Prints one line per (test, model): test, model, observation, expected,
# ok/MISMATCH.  Exits 1 on any mismatch or herd7 failure, 2 on bad setup.

set -u

here=$(cd "$(dirname "$0")" && pwd)

if [ -z "${HERD:-}" ] || [ -z "${LKMM:-}" ]; then
	echo "usage: HERD=/path/to/herd7 LKMM=/path/to/tools/memory-model [HERDLIB=...] sh $0 [TEST...]" >&2
	exit 2
fi
if [ ! -x "$HERD" ]; then
	echo "HERD=$HERD is not executable" >&2
	exit 2
fi
if [ ! -f "$LKMM/linux-kernel.cfg" ]; then
	echo "LKMM=$LKMM has no linux-kernel.cfg" >&2
	exit 2
fi
[ -n "${HERDLIB:-}" ] && export HERDLIB

# Locate rc11.cat to derive rc11-lb.cat from it.
rc11=
for d in "${HERDLIB:-}" "$(dirname "$HERD")/../share/herdtools7/herd" \
	"$(dirname "$HERD")/../../../herd/libdir"; do
	if [ -n "$d" ] && [ -f "$d/rc11.cat" ]; then
		rc11="$d/rc11.cat"
		break
	fi
done
if [ -z "$rc11" ]; then
	echo "cannot find herd's rc11.cat: set HERDLIB to herdtools7/herd/libdir" >&2
	exit 2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
grep -v 'acyclic (sb | rf) as no-thin-air' "$rc11" > "$tmp/rc11-lb.cat"
if cmp -s "$rc11" "$tmp/rc11-lb.cat"; then
	echo "rc11.cat has no 'acyclic (sb | rf) as no-thin-air' line; rc11-lb would equal rc11" >&2
	exit 2
fi

# expect FILE MODEL: the expected observation (or skip), empty if none.
expect() {
	e=$(sed -n "s/^(\* expect $2: *\([A-Za-z]*\) *\*)\$/\1/p" "$1" | head -n 1)
	[ -n "$e" ] || e=$(sed -n 's/^(\* expect: *\([A-Za-z]*\) *\*)$/\1/p' "$1" | head -n 1)
	echo "$e"
}

fail=0
count=0

# run FILE MODEL HERD-ARGS...
run() {
	f=$1
	m=$2
	shift 2
	name=$(basename "$(dirname "$f")")/$(basename "$f" .litmus)
	exp=$(expect "$f" "$m")
	if [ "$exp" = skip ]; then
		return
	fi
	out=$("$HERD" "$@" "$f" 2>&1)
	obs=$(printf '%s\n' "$out" | awk '$1 == "Observation" { print $3; exit }')
	if [ -z "$obs" ]; then
		obs=ERROR
		printf '%s\n' "$out" | sed -n '1,3s/^/    herd7: /p' >&2
	fi
	if [ -z "$exp" ]; then
		verdict="MISMATCH(no expect line)"
		fail=1
	elif [ "$obs" = "$exp" ]; then
		verdict=ok
	else
		verdict=MISMATCH
		fail=1
	fi
	count=$((count + 1))
	printf '%-40s %-14s %-10s %-10s %s\n' "$name" "$m" "$obs" "$exp" "$verdict"
}

if [ $# -gt 0 ]; then
	tests="$*"
else
	tests="$(ls "$here"/lkmm/*.litmus "$here"/c11/*.litmus)"
fi

printf '%-40s %-14s %-10s %-10s %s\n' test model observed expected result
for f in $tests; do
	case "$(basename "$(dirname "$f")")" in
	lkmm)
		run "$f" lkmm -I "$LKMM" -conf linux-kernel.cfg
		;;
	c11)
		run "$f" rc11 -model rc11.cat
		run "$f" rc11-lb -model "$tmp/rc11-lb.cat"
		run "$f" c11_partialSC -model c11_partialSC.cat
		;;
	*)
		echo "$f: not under lkmm/ or c11/, skipped" >&2
		;;
	esac
done

if [ "$fail" -ne 0 ]; then
	echo "FAIL: at least one mismatch ($count runs)"
	exit 1
fi
echo "all $count runs match"
