#!/usr/bin/env bash
# Bring up a single-node SLURM cluster (slurmctld + slurmd on this machine, one
# `debug` partition) from Debian's packages, for testing the `slurm` profile.
#
# Idempotent: packages are installed only when missing, the configuration is
# rewritten only when it changed, and daemons that already answer are left
# running. A controller this script starts begins with an empty queue: jobs
# that an earlier, interrupted test cluster saved in its state directory are
# discarded rather than run again. Tear down with tests/cluster/stop_slurm.sh.
#
# Job records: no slurmdbd here, so `sacct` has no accounting database; every
# finished job is appended by the `jobcomp/filetxt` plugin to
# $SLURM_JOBCOMP_LOG and `sacct --completion` reads it back.
#
# Needs root (it installs packages and runs the daemons). Environment knobs:
#   SLURM_NODE_CPUS    CPUs offered by the node      (default: nproc)
#   SLURM_NODE_MEM_MB  memory offered by the node    (default: 80% of MemTotal)
set -euo pipefail
# The daemons and runuser live in sbin, which a non-login shell's PATH may lack.
export PATH="/usr/local/sbin:/usr/sbin:/sbin:${PATH}"

SLURM_CONF_DIR=/etc/slurm
SLURM_STATE_DIR=/var/spool/slurmctld
SLURMD_SPOOL_DIR=/var/spool/slurmd
SLURM_LOG_DIR=/var/log/slurm
SLURM_JOBCOMP_LOG=${SLURM_LOG_DIR}/jobcomp.log
MUNGE_RUN_DIR=/run/munge

log() { printf '[start_slurm] %s\n' "$*" >&2; }

if [[ $(id -u) -ne 0 ]]; then
    log "must run as root (installs packages, starts munged/slurmctld/slurmd)"
    exit 1
fi

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v sbatch >/dev/null && command -v munged >/dev/null; then
        return
    fi
    log "installing slurm-wlm and munge from the Debian archive"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends slurm-wlm slurm-client munge >/dev/null
}

start_munge() {
    if [[ ! -s /etc/munge/munge.key ]]; then
        log "creating a munge key"
        mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
            || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
        chown munge:munge /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
    fi
    install -d -o munge -g munge -m 0755 "$MUNGE_RUN_DIR"
    install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        return
    fi
    log "starting munged"
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 1 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return
        sleep 0.1
    done
    log "munged did not come up"
    exit 1
}

write_config() {
    local node_name cpus mem_total_kb mem_mb new_conf
    node_name=$(hostname -s)
    cpus=${SLURM_NODE_CPUS:-$(nproc)}
    mem_total_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
    mem_mb=${SLURM_NODE_MEM_MB:-$(( mem_total_kb * 8 / 10 / 1024 ))}
    install -d -m 0755 "$SLURM_CONF_DIR" "$SLURM_STATE_DIR" "$SLURMD_SPOOL_DIR" "$SLURM_LOG_DIR"
    new_conf=$(cat <<CONF
# Written by tests/cluster/start_slurm.sh: a single-node test cluster.
ClusterName=painformer-test
SlurmctldHost=${node_name}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=${SLURM_STATE_DIR}
SlurmdSpoolDir=${SLURMD_SPOOL_DIR}
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=${SLURM_LOG_DIR}/slurmctld.log
SlurmdLogFile=${SLURM_LOG_DIR}/slurmd.log
# No cgroups in containers: track job processes through /proc instead.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
# Cores and memory are consumable, so --mem and --cpus-per-task are honoured.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=${SLURM_JOBCOMP_LOG}
# Keep finished jobs visible to squeue/scontrol for ten minutes.
MinJobAge=600
# Jobs that give no --mem get 1 GB per CPU, not the whole node.
DefMemPerCPU=1024
SchedulerParameters=batch_sched_delay=0
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName=${node_name} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem_mb} State=UNKNOWN
PartitionName=debug Nodes=${node_name} Default=YES MaxTime=INFINITE State=UP
CONF
)
    if [[ -f ${SLURM_CONF_DIR}/slurm.conf ]] && [[ "$(cat ${SLURM_CONF_DIR}/slurm.conf)" == "$new_conf" ]]; then
        return 1
    fi
    log "writing ${SLURM_CONF_DIR}/slurm.conf (${cpus} CPUs, ${mem_mb} MB)"
    printf '%s\n' "$new_conf" > "${SLURM_CONF_DIR}/slurm.conf"
    return 0
}

daemon_alive() {
    local pid_file=$1
    [[ -f $pid_file ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

start_daemons() {
    local config_changed=$1
    if [[ $config_changed == yes ]]; then
        "$(dirname "$0")/stop_slurm.sh" --keep-munge --keep-config >/dev/null 2>&1 || true
    fi
    if ! daemon_alive /run/slurmctld.pid; then
        log "starting slurmctld (state cleared)"
        /usr/sbin/slurmctld -c
    fi
    if ! daemon_alive /run/slurmd.pid; then
        log "starting slurmd"
        /usr/sbin/slurmd
    fi
}

wait_for_node() {
    local node_name state
    node_name=$(hostname -s)
    for _ in $(seq 1 120); do
        state=$(sinfo --noheader --nodes="$node_name" --format=%T 2>/dev/null || true)
        case $state in
            idle*|mixed*|allocated*) log "node ${node_name} is ${state}"; return ;;
            down*|drain*) scontrol update NodeName="$node_name" State=RESUME >/dev/null 2>&1 || true ;;
        esac
        sleep 0.5
    done
    log "node ${node_name} did not become idle; see ${SLURM_LOG_DIR}/slurmctld.log and slurmd.log"
    exit 1
}

install_packages
start_munge
if write_config; then changed=yes; else changed=no; fi
start_daemons "$changed"
wait_for_node
