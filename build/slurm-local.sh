#!/usr/bin/env bash
# A real one-node Slurm cluster in a folder, for the cluster tests and for trying `-p:WaalScheduler=slurm` on one
# machine (docs/cluster.md). Needs root (the daemons run as root), slurm-wlm and munge (installed with apt-get when
# missing, as the test command installs chromium).
#   bash build/slurm-local.sh start DIR   writes DIR/slurm.conf, starts munged (when not running), slurmctld and
#                                         slurmd, waits until the node is idle; prints `export SLURM_CONF=...`
#   bash build/slurm-local.sh stop DIR    stops the two daemons by their pid files, and munged when start started it
# Everything the cluster writes (state, spool, logs, pids) is under DIR. The daemons talk over 127.0.0.1, so the
# machine's host name need not resolve.
set -euo pipefail
action="${1:-}"; dir="${2:-}"
[ -n "$action" ] && [ -n "$dir" ] || { echo "usage: slurm-local.sh start|stop DIR" >&2; exit 2; }
mkdir -p "$dir"; dir="$(cd "$dir" && pwd)"

stop() {
  for d in slurmd slurmctld munged; do
    local pidfile="$dir/$d.pid"
    [ -f "$pidfile" ] || continue
    local pid; pid="$(cat "$pidfile")"
    if kill "$pid" 2>/dev/null; then
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
}

if [ "$action" = stop ]; then stop; exit 0; fi
[ "$action" = start ] || { echo "error SLURM001: unknown action '$action'; expected start or stop" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "error SLURM002: the local cluster's daemons run as root; this is user $(id -un)" >&2; exit 1; }

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  command -v apt-get >/dev/null || { echo "error SLURM003: slurm-wlm and munge are missing and apt-get is not available" >&2; exit 1; }
  echo "slurm-local: installing slurm-wlm and munge (apt-get)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge; } >"$dir/apt.log" 2>&1 \
    || { echo "error SLURM003: apt-get install slurm-wlm munge failed; see $dir/apt.log" >&2; exit 1; }
fi

# munge: one key for the machine, one daemon for the machine.
if ! pgrep -x munged >/dev/null; then
  if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
    chmod 400 /etc/munge/munge.key
  fi
  mkdir -p /var/lib/munge /var/log/munge /run/munge
  chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge 2>/dev/null || true
  /usr/sbin/munged --force 2>"$dir/munged.err" || { echo "error SLURM004: munged did not start; see $dir/munged.err" >&2; exit 1; }
  # Ours to stop with the cluster (a munged that was already running is left alone).
  pgrep -x -n munged >"$dir/munged.pid"
fi

for d in slurmd slurmctld; do [ -f "$dir/$d.pid" ] && kill "$(cat "$dir/$d.pid")" 2>/dev/null; rm -f "$dir/$d.pid"; done
host="$(hostname -s)"
cpus="$(getconf _NPROCESSORS_ONLN)"  # not nproc: it reads OMP_NUM_THREADS
memory=$(( $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) - 1024 ))
mkdir -p "$dir/state" "$dir/spool"
cat >"$dir/slurm.conf" <<EOF
ClusterName=waal-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldPort=${WAAL_SLURMCTLD_PORT:-6817}
SlurmdPort=${WAAL_SLURMD_PORT:-6818}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
KillWait=30
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$dir/slurm.conf"
slurmctld -f "$SLURM_CONF" || { echo "error SLURM005: slurmctld did not start; see $dir/slurmctld.log" >&2; exit 1; }
slurmd -f "$SLURM_CONF" || { stop; echo "error SLURM005: slurmd did not start; see $dir/slurmd.log" >&2; exit 1; }
for _ in $(seq 1 100); do
  state="$(sinfo -h -o %t 2>/dev/null | head -1 || true)"
  case "$state" in idle*|mix*|alloc*) echo "export SLURM_CONF=$SLURM_CONF"; exit 0;; esac
  sleep 0.2
done
stop
echo "error SLURM006: the node did not become idle in 20 s (state '${state:-none}'); see $dir/slurmctld.log and $dir/slurmd.log" >&2
exit 1
