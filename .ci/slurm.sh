#!/usr/bin/env bash
# A one-node SLURM cluster (+ munge) on 127.0.0.1, for CI and for trying profiles/slurm by hand.
# Needs root and apt (Debian/Ubuntu); no systemd: the daemons run as plain background daemons.
#
#   .ci/slurm.sh install      apt-get install slurmctld slurmd slurm-client munge (if missing)
#   .ci/slurm.sh configure    write /etc/slurm/slurm.conf for this machine (idempotent)
#   .ci/slurm.sh start        start munged, slurmctld, slurmd unless running; wait for a ready
#                             node; the pid of each daemon it starts goes to $DIR/<name>.pid
#   .ci/slurm.sh stop         stop the daemons listed in $DIR/*.pid (by pid, nothing else)
#   .ci/slurm.sh up USER      install + configure + start, and register USER (a live pid, e.g.
#                             the test process) as a user of the cluster
#   .ci/slurm.sh release USER unregister USER; when no live user is left, stop (by pid) the
#                             daemons this script started. Test sessions that run at the same
#                             time share the cluster: the last one to leave stops it.
#   .ci/slurm.sh status       sinfo and squeue
#
# DIR is $SLURM_CI_DIR or /run/sgdtail-slurm. An existing slurm.conf that this script did not
# write is left alone (exit 3) unless SLURM_CI_FORCE=1. Exit 2: not root / no apt-get.
# The cluster: partition `ci` (default), the node from `slurmd -C` (all CPUs and memory),
# cons_tres with CR_Core_Memory, no accounting (sacct answers nothing; the workflow's start
# check switches the executor to squeue), MinJobAge=600 so that squeue still shows finished jobs.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARKER="# Written by .ci/slurm.sh (sgdtail CI): one node on 127.0.0.1"
STATE_DIR="${SLURM_CI_DIR:-/run/sgdtail-slurm}"
USERS_DIR="$STATE_DIR/users"
PACKAGES=(slurmctld slurmd slurm-client munge)

say() { echo "slurm.sh: $*" >&2; }
die() { say "$*"; exit "${EXIT:-1}"; }

need_root() {
    [[ $(id -u) -eq 0 ]] || EXIT=2 die "needs root (it installs packages and starts daemons)"
}

installed() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v sbatch >/dev/null && command -v munged >/dev/null
}

cmd_install() {
    need_root
    if installed; then
        say "SLURM and munge already installed"
    else
        command -v apt-get >/dev/null || EXIT=2 die "apt-get not found: install ${PACKAGES[*]} by hand"
        export DEBIAN_FRONTEND=noninteractive
        local apt=(timeout -k 10 600 apt-get install -y -q --no-install-recommends "${PACKAGES[@]}")
        if ! "${apt[@]}" >/dev/null; then
            say "apt-get install failed; running apt-get update and trying again"
            timeout -k 10 300 apt-get update -q >/dev/null
            "${apt[@]}" >/dev/null
        fi
        installed || die "SLURM binaries still missing after apt-get install"
    fi
    if [[ ! -s /etc/munge/munge.key ]]; then
        say "creating /etc/munge/munge.key"
        if command -v mungekey >/dev/null; then
            mungekey --create --keyfile=/etc/munge/munge.key
        else
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        fi
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
}

node_line() {
    # slurmd -C: "NodeName=<host> CPUs=2 Boards=1 ... RealMemory=24105", then "UpTime=...".
    timeout -k 5 30 slurmd -C | head -n 1
}

conf_text() {
    local node host
    node=$(node_line)
    host=${node%% *}
    host=${host#NodeName=}
    cat <<EOF
$MARKER
# Regenerate with: .ci/slurm.sh configure
ClusterName=sgdtail-ci
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
# No accounting database: finished jobs are only visible to squeue for MinJobAge seconds.
MinJobAge=600
# Clients give up on an absent controller after ~MessageTimeout-1 s (default 10: ~9 s). Every
# snakemake start runs "scontrol show config" (the SLURM plugin), so keep that short.
MessageTimeout=3
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=ci Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

cmd_configure() {
    need_root
    installed || die "SLURM is not installed: run .ci/slurm.sh install"
    local text
    text=$(conf_text)
    if [[ -e $CONF ]] && ! grep -qxF "$MARKER" "$CONF"; then
        if [[ ${SLURM_CI_FORCE:-0} != 1 ]]; then
            EXIT=3 die "$CONF exists and was not written by this script; SLURM_CI_FORCE=1 replaces it"
        fi
        cp "$CONF" "$CONF.before-sgdtail-ci"
        say "saved the old $CONF as $CONF.before-sgdtail-ci"
    fi
    if [[ -e $CONF ]] && [[ $(cat "$CONF") == "$text" ]]; then
        say "$CONF is up to date"
    else
        mkdir -p "$(dirname "$CONF")"
        printf '%s\n' "$text" >"$CONF.tmp"
        mv "$CONF.tmp" "$CONF"
        say "wrote $CONF"
    fi
    mkdir -p /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm
}

alive() {  # alive PID NAME: the process exists and is NAME (guards against recycled pids)
    [[ -n ${1:-} && -r /proc/$1/comm ]] && [[ $(cat "/proc/$1/comm") == "$2" ]]
}

pid_from() {  # pid_from FILE NAME: the pid in FILE if that process is NAME
    local pid
    [[ -r $1 ]] || return 1
    pid=$(tr -dc '0-9' <"$1")
    alive "$pid" "$2" && echo "$pid"
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...: poll every 0.2 s
    local secs=$1 what=$2
    shift 2
    local end=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= end)); then
            say "no $what after $secs s"
            return 1
        fi
        sleep 0.2
    done
}

munge_ok() { munge -n </dev/null | unmunge >/dev/null; }
ctld_ok() { timeout -k 2 5 scontrol ping | grep -q "is UP"; }
node_ready() {  # up and answering: idle, or running jobs (of another test session)
    local state
    state=$(timeout -k 2 5 sinfo -h -N -o %T | head -n 1)
    [[ $state =~ ^(idle|mixed|allocated|completing)$ ]]
}

cmd_start() {
    need_root
    [[ -r $CONF ]] || die "no $CONF: run .ci/slurm.sh configure"
    mkdir -p "$STATE_DIR"
    local pid
    # munge
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
    if munge_ok 2>/dev/null; then
        say "munged already running"
    else
        timeout -k 5 30 runuser -u munge -- /usr/sbin/munged --force 9>&-
        wait_for 10 munged munge_ok || die "munged does not answer; see /var/log/munge/munged.log"
        pid=$(pid_from /run/munge/munged.pid munged) || die "munged started but has no pid file"
        echo "$pid" >"$STATE_DIR/munged.pid"
        say "started munged (pid $pid)"
    fi
    # controller; -c: start with a clean state (no jobs or node states from an earlier run).
    # 9>&-: the daemons must not inherit the lock's file descriptor.
    if pid=$(pid_from /run/slurmctld.pid slurmctld) && ctld_ok; then
        say "slurmctld already running (pid $pid)"
    else
        timeout -k 5 30 slurmctld -c 9>&-
        wait_for 30 slurmctld ctld_ok || die "slurmctld does not answer; see /var/log/slurm/slurmctld.log"
        pid=$(pid_from /run/slurmctld.pid slurmctld) || die "slurmctld has no pid file"
        echo "$pid" >"$STATE_DIR/slurmctld.pid"
        say "started slurmctld (pid $pid)"
    fi
    # compute node
    if pid=$(pid_from /run/slurmd.pid slurmd); then
        say "slurmd already running (pid $pid)"
    else
        timeout -k 5 30 slurmd 9>&-
        wait_for 10 slurmd pid_from /run/slurmd.pid slurmd || die "slurmd did not start; see /var/log/slurm/slurmd.log"
        pid=$(pid_from /run/slurmd.pid slurmd)
        echo "$pid" >"$STATE_DIR/slurmd.pid"
        say "started slurmd (pid $pid)"
    fi
    if ! wait_for 30 "a ready node" node_ready; then
        local node
        node=$(timeout -k 2 5 sinfo -h -N -o %N | head -n 1)
        say "node $node is $(timeout -k 2 5 sinfo -h -N -o %T | head -n 1); resuming it"
        timeout -k 2 10 scontrol update NodeName="$node" State=RESUME || true
        wait_for 20 "a ready node" node_ready || die "the node is not ready: $(sinfo -N -l)"
    fi
    say "ready: $(sinfo -h -N -o '%N %T %c CPUs %m MB' | head -n 1)"
}

cmd_stop() {
    local name pid
    for name in slurmd slurmctld munged; do
        [[ -e $STATE_DIR/$name.pid ]] || continue
        if pid=$(pid_from "$STATE_DIR/$name.pid" "$name"); then
            kill -TERM "$pid" 2>/dev/null || true
            local end=$((SECONDS + 10))
            while alive "$pid" "$name" && ((SECONDS < end)); do sleep 0.2; done
            if alive "$pid" "$name"; then
                say "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
                kill -KILL "$pid" 2>/dev/null || true
            fi
            say "stopped $name (pid $pid)"
        fi
        rm -f "$STATE_DIR/$name.pid"
    done
}

cmd_status() {
    timeout -k 2 10 sinfo -N -l || true
    timeout -k 2 10 squeue --states=all || true
}

locked() {  # run "$@" while holding the lock of the state directory
    mkdir -p "$STATE_DIR"
    exec 9>"$STATE_DIR/lock"
    timeout -k 5 300 flock 9 || die "could not lock $STATE_DIR/lock"
    "$@"
    flock -u 9
}

live_user() {  # a running process (not a zombie left unreaped)
    [[ $1 =~ ^[0-9]+$ && -r /proc/$1/status ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status"
}

prune_users() {  # forget users whose process is gone
    local f
    mkdir -p "$USERS_DIR"
    for f in "$USERS_DIR"/*; do
        [[ -e $f ]] || continue
        live_user "$(basename "$f")" || rm -f "$f"
    done
}

cmd_up() {
    local user=${1:?usage: slurm.sh up USER_PID}
    live_user "$user" || die "user $user is not a running process"
    cmd_install
    cmd_configure
    prune_users
    touch "$USERS_DIR/$user"
    cmd_start
}

cmd_release() {
    local user=${1:?usage: slurm.sh release USER_PID}
    prune_users
    rm -f "$USERS_DIR/$user"
    local left
    left=$(find "$USERS_DIR" -mindepth 1 | wc -l)
    if ((left > 0)); then
        say "released $user; $left other user(s) left, the daemons keep running"
    else
        cmd_stop
    fi
}

case "${1:-}" in
    install) cmd_install ;;
    configure) cmd_configure ;;
    start) locked cmd_start ;;
    stop) locked cmd_stop ;;
    up) need_root && locked cmd_up "${2:-}" ;;
    release) locked cmd_release "${2:-}" ;;
    status) cmd_status ;;
    *)
        sed -n '2,20p' "$0" >&2
        exit 64
        ;;
esac
