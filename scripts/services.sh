#!/usr/bin/env bash
# Make sure RabbitMQ and PostgreSQL answer on this machine, starting them if they do not,
# and that RabbitMQ may open enough files for the whole region (see docs/broker.md).
set -uo pipefail

# RabbitMQ holds a file handle for every queue, and every endpoint of the region has a
# queue of its own (the sample region: 1825), besides one per connection. Debian starts
# the broker through su, which gives it PAM's default of 1024 open files; with more
# queues than that the node stops accepting connections (running, no alarm, no answer).
BROKER_OPEN_FILES=${HUB_BROKER_OPEN_FILES:-16384}
BROKER_LIMITS=/etc/security/limits.d/rabbitmq-hub.conf

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for_port() {
  local port=$1 name=$2
  for _ in $(seq 1 60); do
    port_open "$port" && return 0
    sleep 1
  done
  echo "services: $name did not come up on port $port" >&2
  return 1
}

broker_pid() { pgrep -u rabbitmq -f -- '-s rabbit boot' | head -n 1; }

broker_open_files() {
  local pid
  pid=$(broker_pid) || return 1
  [ -n "$pid" ] && awk '/^Max open files/ {print $4}' "/proc/$pid/limits"
}

# A limits.d entry is read by su's pam_limits whenever the broker starts. It may not
# exceed this machine's hard ceiling (pam_limits then ignores it and 1024 stays).
raise_broker_file_limit() {
  [ "$(id -u)" = 0 ] && id rabbitmq >/dev/null 2>&1 && [ -d /etc/security/limits.d ] || return 0
  local ceiling wanted=$BROKER_OPEN_FILES
  ceiling=$(ulimit -Hn)
  if [ "$ceiling" != unlimited ] && [ "$ceiling" -lt "$wanted" ]; then wanted=$ceiling; fi
  printf 'rabbitmq soft nofile %s\nrabbitmq hard nofile %s\n' "$wanted" "$wanted" >"$BROKER_LIMITS"
  echo "$wanted"
}

start_broker() {
  echo "services: starting RabbitMQ"
  rabbitmq-server -detached || true
  wait_for_port 5672 RabbitMQ || exit 1
  # The port opens before the broker accepts logins; wait for it to be fully booted.
  timeout 120 rabbitmqctl await_startup >/dev/null 2>&1 || true
}

restart_broker_with_more_files() {
  local have=$1 wanted=$2
  echo "services: RabbitMQ may open only $have files (wanted $wanted); restarting it"
  timeout 120 rabbitmqctl stop >/dev/null 2>&1 || pkill -KILL -u rabbitmq -f -- '-s rabbit boot'
  for _ in $(seq 1 30); do
    port_open 5672 || break
    sleep 1
  done
  start_broker
}

wanted_files=$(raise_broker_file_limit)
if ! port_open 5672; then
  start_broker
elif [ -n "$wanted_files" ]; then
  have_files=$(broker_open_files) || have_files=""
  if [ -n "$have_files" ] && [ "$have_files" -lt "$wanted_files" ]; then
    restart_broker_with_more_files "$have_files" "$wanted_files"
  fi
fi
if have_files=$(broker_open_files) && [ -n "$have_files" ]; then
  echo "services: RabbitMQ may open $have_files files"
fi

if ! port_open 5432; then
  echo "services: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
  wait_for_port 5432 PostgreSQL || exit 1
fi
echo "services: RabbitMQ and PostgreSQL answer"
