#!/usr/bin/env bash
# Tear down the single-node test cluster started by tests/cluster/start_slurm.sh:
# stop slurmd, slurmctld and (unless --keep-munge) munged, each by its pid file,
# then (unless --keep-config) remove the slurm.conf that start_slurm.sh wrote,
# and only that one: with a config naming a controller that is gone, every
# `scontrol` call, which Snakemake's SLURM plugin makes at each start, waits
# 10 s before giving up.
# Job state and logs stay under /var/spool and /var/log/slurm for inspection.
set -uo pipefail
# The daemons and runuser live in sbin, which a non-login shell's PATH may lack.
export PATH="/usr/local/sbin:/usr/sbin:/sbin:${PATH}"

keep_munge=no
keep_config=no
for option in "$@"; do
    case $option in
        --keep-munge) keep_munge=yes ;;
        --keep-config) keep_config=yes ;;
        *) printf '[stop_slurm] unknown option %s\n' "$option" >&2; exit 2 ;;
    esac
done

stop_by_pid_file() {
    local name=$1 pid_file=$2 pid
    [[ -f $pid_file ]] || return 0
    pid=$(cat "$pid_file")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        printf '[stop_slurm] stopped %s (pid %s)\n' "$name" "$pid" >&2
    fi
    rm -f "$pid_file"
}

stop_by_pid_file slurmd /run/slurmd.pid
stop_by_pid_file slurmctld /run/slurmctld.pid
if [[ $keep_munge == no ]]; then
    stop_by_pid_file munged /run/munge/munged.pid
fi
test_conf=/etc/slurm/slurm.conf
if [[ $keep_config == no && -f $test_conf ]] && head -n 1 "$test_conf" | grep -qx '# Written by tests/cluster/start_slurm.sh: a single-node test cluster.'; then
    rm -f "$test_conf"
    printf '[stop_slurm] removed %s\n' "$test_conf" >&2
fi
