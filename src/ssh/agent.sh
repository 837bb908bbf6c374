#!/bin/bash
# broker's on-node job runner, installed at ~/.broker/agent.sh and run as `bash agent.sh CMD ...`.
#
# Jobs live in ~/.broker/jobs/<id>/: workdir, setup, run (the commands), env (NUL-separated
# KEY=VALUE records), image (a container image to run in, or empty), gpus (1: give that
# container the node's GPUs), log (stdout+stderr), pid (the runner), started, exit (the exit code).
# bash, not sh: reading NUL-separated records needs `read -d ''`, and jobs run with bash anyway.
set -u

cd "$HOME" || exit 1
BROKER="$HOME/.broker"
JOBS="$BROKER/jobs"
AGENT="$BROKER/agent.sh"

die() { printf 'broker agent: %s\n' "$*" >&2; exit 2; }

valid_id() {
    case $1 in '' | *[!0-9]*) die "bad job id '$1'" ;; esac
}

# submit ID: stdin is workdir NUL setup NUL run NUL image NUL gpus NUL then the env records. Sending the same id
# again is a no-op, so a resend after a dropped connection cannot start a job twice.
submit() {
    valid_id "$1"
    dir="$JOBS/$1"
    mkdir -p "$JOBS"
    tmp=$(mktemp -d "$JOBS/.tmp-$1-XXXXXX") || die "cannot create a job directory"
    # `read` consumes a pipe byte by byte, so `cat` below gets exactly the rest.
    IFS= read -r -d '' workdir || die "truncated request"
    IFS= read -r -d '' setup || die "truncated request"
    IFS= read -r -d '' run || die "truncated request"
    IFS= read -r -d '' image || die "truncated request"
    IFS= read -r -d '' gpus || die "truncated request"
    cat >"$tmp/env" || die "truncated request"
    printf '%s' "$workdir" >"$tmp/workdir"
    printf '%s' "$setup" >"$tmp/setup"
    printf '%s' "$run" >"$tmp/run"
    printf '%s' "$image" >"$tmp/image"
    printf '%s' "$gpus" >"$tmp/gpus"
    : >"$tmp/log"
    # rename(2) of a directory onto a non-empty one fails: the first submit of an id wins.
    if ! mv -T "$tmp" "$dir" 2>/dev/null; then
        rm -rf "$tmp"
        [ -f "$dir/run" ] || die "cannot create $dir"
        return 0
    fi
    # Detached (own session, no terminal, stdio off the SSH channel) so that it outlives the
    # connection that started it.
    setsid nohup bash "$AGENT" run-job "$1" </dev/null >>"$dir/log" 2>&1 &
    # A node restarted by `broker start` lost its watchdog; the first job brings it back.
    ensure_watchdog
}

# run-job ID: waits for the node's queue, runs setup then run, records the exit code.
run_job() {
    valid_id "$1"
    dir="$JOBS/$1"
    printf '%s\n' "$$" >"$dir/pid.tmp" && mv -f "$dir/pid.tmp" "$dir/pid"
    # One job at a time per node: the lock is held until this runner exits.
    exec 9>>"$BROKER/queue.lock"
    flock 9
    : >"$dir/started"
    (
        # The job must not inherit the lock, or a daemon it leaves behind would block the queue.
        exec 9>&-
        workdir=$(cat "$dir/workdir")
        case $workdir in
            '~') workdir=$HOME ;;
            '~/'*) workdir=$HOME/${workdir#'~/'} ;;
        esac
        mkdir -p -- "$workdir" && cd -- "$workdir" || exit 1
        if [ -s "$dir/image" ]; then
            in_container "$1"
            exit
        fi
        while IFS= read -r -d '' record; do
            export -- "$record"
        done <"$dir/env"
        if [ -s "$dir/setup" ]; then
            bash -c "$(cat "$dir/setup")" || exit
        fi
        bash -c "$(cat "$dir/run")"
    )
    status=$?
    # Atomic, so a reader never sees an empty exit file.
    printf '%s\n' "$status" >"$dir/exit.tmp" && mv -f "$dir/exit.tmp" "$dir/exit"
}

# node_env NAME: NAME in /etc/broker/node.env (KEY=VALUE lines), or nothing. The Docker cloud
# mounts it into its nodes with BROKER_SHARED_DIR and BROKER_NODE_CONTAINER.
node_env() {
    [ -r /etc/broker/node.env ] || return 0
    sed -n "s/^$1=//p" /etc/broker/node.env | head -n 1
}

# in_container ID: runs job ID's setup and run in a container of its image, from the workdir
# (the current directory), and exits with the job's exit code. Called by run_job.
#
# The engine may not be on this machine: a Docker-cloud node uses its host's engine, which
# resolves bind mounts on the host. There BROKER_SHARED_DIR is a directory at the same path on
# both, so the job's files and its workdir are placed under it first; the workdir is moved there
# once and replaced by a symlink, so that later syncs land in it too.
in_container() {
    image=$(cat "$dir/image")
    gpus=$(cat "$dir/gpus" 2>/dev/null)
    if ! command -v docker >/dev/null 2>&1; then
        printf 'broker agent: the job runs in image %s, but this node has no docker\n' "$image"
        exit 127
    fi
    shared=$(node_env BROKER_SHARED_DIR)
    node=$(node_env BROKER_NODE_CONTAINER)
    jd=$dir
    wd=$(pwd -P)
    if [ -n "$shared" ]; then
        jd=$shared/jobs/$1
        mkdir -p -- "$jd" && cp -- "$dir/env" "$dir/setup" "$dir/run" "$jd/" || exit 1
        case $wd/ in
            "$shared"/*) ;;
            "$(cd && pwd -P)"/)
                # The home directory cannot move: the job gets an empty directory instead.
                wd=$shared/home
                mkdir -p -- "$wd" || exit 1
                ;;
            *)
                target=$shared/workdirs$wd
                cd / && mkdir -p -- "$(dirname -- "$target")" && rm -rf -- "$target" \
                    && mv -T -- "$wd" "$target" && ln -s -- "$target" "$wd" || exit 1
                wd=$target
                ;;
        esac
    fi
    # Reads the env records from the job directory inside the container: values never pass
    # through a command line, so they arrive byte for byte as on the node.
    cat >"$jd/inner.sh" <<'INNER'
jd=$1
while IFS= read -r -d '' record; do
    export -- "$record"
done <"$jd/env"
if [ -s "$jd/setup" ]; then
    bash -c "$(cat "$jd/setup")" || exit
fi
bash -c "$(cat "$jd/run")"
INNER
    if ! docker image inspect "$image" >/dev/null 2>&1 && ! docker pull "$image"; then
        printf 'broker agent: image %s is not on the node and could not be pulled\n' "$image"
        exit 125
    fi
    cluster=
    while IFS= read -r -d '' record; do
        case $record in BROKER_CLUSTER_NAME=*) cluster=${record#*=} ;; esac
    done <"$dir/env"
    # Labelled like the nodes, so that teardown and leak checks find it.
    set -- run --rm --name "broker-job-${node:-$(hostname)}-$1" \
        --label broker.managed=1 --label "broker.job=$1"
    [ -n "$cluster" ] && set -- "$@" --label "broker.cluster=$cluster"
    [ "$gpus" = 1 ] && set -- "$@" --gpus all
    # The node's network: the job sees the cluster as a job outside a container does.
    if [ -n "$node" ]; then set -- "$@" --network "container:$node"; else set -- "$@" --network host; fi
    set -- "$@" -v "$jd:$jd" -v "$wd:$wd" -w "$wd" "$image" bash "$jd/inner.sh" "$jd"
    docker "$@"
    exit
}

# state ID: queued | running | exited N | lost | unknown
state() {
    dir="$JOBS/$1"
    if [ ! -f "$dir/run" ]; then
        echo unknown
    elif [ -s "$dir/exit" ]; then
        printf 'exited %s\n' "$(cat "$dir/exit")"
    elif [ -s "$dir/pid" ] && ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
        # Check once more: the runner may have written `exit` and ended in between.
        if [ -s "$dir/exit" ]; then printf 'exited %s\n' "$(cat "$dir/exit")"; else echo lost; fi
    elif [ -e "$dir/started" ]; then
        echo running
    else
        echo queued
    fi
}

# list: one `ID STATE` line per job.
list() {
    [ -d "$JOBS" ] || return 0
    for dir in "$JOBS"/*/; do
        id=$(basename "$dir")
        case $id in '' | *[!0-9]*) continue ;; esac
        printf '%s %s\n' "$id" "$(state "$id")"
    done
}

# follow ID: the log from its start until the job ends.
follow() {
    valid_id "$1"
    dir="$JOBS/$1"
    [ -f "$dir/run" ] || die "no job $1"
    # The runner records its pid first thing; give up after 10 s (it died before that).
    tries=0
    while [ ! -s "$dir/exit" ] && [ ! -s "$dir/pid" ] && [ "$tries" -lt 100 ]; do
        sleep 0.1
        tries=$((tries + 1))
    done
    if [ -s "$dir/exit" ] || [ ! -s "$dir/pid" ]; then
        exec cat "$dir/log"
    fi
    # tail reads the whole file first, so a runner that ended meanwhile loses nothing.
    exec tail -n +1 -s 0.2 -f --pid="$(cat "$dir/pid")" "$dir/log"
}

# autostop SECONDS stop|down | autostop cancel: after SECONDS with no job queued or running, the
# node powers itself off (`down`: removes itself where it can). The setting lives in
# ~/.broker/autostop so a restarted watchdog finds it; the watchdog is one per node.
autostop() {
    if [ "${1:-}" = cancel ]; then
        rm -f "$BROKER/autostop"
        echo "autostop cancelled"
        return 0
    fi
    case ${1:-} in '' | *[!0-9]*) die "bad idle seconds '${1:-}'" ;; esac
    case ${2:-} in stop | down) ;; *) die "bad autostop action '${2:-}'" ;; esac
    mkdir -p "$BROKER"
    printf '%s %s\n' "$1" "$2" >"$BROKER/autostop.tmp" && mv -f "$BROKER/autostop.tmp" "$BROKER/autostop"
    ensure_watchdog
    printf 'autostop: %s after %s s idle\n' "$2" "$1"
}

ensure_watchdog() {
    [ -s "$BROKER/autostop" ] || return 0
    if [ -s "$BROKER/watchdog.pid" ] && kill -0 "$(cat "$BROKER/watchdog.pid")" 2>/dev/null; then
        return 0
    fi
    setsid nohup bash "$AGENT" watchdog </dev/null >>"$BROKER/watchdog.log" 2>&1 &
}

# busy: true when a job is queued or running on this node.
busy() {
    list | grep -Eq ' (queued|running)$'
}

# The newest of: the autostop setting, the last job's end. Idle time counts from there.
last_activity() {
    newest=$(stat -c %Y "$BROKER/autostop" 2>/dev/null || echo 0)
    for f in "$JOBS"/*/exit; do
        [ -e "$f" ] || continue
        t=$(stat -c %Y "$f")
        [ "$t" -gt "$newest" ] && newest=$t
    done
    echo "$newest"
}

watchdog() {
    printf '%s\n' "$$" >"$BROKER/watchdog.pid"
    while [ -s "$BROKER/autostop" ]; do
        read -r idle action <"$BROKER/autostop" || break
        now=$(date +%s)
        if busy; then
            :
        elif [ $((now - $(last_activity))) -ge "$idle" ]; then
            printf '%s idle for %s s: %s\n' "$(date -u +%FT%TZ)" "$idle" "$action"
            power_off "$action"
            exit 0
        fi
        sleep 2
    done
}

# power_off stop|down. A Docker-cloud node (it has /etc/broker/node.env) ends its PID 1, or with
# `down` removes its own container through the host's engine; a VM shuts down, which stops
# billing (broker's AWS nodes terminate on shutdown; a GCE VM is stopped).
power_off() {
    node=$(node_env BROKER_NODE_CONTAINER)
    if [ -n "$node" ] || [ -f /.dockerenv ]; then
        if [ "$1" = down ] && [ -n "$node" ] && command -v docker >/dev/null 2>&1 && [ -S /var/run/docker.sock ]; then
            docker rm -f "$node" >/dev/null 2>&1 && exit 0
        fi
        kill -TERM 1
        return
    fi
    if [ "$(id -u)" = 0 ]; then shutdown -h now || poweroff; else sudo -n shutdown -h now; fi
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
    submit) submit "${1:-}" ;;
    run-job) run_job "${1:-}" ;;
    status) valid_id "${1:-}"; state "$1" ;;
    list) list ;;
    follow) follow "${1:-}" ;;
    autostop) autostop "${1:-}" "${2:-}" ;;
    watchdog) watchdog ;;
    *) die "unknown command '$cmd'" ;;
esac
