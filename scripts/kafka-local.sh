#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft, broker+controller) for pmo-ledger
# (contract section 7), without Docker.
#
#   scripts/kafka-local.sh start|stop|status|reset
#
# On first use the broker (org.apache.kafka:kafka_2.13 with its runtime
# dependencies) and a log4j2 backend are fetched from Maven Central with mvn into
# $PMO_LOCAL_DIR/kafka/libs and cached there. The broker listens on
# 127.0.0.1:9092 (PLAINTEXT), its controller on 127.0.0.1:9093.
#
#   start   fetch if needed, write config, format storage if needed, start in the
#           background, wait for "Kafka Server started"; no-op if already running
#   stop    SIGTERM, wait (SIGKILL after $PMO_KAFKA_STOP_TIMEOUT s); no-op if stopped
#   status  print whether it runs (exit 0 running, 1 not running)
#   reset   stop and delete the data directory (topics, offsets); next start reformats
#
# Environment overrides (defaults in brackets):
#   PMO_LOCAL_DIR [${XDG_CACHE_HOME:-~/.cache}/pmo-ledger]: per user, not per clone,
#     so every clone of the repository shares one broker (and one jar cache) on 9092
#   PMO_KAFKA_DIR [$PMO_LOCAL_DIR/kafka]
#   PMO_KAFKA_VERSION [4.1.2]         PMO_LOG4J_VERSION [2.24.3]
#   PMO_KAFKA_PORT [9092]             PMO_KAFKA_CONTROLLER_PORT [9093]
#   PMO_KAFKA_HEAP_OPTS [-Xms256m -Xmx768m]
#   PMO_KAFKA_START_TIMEOUT [90]      PMO_KAFKA_STOP_TIMEOUT [30]
#   JAVA [java]  MVN [mvn]
#   PMO_KAFKA_RESET_FAILED_DATA [0]: 1 deletes the data directory and starts again
#     when the broker refuses to start because that directory has failed (set by
#     make test and make bench, whose topics are scratch; never for your own data)
set -euo pipefail

LOCAL_DIR="${PMO_LOCAL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pmo-ledger}"
KAFKA_DIR="${PMO_KAFKA_DIR:-$LOCAL_DIR/kafka}"
KAFKA_VERSION="${PMO_KAFKA_VERSION:-4.1.2}"
LOG4J_VERSION="${PMO_LOG4J_VERSION:-2.24.3}"
DEPENDENCY_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
HOST=127.0.0.1
PORT="${PMO_KAFKA_PORT:-9092}"
CONTROLLER_PORT="${PMO_KAFKA_CONTROLLER_PORT:-9093}"
NODE_ID=1
HEAP_OPTS="${PMO_KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}"
START_TIMEOUT="${PMO_KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${PMO_KAFKA_STOP_TIMEOUT:-30}"
JAVA="${JAVA:-java}"
MVN="${MVN:-mvn}"

LIBS="$KAFKA_DIR/libs"
DATA="$KAFKA_DIR/data"
CONF_DIR="$KAFKA_DIR/config"
SERVER_PROPS="$CONF_DIR/server.properties"
LOG4J_CONF="$CONF_DIR/log4j2.properties"
CLUSTER_ID_FILE="$KAFKA_DIR/cluster.id"
PIDFILE="$KAFKA_DIR/kafka.pid"
LOGFILE="$KAFKA_DIR/kafka.log"
LIBS_STAMP="$LIBS/.pmo-fetched"
READY_LINE="Kafka Server started"

log() { printf '[kafka-local] %s\n' "$*"; }
die() { printf '[kafka-local] ERROR: %s\n' "$*" >&2; exit 1; }
usage() { echo "usage: $0 start|stop|status|reset" >&2; exit 2; }

# ---------------------------------------------------------------- processes

pid_from_file() { [ -f "$PIDFILE" ] && tr -dc '0-9' <"$PIDFILE" || true; }

# true if $1 is a live process running our broker (guards against pid reuse)
is_our_broker() {
  local pid="$1"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  [ -r "/proc/$pid/cmdline" ] || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "kafka.Kafka $SERVER_PROPS"
}

running_pid() {
  local pid
  pid="$(pid_from_file)"
  if is_our_broker "$pid"; then echo "$pid"; fi
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

take_lock() {
  mkdir -p "$KAFKA_DIR"
  exec 9>"$KAFKA_DIR/.lock"
  if command -v flock >/dev/null 2>&1; then
    flock -w 300 9 || die "another kafka-local.sh holds $KAFKA_DIR/.lock"
  fi
}

# ---------------------------------------------------------------- fetch

write_pom() { # $1 = file, $2 = artifact id, $3 = dependency xml
  cat >"$1" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 https://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.pmo</groupId>
  <artifactId>$2</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
$3
  </dependencies>
</project>
EOF
}

dep() { printf '    <dependency><groupId>%s</groupId><artifactId>%s</artifactId><version>%s</version></dependency>\n' "$1" "$2" "$3"; }

jar_version() { # $1 = libs dir, $2 = artifact id -> version of <artifact>-<version>.jar
  local f
  f="$(find "$1" -maxdepth 1 -name "$2-[0-9]*.jar" -printf '%f\n' | sort -V | tail -n1)"
  [ -n "$f" ] || return 0
  f="${f#"$2"-}"
  echo "${f%.jar}"
}

mvn_copy() { # $1 = pom, $2 = output dir, rest = extra -D options; output shown only on failure
  local pom="$1" out="$2"
  shift 2
  if ! "$MVN" -q -B -Dstyle.color=never -f "$pom" "$DEPENDENCY_PLUGIN:copy-dependencies" \
       -DoutputDirectory="$out" -DincludeScope=runtime "$@" >"$pom.log" 2>&1; then
    cat "$pom.log" >&2
    return 1
  fi
}

ensure_libs() {
  local want="kafka_2.13=$KAFKA_VERSION log4j=$LOG4J_VERSION"
  if [ -f "$LIBS_STAMP" ] && [ "$(head -n1 "$LIBS_STAMP")" = "$want" ] \
     && [ -f "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]; then
    log "using cached jars in $LIBS ($(sed -n 2p "$LIBS_STAMP"))"
    return 0
  fi
  command -v "$MVN" >/dev/null 2>&1 || die "mvn not found (apt-get install -y maven)"
  local t0=$SECONDS work="$KAFKA_DIR/fetch" tmp="$KAFKA_DIR/libs.tmp"
  log "fetching org.apache.kafka:kafka_2.13:$KAFKA_VERSION and runtime dependencies from Maven Central into $LIBS"
  rm -rf "$work" "$tmp"
  mkdir -p "$work" "$tmp"
  write_pom "$work/kafka.xml" kafka "$(dep org.apache.kafka kafka_2.13 "$KAFKA_VERSION")"
  mvn_copy "$work/kafka.xml" "$tmp" \
    || die "mvn could not fetch kafka_2.13:$KAFKA_VERSION (output above)"

  # Logging backend (the kafka POM brings slf4j-api only). Pick the slf4j binding
  # matching the slf4j-api that arrived; copy without transitives so no second
  # slf4j-api/log4j-api version lands in libs.
  local slf4j binding l4j_existing
  slf4j="$(jar_version "$tmp" slf4j-api)"
  [ -n "$slf4j" ] || die "no slf4j-api jar among kafka's dependencies; cannot choose a log4j binding"
  case "$slf4j" in
    1.*) binding=log4j-slf4j-impl ;;
    *) binding=log4j-slf4j2-impl ;;
  esac
  l4j_existing="$(jar_version "$tmp" log4j-api)"
  local l4j="${l4j_existing:-$LOG4J_VERSION}"
  log "slf4j-api $slf4j arrived; adding log4j-api/log4j-core/$binding $l4j"
  write_pom "$work/logging.xml" logging "$(dep org.apache.logging.log4j log4j-api "$l4j")
$(dep org.apache.logging.log4j log4j-core "$l4j")
$(dep org.apache.logging.log4j "$binding" "$l4j")"
  mvn_copy "$work/logging.xml" "$tmp" -DexcludeTransitive=true \
    || die "mvn could not fetch log4j $l4j (output above)"

  [ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ] || die "kafka_2.13-$KAFKA_VERSION.jar missing after fetch"
  local n
  n="$(find "$tmp" -maxdepth 1 -name '*.jar' | wc -l)"
  {
    echo "$want"
    echo "kafka_2.13 $KAFKA_VERSION, $n jars, slf4j-api $slf4j, $binding $l4j"
  } >"$tmp/.pmo-fetched"
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  rm -rf "$work"
  log "fetched $n jars in $((SECONDS - t0))s ($(du -sh "$LIBS" | cut -f1)); slf4j-api $slf4j + $binding $l4j"
}

# ---------------------------------------------------------------- config

write_config() {
  mkdir -p "$CONF_DIR" "$DATA"
  cat >"$LOG4J_CONF" <<'EOF'
# Written by scripts/kafka-local.sh. Console -> $PMO_LOCAL_DIR/kafka/kafka.log (stdout is redirected there).
status = warn
name = pmo-kafka-local
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
# Readiness line "[KafkaRaftServer nodeId=1] Kafka Server started"
logger.raftserver.name = kafka.server.KafkaRaftServer
logger.raftserver.level = INFO
EOF
  cat >"$SERVER_PROPS" <<EOF
# Written by scripts/kafka-local.sh (regenerated on every start; edit the script, not this file).
# Single-node KRaft: broker + controller in one process, static quorum (controller.quorum.voters,
# so storage is formatted with plain "format", not "--standalone").
process.roles=broker,controller
node.id=$NODE_ID
controller.quorum.voters=$NODE_ID@$HOST:$CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT

log.dirs=$DATA
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true

# internal topics on a single node
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=6
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# small-machine settings
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=16777216
EOF
}

# cluster id / node id recorded in the data dir's meta.properties
meta_get() { sed -n "s/^$1=//p" "$DATA/meta.properties" 2>/dev/null | head -n1; }

ensure_formatted() {
  local want_id="" have_id have_node
  [ -s "$CLUSTER_ID_FILE" ] && want_id="$(tr -d '[:space:]' <"$CLUSTER_ID_FILE")"
  if [ -f "$DATA/meta.properties" ]; then
    have_id="$(meta_get cluster.id)"
    have_node="$(meta_get node.id)"
    if [ -z "$want_id" ] && [ -n "$have_id" ]; then
      echo "$have_id" >"$CLUSTER_ID_FILE"
      want_id="$have_id"
    fi
    if [ "$have_id" = "$want_id" ] && [ "$have_node" = "$NODE_ID" ] \
       && [ -d "$DATA/__cluster_metadata-0" ]; then
      log "storage $DATA already formatted (cluster id $want_id)"
      return 0
    fi
    log "storage $DATA has cluster id '${have_id}' / node id '${have_node}' (want '$want_id' / '$NODE_ID'); reformatting (old data discarded)"
  fi
  if [ -z "$want_id" ]; then
    want_id="$("$JAVA" -cp "$LIBS/*" kafka.tools.StorageTool random-uuid | tail -n1 | tr -d '[:space:]')"
    [ -n "$want_id" ] || die "StorageTool random-uuid printed nothing"
    echo "$want_id" >"$CLUSTER_ID_FILE"
    log "generated cluster id $want_id ($CLUSTER_ID_FILE)"
  fi
  rm -rf "$DATA"
  mkdir -p "$DATA"
  log "formatting $DATA (cluster id $want_id)"
  "$JAVA" -Dlog4j2.configurationFile="$LOG4J_CONF" -cp "$LIBS/*" kafka.tools.StorageTool \
    format -t "$want_id" -c "$SERVER_PROPS" | sed 's/^/[kafka-local]   /'
  [ -f "$DATA/meta.properties" ] || die "StorageTool format did not write $DATA/meta.properties"
}

# ---------------------------------------------------------------- commands

cmd_start() {
  take_lock
  local pid
  pid="$(running_pid)"
  if [ -n "$pid" ]; then
    if port_open "$PORT"; then
      log "already running (pid $pid) on $HOST:$PORT"
      return 0
    fi
    log "pid $pid is running but $HOST:$PORT is not open; waiting for it"
  else
    [ -f "$PIDFILE" ] && { log "removing stale pid file $PIDFILE"; rm -f "$PIDFILE"; }
    command -v "$JAVA" >/dev/null 2>&1 || die "java not found (Java 17+ required)"
    local p
    for p in "$PORT" "$CONTROLLER_PORT"; do
      port_open "$p" && die "port $HOST:$p is already in use by another process (not our broker)"
    done
    ensure_libs
    write_config
    ensure_formatted
    [ -f "$LOGFILE" ] && mv -f "$LOGFILE" "$LOGFILE.1"
    : >"$LOGFILE"
    rm -f "$PIDFILE"
    local heap jvm_opts
    read -ra heap <<<"$HEAP_OPTS"
    jvm_opts=(
      "${heap[@]}"
      -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
      -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError
      -Djava.awt.headless=true
      -Dlog4j2.configurationFile="$LOG4J_CONF"
      -Dkafka.logs.dir="$KAFKA_DIR"
    )
    log "starting Kafka $KAFKA_VERSION on $HOST:$PORT (controller $HOST:$CONTROLLER_PORT, heap $HEAP_OPTS); log $LOGFILE"
    # setsid: own session, so the broker survives the caller's process group being
    # killed; the inner bash writes its own pid, then execs java (same pid).
    # shellcheck disable=SC2016  # $$ and $@ are for the inner bash
    setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$PIDFILE" \
      "$JAVA" "${jvm_opts[@]}" -cp "$LIBS/*" kafka.Kafka "$SERVER_PROPS" \
      >>"$LOGFILE" 2>&1 </dev/null 9>&- &
    local _
    for _ in $(seq 1 50); do [ -s "$PIDFILE" ] && break; sleep 0.1; done
    pid="$(pid_from_file)"
    [ -n "$pid" ] || die "broker did not write $PIDFILE"
  fi

  local t0=$SECONDS deadline=$((SECONDS + START_TIMEOUT))
  while :; do
    if grep -q "$READY_LINE" "$LOGFILE" 2>/dev/null && port_open "$PORT"; then
      break
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PIDFILE"
      echo "----- last lines of $LOGFILE -----" >&2
      tail -n 40 "$LOGFILE" >&2 || true
      if grep -q "log dirs in .* have failed" "$LOGFILE"; then
        recover_failed_data
        return
      fi
      die "broker exited during startup"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "----- last lines of $LOGFILE -----" >&2
      tail -n 40 "$LOGFILE" >&2 || true
      log "not ready after ${START_TIMEOUT}s; stopping pid $pid"
      stop_pid "$pid"
      die "broker did not become ready within ${START_TIMEOUT}s"
    fi
    sleep 0.5
  done
  log "Kafka Server started (pid $pid) on $HOST:$PORT in $((SECONDS - t0))s"
}

# The broker refuses to start when its data directory has failed, most often
# because it holds more partitions than the open-file limit allows (topics left by
# killed test runs). Its data is then unusable as it is: say so, and with
# PMO_KAFKA_RESET_FAILED_DATA=1 (make test, make bench) delete it and start afresh.
recover_failed_data() {
  local partitions
  partitions="$(find "$DATA" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l)"
  log "the broker's data directory $DATA has failed ($partitions partition directories;" \
      "open-file limit $(ulimit -n))"
  if [ "${PMO_KAFKA_RESET_FAILED_DATA:-0}" != 1 ] || [ -n "${_PMO_KAFKA_RESET_DONE:-}" ]; then
    die "broker exited during startup; scripts/kafka-local.sh reset deletes its data (topics, offsets)"
  fi
  log "PMO_KAFKA_RESET_FAILED_DATA=1: deleting $DATA and starting afresh"
  rm -rf "$DATA" "$CLUSTER_ID_FILE"
  _PMO_KAFKA_RESET_DONE=1
  cmd_start
}

stop_pid() {
  local pid="$1" deadline=$((SECONDS + STOP_TIMEOUT))
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "pid $pid still alive after ${STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.5
  done
  rm -f "$PIDFILE"
}

cmd_stop() {
  take_lock
  local pid t0=$SECONDS
  pid="$(running_pid)"
  if [ -z "$pid" ]; then
    [ -f "$PIDFILE" ] && rm -f "$PIDFILE"
    log "not running; nothing to stop"
    return 0
  fi
  log "stopping Kafka (pid $pid, SIGTERM)"
  stop_pid "$pid"
  log "stopped in $((SECONDS - t0))s"
}

cmd_status() {
  local pid
  pid="$(running_pid)"
  if [ -z "$pid" ]; then
    log "not running"
    return 1
  fi
  if port_open "$PORT"; then
    log "running (pid $pid) on $HOST:$PORT"
  else
    log "running (pid $pid) but $HOST:$PORT not open yet (starting or stopping)"
  fi
}

cmd_reset() {
  cmd_stop
  log "deleting $DATA and $CLUSTER_ID_FILE"
  rm -rf "$DATA" "$CLUSTER_ID_FILE"
}

[ $# -eq 1 ] || usage
case "$1" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  reset) cmd_reset ;;
  *) usage ;;
esac
