#!/usr/bin/env bash
# A single-node SLURM cluster on localhost for CI (tests/test_slurm.py, docs/cluster.md).
#
#   .ci/slurm-setup.sh          install (apt) + configure + start; waits until the node is idle
#   .ci/slurm-teardown.sh       stop the daemons (the packages and config stay)
#
# Idempotent: a second call with the cluster already up and configured the same way
# returns at once. Works without systemd (containers, CI runners): munged, slurmctld and
# slurmd are started directly. Needs root (or passwordless sudo) and Debian/Ubuntu apt.
#
# What it sets up (Debian 12: slurm-wlm 22.05 + munge):
#   - partition `ci` (default), one node = this machine as `slurmd -C` reports it,
#     NodeAddr=127.0.0.1; select/cons_tres with CR_Core_Memory and DefMemPerCPU (without
#     a default memory per CPU one job would take the whole node's memory);
#     proctrack/linuxproc and task/none (no cgroups needed).
#   - no accounting database: job status comes from `squeue` (profiles/ci-slurm sets
#     slurm-status-command: squeue), so finished jobs must stay visible to squeue for a
#     while: MinJobAge=300 s (the plugin needs MinJobAge >= 3x its first status delay).
#   - IGRM_SLURM_FAKE_GPUS (default 2) fake GPUs: Gres=gpu:fake:N backed by device files,
#     so that a job asking for gpu=1 is scheduled as a GPU job and gets
#     CUDA_VISIBLE_DEVICES from SLURM (no CUDA on the machine is needed). 0 disables them.
#
# Environment: IGRM_SLURM_FAKE_GPUS, IGRM_SLURM_DEF_MEM_PER_CPU (MB, default 2000).
set -euo pipefail

FAKE_GPUS=${IGRM_SLURM_FAKE_GPUS:-2}
DEF_MEM=${IGRM_SLURM_DEF_MEM_PER_CPU:-2000}
CONF_DIR=/etc/slurm
LOG_DIR=/var/log/slurm
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "slurm-setup: needs root or sudo" >&2; exit 1; }
    SUDO="sudo -n"
fi
say() { echo "slurm-setup: $*"; }

# ---------------------------------------------------------------- 1. packages
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
   || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    say "installing slurm-wlm and munge (apt)"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge >/dev/null
fi

# ---------------------------------------------------------------- 2. munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    say "starting munged"
    if [ ! -s /etc/munge/munge.key ]; then
        $SUDO sh -c 'dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null'
    fi
    $SUDO chown munge:munge /etc/munge/munge.key
    $SUDO chmod 400 /etc/munge/munge.key
    $SUDO mkdir -p /run/munge /var/lib/munge /var/log/munge
    $SUDO chown munge:munge /run/munge /var/lib/munge /var/log/munge
    $SUDO chmod 755 /run/munge
    $SUDO runuser -u munge -- /usr/sbin/munged --force
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
    munge -n | unmunge >/dev/null || { echo "slurm-setup: munged does not answer" >&2; exit 1; }
fi

# ---------------------------------------------------------------- 3. configuration
NODE=$(hostname -s)
# `slurmd -C` prints this machine's node line (CPUs, sockets, cores, RealMemory)
NODE_HW=$(slurmd -C | head -1 | sed -e 's/^NodeName=[^ ]* //')
# leave some memory to the head node's own processes (Snakemake, slurmctld)
REAL_MEM=$(echo "$NODE_HW" | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
NODE_HW=$(echo "$NODE_HW" | sed -e "s/RealMemory=[0-9]*/RealMemory=$((REAL_MEM * 9 / 10))/")
GRES_NODE=""
GRES_TYPES=""
if [ "$FAKE_GPUS" -gt 0 ]; then
    GRES_NODE=" Gres=gpu:fake:$FAKE_GPUS"
    GRES_TYPES="GresTypes=gpu"
    for i in $(seq 0 $((FAKE_GPUS - 1))); do
        dev=/dev/igrm-fake-gpu$i
        # a character device like /dev/null; a plain file where mknod is not allowed
        [ -e "$dev" ] || $SUDO mknod -m 666 "$dev" c 1 3 2>/dev/null || $SUDO touch "$dev"
    done
fi

TMP_CONF=$(mktemp)
cat >"$TMP_CONF" <<EOF
# written by .ci/slurm-setup.sh: a single-node CI cluster on localhost
ClusterName=igrmci
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ReturnToService=2
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$DEF_MEM
# no accounting database: status via squeue, which sees finished jobs for MinJobAge s
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=300
KillWait=5
SlurmdTimeout=60
InactiveLimit=0
$GRES_TYPES
NodeName=$NODE NodeAddr=127.0.0.1 $NODE_HW$GRES_NODE State=UNKNOWN
PartitionName=ci Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
TMP_GRES=$(mktemp)
if [ "$FAKE_GPUS" -gt 0 ]; then
    echo "NodeName=$NODE Name=gpu Type=fake File=/dev/igrm-fake-gpu[0-$((FAKE_GPUS - 1))]" >"$TMP_GRES"
fi

changed=0
$SUDO mkdir -p "$CONF_DIR" "$LOG_DIR" /var/spool/slurmctld /var/spool/slurmd
if ! cmp -s "$TMP_CONF" "$CONF_DIR/slurm.conf"; then
    $SUDO cp "$TMP_CONF" "$CONF_DIR/slurm.conf"; changed=1
fi
if ! cmp -s "$TMP_GRES" "$CONF_DIR/gres.conf" 2>/dev/null; then
    $SUDO cp "$TMP_GRES" "$CONF_DIR/gres.conf"; changed=1
fi
rm -f "$TMP_CONF" "$TMP_GRES"
$SUDO chmod 644 "$CONF_DIR/slurm.conf" "$CONF_DIR/gres.conf"

# ---------------------------------------------------------------- 4. daemons
running() { pgrep -x "$1" >/dev/null; }
if [ "$changed" = 1 ] && { running slurmctld || running slurmd; }; then
    say "configuration changed: restarting the daemons"
    "$(dirname "$0")/slurm-teardown.sh"
fi
if ! running slurmctld; then
    say "starting slurmctld"
    $SUDO slurmctld -i
fi
if ! running slurmd; then
    say "starting slurmd"
    $SUDO slurmd
fi

# ---------------------------------------------------------------- 5. wait for an idle node
state=""
for _ in $(seq 120); do
    state=$(sinfo -h -N -n "$NODE" -o %T 2>/dev/null | head -1 || true)
    case "$state" in
        idle|mixed|allocated) break ;;
        down*|drain*|drained*)
            $SUDO scontrol update NodeName="$NODE" State=RESUME 2>/dev/null || true ;;
    esac
    sleep 0.5
done
case "$state" in
    idle|mixed|allocated) say "node $NODE is $state (partition ci, $FAKE_GPUS fake GPUs)" ;;
    *) echo "slurm-setup: node $NODE did not become idle (state '$state'); logs in $LOG_DIR" >&2
       tail -n 20 "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" >&2 || true
       exit 1 ;;
esac
