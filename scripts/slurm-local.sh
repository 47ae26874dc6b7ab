#!/usr/bin/env bash
# A real one-node Slurm cluster on this machine, for the Slurm executor's
# integration tests (runner/cluster/slurm, cmd/runner) and for trying
# `runner run --executor slurm` without a cluster.
#
#   scripts/slurm-local.sh start    install (Debian packages), configure, start, run a smoke job
#   scripts/slurm-local.sh stop     stop slurmd, slurmctld and munged
#   scripts/slurm-local.sh status   say whether the cluster is up and list its node and queue
#
# Run as root on Debian/Ubuntu. It needs no systemd: the daemons are started
# directly and stopped by their pid files. Every command is idempotent. The
# configuration (the facts behind each setting are in ../shared/SLURM-NOTES.md):
# one node named after this host, reached on 127.0.0.1, with 8 job slots
# whatever the core count (jobs of tests mostly sleep), 1 GiB of memory per
# CPU by default, no accounting database (so no sacct: the runner never needs
# it), finished jobs listed one line each in $JOBCOMP, visible to squeue for
# MinJobAge=30 s, JobRequeue=0 (a node failure ends the job as NODE_FAIL and
# the runner resubmits it, rather than Slurm requeueing it), ReturnToService=1 (a
# node set DOWN by hand stays down until resumed) and KillWait=5 s.
#
# Environment: SLURM_LOCAL_MIN_JOB_AGE (default 30) overrides MinJobAge.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
JOBCOMP=/var/log/slurm/jobcomp.log
LOGDIR=/var/log/slurm
STATE=/var/lib/slurm/slurmctld
SPOOL=/var/lib/slurm/slurmd
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGE_PID=/run/munge/munged.pid

say() { echo "slurm-local: $*" >&2; }
die() { say "$*"; exit 1; }

alive() { # pidfile
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

install_packages() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null && command -v munged >/dev/null; then
    return
  fi
  command -v apt-get >/dev/null || die "no apt-get: install munge, slurmctld, slurmd and slurm-client yourself"
  [ "$(id -u)" = 0 ] || die "run as root to install the packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || say "warning: apt-get update failed"
  apt-get install -y -qq --no-install-recommends munge slurmctld slurmd slurm-client >/dev/null ||
    die "could not install munge slurmctld slurmd slurm-client"
}

write_conf() {
  local host cpus mem min_age
  host=$(hostname -s)
  # The node's real layout, except CPUs (config_overrides gives 8 slots).
  mem=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -1)
  cpus=8
  min_age=${SLURM_LOCAL_MIN_JOB_AGE:-30}
  mkdir -p /etc/slurm "$LOGDIR" "$STATE" "$SPOOL"
  chown slurm:slurm "$LOGDIR" "$STATE"
  local new
  new=$(cat <<EOF
# Written by scripts/slurm-local.sh: a one-node cluster for tests.
ClusterName=local
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=${STATE}
SlurmdSpoolDir=${SPOOL}
SlurmctldPidFile=${CTLD_PID}
SlurmdPidFile=${SLURMD_PID}
SlurmctldLogFile=${LOGDIR}/slurmctld.log
SlurmdLogFile=${LOGDIR}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=${JOBCOMP}
ReturnToService=1
MinJobAge=${min_age}
JobRequeue=0
KillWait=5
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=$((mem * 9 / 10)) State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP
EOF
)
  if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$new" ]; then
    printf '%s\n' "$new" >"$CONF"
    CONF_CHANGED=1
  fi
  touch "$JOBCOMP"
  chown slurm:slurm "$JOBCOMP"
}

start_munge() {
  alive "$MUNGE_PID" && return
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  chmod 0755 /run/munge
  [ -s /etc/munge/munge.key ] || die "/etc/munge/munge.key is missing (reinstall munge)"
  runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 50); do alive "$MUNGE_PID" && return; sleep 0.1; done
  die "munged did not start"
}

wait_for() { # what seconds command...
  local what=$1 secs=$2; shift 2
  local i
  for i in $(seq $((secs * 10))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  die "$what did not happen within ${secs}s (see $LOGDIR)"
}

node_idle() { sinfo -h -N -o %T | grep -qE '^(idle|mixed|allocated)'; }

start() {
  install_packages
  [ "$(id -u)" = 0 ] || die "run as root"
  CONF_CHANGED=0
  write_conf
  if [ "$CONF_CHANGED" = 1 ] && { alive "$CTLD_PID" || alive "$SLURMD_PID"; }; then
    say "slurm.conf changed: restarting"
    stop_daemons
  fi
  start_munge
  alive "$CTLD_PID" || /usr/sbin/slurmctld
  wait_for "the controller answering" 20 scontrol ping
  alive "$SLURMD_PID" || /usr/sbin/slurmd
  # A node left down or drained by an earlier test comes back.
  if sinfo -h -N -o %T | grep -qiE 'down|drain'; then
    scontrol update NodeName="$(hostname -s)" State=RESUME 2>/dev/null || true
  fi
  wait_for "the node becoming idle" 30 node_idle
  smoke
  say "up: $(sinfo -h -N -o '%N %T %c CPUs %m MB')"
}

# smoke submits one job and waits for it to complete: the first job after a
# fresh controller start waits for the first scheduling pass.
smoke() {
  local id state
  id=$(sbatch --parsable -J slurm-local-smoke -o /dev/null --wrap true) || die "sbatch failed"
  id=${id%%;*}
  for _ in $(seq 300); do
    state=$(squeue -h -t all -j "$id" -o %T 2>/dev/null || true)
    case "$state" in
      COMPLETED) return ;;
      FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL) die "smoke job $id ended $state" ;;
    esac
    sleep 0.1
  done
  die "smoke job $id did not complete within 30s (state ${state:-unknown})"
}

stop_one() { # pidfile name
  alive "$1" || return 0
  local pid
  pid=$(cat "$1")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  say "$2 ($pid) did not stop on SIGTERM; killing it"
  kill -9 "$pid" 2>/dev/null || true
}

stop_daemons() {
  stop_one "$SLURMD_PID" slurmd
  stop_one "$CTLD_PID" slurmctld
}

stop() {
  stop_daemons
  stop_one "$MUNGE_PID" munged
  say "stopped"
}

status() {
  local up=0
  for p in "$MUNGE_PID:munged" "$CTLD_PID:slurmctld" "$SLURMD_PID:slurmd"; do
    if alive "${p%%:*}"; then echo "${p#*:}: running (pid $(cat "${p%%:*}"))"; else echo "${p#*:}: stopped"; up=1; fi
  done
  if [ $up = 0 ]; then
    sinfo -N -o '%N %T %c %m' || true
    squeue -t all || true
  fi
  return $up
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
