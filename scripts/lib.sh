# shellcheck shell=bash
# scripts/lib.sh: small helpers shared by scripts/test and scripts/bench (sourced, not run).
# bash only; callers use `set -euo pipefail`.

note() { printf '  %s\n' "$*"; }
die() {
	printf '\nERROR: %s\n' "$*" >&2
	exit 1
}

# micros: $EPOCHREALTIME as an integer number of microseconds (any decimal separator).
micros() { local t=${1:-$EPOCHREALTIME}; t=${t//[!0-9]/}; echo "$((10#$t))"; }

# elapsed_since T: human readable time since the $EPOCHREALTIME value T.
elapsed_since() {
	local us=$(($(micros) - $(micros "$1")))
	local s=$((us / 1000000)) ds=$(((us / 100000) % 10))
	if ((s >= 60)); then
		printf '%dm%02d.%ds' $((s / 60)) $((s % 60)) "$ds"
	else
		printf '%d.%ds' "$s" "$ds"
	fi
}

section() {
	local since=""
	if [[ -n ${T0:-} ]]; then
		since="  [at $(elapsed_since "$T0")]"
	fi
	printf '\n==== %s%s\n' "$1" "$since"
}

STEP_LINES=()
record_step() { # record_step NAME RC DURATION
	local verdict=ok
	if (($2 != 0)); then
		verdict="FAILED (exit $2)"
	fi
	STEP_LINES+=("$(printf '  %-48s %-10s %s' "$1" "$3" "$verdict")")
}
print_steps() {
	local l
	for l in "${STEP_LINES[@]}"; do
		printf '%s\n' "$l"
	done
}

random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

# free_ports N: N distinct free TCP ports on 127.0.0.1, space separated.
free_ports() {
	python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
}

show_tail() { # show_tail TITLE FILE
	[[ -s $2 ]] || return 0
	printf -- '---- last 40 lines of %s (%s)\n' "$1" "$2"
	tail -n 40 "$2" | sed 's/^/    /'
}

# wait_http NAME URL WANT TIMEOUT_S PID LOG: polls URL until it answers with HTTP status WANT
# ("any": any HTTP answer). Fails early, with the log tail, if process PID exits.
wait_http() {
	local name=$1 url=$2 want=$3 timeout=$4 pid=$5 log=$6 code
	local deadline=$((SECONDS + timeout))
	while ((SECONDS < deadline)); do
		code=$(curl -s -o /dev/null --max-time 2 -w '%{http_code}' "$url" || true)
		if [[ $want == any && -n $code && $code != 000 ]] || [[ $code == "$want" ]]; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "$name (pid $pid) exited during start-up" >&2
			show_tail "$name log" "$log" >&2
			return 1
		fi
		sleep 0.2
	done
	echo "$name did not answer $url with $want within ${timeout}s (last status: ${code:-none})" >&2
	show_tail "$name log" "$log" >&2
	return 1
}

# kill_group PGID: SIGTERM to a whole process group, SIGKILL after 10 s, then reap it.
kill_group() {
	local pg=$1 i
	kill -TERM -- "-$pg" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 -- "-$pg" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL -- "-$pg" 2>/dev/null || true
	wait "$pg" 2>/dev/null || true
}

# kill_pid_of PID EXE: stops PID (SIGTERM, SIGKILL after 10 s), but only if it still runs EXE,
# so a recycled PID is never hit. Returns 1 when there was nothing to stop.
kill_pid_of() {
	local pid=$1 want=$2 exe i
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
	exe=${exe% (deleted)}
	[[ $(realpath -m "$exe") == "$(realpath -m "$want")" ]] || return 1
	kill -TERM "$pid" 2>/dev/null || return 1
	for ((i = 0; i < 100; i++)); do
		[[ -e /proc/$pid && $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# stop_gateways DIR: stops gateways that tests left running (files "<pid> <exe>" written by
# internal/testenv, removed by it when it stops them itself).
stop_gateways() {
	local f pid exe n=0
	for f in "$1"/*.pid; do
		[[ -f $f ]] || continue
		read -r pid exe <"$f" || true
		if [[ -n ${pid:-} && -n ${exe:-} ]] && kill_pid_of "$pid" "$exe"; then
			n=$((n + 1))
		fi
	done
	if ((n > 0)); then
		note "stopped $n gateway process(es) left behind by tests"
	fi
}
