#!/usr/bin/env bash
# A three-node RabbitMQ cluster on this machine, beside the system broker, for testing the
# hub against a cluster (quorum queues replicated over three nodes, one node killed).
#
#   scripts/cluster.sh start          three nodes, joined into one cluster; prints the URLs
#   scripts/cluster.sh status         the cluster as its first live node sees it
#   scripts/cluster.sh urls           HUB_AMQP_URL for the cluster (comma-separated)
#   scripts/cluster.sh kill N         SIGKILL node N (1-3), as a crash would
#   scripts/cluster.sh ctl N ARGS...  rabbitmqctl ARGS on node N (list_queues name leader members)
#   scripts/cluster.sh stop           stop every node it started and remove their data
#
# The nodes are hub-c1@localhost .. hub-c3@localhost, AMQP on 127.0.0.1:5681-5683,
# Erlang distribution on 25681-25683, everything (data, logs, configuration, the Erlang
# cookie) under HUB_CLUSTER_DIR (default var/cluster). The system broker (rabbit@localhost
# on 5672), its files under /etc and /var, the system limits and services are left alone.
#
# The nodes run as the invoking user (root on the hub's machines), not as `rabbitmq`:
# scripts/services.sh finds the system broker as the `rabbitmq` user's node, and must never
# take one of these for it. Each node keeps the stock limit of 1024 open files (lowered
# for its own process only), which a test cluster with a few queues stays far below.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BASE=${HUB_CLUSTER_DIR:-$ROOT/var/cluster}
RABBITMQ_BIN=${HUB_RABBITMQ_BIN:-/usr/lib/rabbitmq/bin}
NODES=(1 2 3)
AMQP_PORT_BASE=5680
DIST_PORT_BASE=25680
STARTUP_TIMEOUT_S=${HUB_CLUSTER_STARTUP_TIMEOUT_S:-120}

node_name() { echo "hub-c$1@localhost"; }
node_dir() { echo "$BASE/hub-c$1"; }
amqp_port() { echo $((AMQP_PORT_BASE + $1)); }
dist_port() { echo $((DIST_PORT_BASE + $1)); }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The environment one node (or a CLI call aimed at it) runs with. RABBITMQ_CONF_ENV_FILE
# points away from /etc/rabbitmq/rabbitmq-env.conf, which names the system node; HOME
# holds the cluster's own Erlang cookie, which its nodes and CLI calls share.
node_env() {
  local n=$1 dir
  dir=$(node_dir "$n")
  echo "HOME=$BASE/home" \
    "RABBITMQ_CONF_ENV_FILE=$BASE/rabbitmq-env.conf" \
    "RABBITMQ_NODENAME=$(node_name "$n")" \
    "RABBITMQ_NODE_IP_ADDRESS=127.0.0.1" \
    "RABBITMQ_NODE_PORT=$(amqp_port "$n")" \
    "RABBITMQ_DIST_PORT=$(dist_port "$n")" \
    "RABBITMQ_CONFIG_FILE=$BASE/rabbitmq.conf" \
    "RABBITMQ_ADVANCED_CONFIG_FILE=$BASE/advanced.config" \
    "RABBITMQ_ENABLED_PLUGINS_FILE=$BASE/enabled_plugins" \
    "RABBITMQ_MNESIA_BASE=$dir/mnesia" \
    "RABBITMQ_LOG_BASE=$dir/log" \
    "RABBITMQ_PID_FILE=$dir/rabbitmq.pid"
}

# rabbitmqctl aimed at node N, given up after TIMEOUT_S seconds: ctl TIMEOUT_S N ARGS...
ctl() {
  local timeout_s=$1 n=$2
  shift 2
  # shellcheck disable=SC2046  # node_env prints NAME=value words without spaces
  # ERL_CRASH_DUMP_SECONDS=0: a CLI call to a node that is gone leaves no erl_crash.dump.
  timeout "$timeout_s" env $(node_env "$n") ERL_CRASH_DUMP_SECONDS=0 \
    "$RABBITMQ_BIN/rabbitmqctl" -n "$(node_name "$n")" "$@"
}

write_configuration() {
  mkdir -p "$BASE/home"
  chmod 700 "$BASE/home"
  if [ ! -f "$BASE/home/.erlang.cookie" ]; then
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$BASE/home/.erlang.cookie")
  fi
  chmod 400 "$BASE/home/.erlang.cookie"
  # As the system broker: Erlang distribution and epmd on loopback only.
  cat >"$BASE/rabbitmq-env.conf" <<'EOF'
ERL_EPMD_ADDRESS=127.0.0.1
export ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}"
EOF
  # Peer discovery from this list: a node that finds hub-c1 running joins it as it boots,
  # which saves the stop_app / join_cluster / start_app round of CLI calls (each CLI call
  # boots an Erlang VM of its own).
  {
    echo "loopback_users.guest = true"
    echo "log.console = false"
    echo "log.file.level = info"
    echo "cluster_formation.peer_discovery_backend = classic_config"
    for n in "${NODES[@]}"; do
      echo "cluster_formation.classic_config.nodes.$n = $(node_name "$n")"
    done
  } >"$BASE/rabbitmq.conf"
  echo '[].' >"$BASE/advanced.config"
  # No plugins: nothing else opens a port that could clash with the system broker's.
  echo '[].' >"$BASE/enabled_plugins"
}

start_node() {
  local n=$1 dir
  dir=$(node_dir "$n")
  mkdir -p "$dir/mnesia" "$dir/log"
  if port_open "$(amqp_port "$n")"; then
    echo "cluster: port $(amqp_port "$n") is taken (a node of an earlier start?); run stop first" >&2
    return 1
  fi
  # shellcheck disable=SC2046
  (
    ulimit -n 1024
    cd "$dir"
    exec setsid env $(node_env "$n") "$RABBITMQ_BIN/rabbitmq-server" \
      >"$dir/log/startup.log" 2>&1 </dev/null
  ) &
  echo $! >"$dir/launcher.pid"
}

await_node() {
  local n=$1 deadline=$((SECONDS + STARTUP_TIMEOUT_S))
  until ctl 15 "$n" await_startup --timeout 10 >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "cluster: $(node_name "$n") did not start; see $(node_dir "$n")/log" >&2
      return 1
    fi
    sleep 1
  done
}

urls() {
  local n out=()
  for n in "${NODES[@]}"; do out+=("amqp://guest:guest@127.0.0.1:$(amqp_port "$n")/%2F"); done
  (IFS=,; echo "${out[*]}")
}

cmd_start() {
  write_configuration
  local n
  # The first node forms the cluster alone; the others, started once it runs, join it.
  start_node 1
  await_node 1
  for n in "${NODES[@]:1}"; do start_node "$n"; done
  if ! ctl $((STARTUP_TIMEOUT_S + 10)) 1 await_online_nodes "${#NODES[@]}" \
      --timeout "$STARTUP_TIMEOUT_S" >/dev/null; then
    echo "cluster: the nodes did not join $(node_name 1); see $BASE/hub-c*/log" >&2
    return 1
  fi
  for n in "${NODES[@]:1}"; do await_node "$n"; done
  echo "cluster: ${#NODES[@]} nodes running: $(for n in "${NODES[@]}"; do echo -n "$(node_name "$n") "; done)"
  urls
}

cmd_status() {
  local n
  for n in "${NODES[@]}"; do
    if port_open "$(amqp_port "$n")"; then
      ctl 30 "$n" cluster_status
      return 0
    fi
  done
  echo "cluster: no node is running" >&2
  return 1
}

node_pid() {
  local file
  file="$(node_dir "$1")/rabbitmq.pid"
  [ -s "$file" ] && kill -0 "$(cat "$file")" 2>/dev/null && cat "$file"
}

cmd_kill() {
  local n=${1:?usage: cluster.sh kill N}
  local pid
  pid=$(node_pid "$n") || { echo "cluster: $(node_name "$n") is not running" >&2; return 1; }
  kill -KILL "$pid"
  echo "cluster: $(node_name "$n") (pid $pid) killed"
}

cmd_stop() {
  [ -d "$BASE" ] || return 0
  local n pid pids=()
  for n in "${NODES[@]}"; do
    pid=$(node_pid "$n") && pids+=("$pid")
    pid=$(cat "$(node_dir "$n")/launcher.pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null && pids+=("$pid")
  done
  # SIGTERM makes an Erlang node stop as `rabbitmqctl stop` would, all three at once and
  # without booting a CLI VM for each; one that has not gone after 20 s is killed.
  if [ "${#pids[@]}" -gt 0 ]; then
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 1 40); do
      kill -0 "${pids[@]}" 2>/dev/null || break
      sleep 0.5
    done
    for pid in "${pids[@]}"; do
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    done
  fi
  rm -rf "$BASE"
  echo "cluster: stopped and removed"
}

case "${1:-}" in
  start) cmd_start ;;
  status) cmd_status ;;
  urls) urls ;;
  kill) cmd_kill "${2:-}" ;;
  ctl)
    shift
    n=${1:?usage: cluster.sh ctl N ARGS...}
    shift
    ctl 60 "$n" "$@"
    ;;
  stop) cmd_stop ;;
  *)
    echo "usage: $0 start|status|urls|kill N|ctl N ARGS...|stop" >&2
    exit 2
    ;;
esac
