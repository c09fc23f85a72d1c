#!/usr/bin/env bash
# Stop the single-node CI cluster started by .ci/slurm-setup.sh: cancel every job, then
# stop slurmd and slurmctld (by their pid files) and munged. Packages and config stay, so
# slurm-setup.sh brings it back in seconds. Safe to run when nothing is running.
set -uo pipefail
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo -n"

command -v scancel >/dev/null && $SUDO scancel --full --quiet --user="$(id -un)" 2>/dev/null
stop() {  # stop <pidfile> <name>: TERM, then wait up to 10 s
    local pidfile=$1 name=$2 pid
    [ -s "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        echo "slurm-teardown: stopping $name ($pid)"
        $SUDO kill -TERM "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    $SUDO rm -f "$pidfile"
}
stop /run/slurmd.pid slurmd
stop /run/slurmctld.pid slurmctld
if [ "${1:-}" = "--all" ]; then
    stop /run/munge/munged.pid munged
fi
exit 0
