#!/usr/bin/env bash
# Make sure RabbitMQ and PostgreSQL answer on this machine, starting them if they do not.
# The broker runs as the machine gives it (stock limits included): the hub's queues are a
# constant set (docs/broker.md), so nothing here raises a limit or restarts a service.
set -uo pipefail

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

if ! port_open 5672; then
  echo "services: starting RabbitMQ"
  rabbitmq-server -detached || true
  wait_for_port 5672 RabbitMQ || exit 1
  # The port opens before the broker accepts logins; wait for it to be fully booted.
  timeout 120 rabbitmqctl await_startup >/dev/null 2>&1 || true
fi

if ! port_open 5432; then
  echo "services: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
  wait_for_port 5432 PostgreSQL || exit 1
fi
echo "services: RabbitMQ and PostgreSQL answer"
