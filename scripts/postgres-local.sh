#!/usr/bin/env bash
# Local PostgreSQL for pmo-ledger (contract section 7): Debian's packaged server,
# a dedicated cluster (default name "pmo") on 127.0.0.1:5432, role pmo/pmo
# (superuser, for tests) and database pmo.
#
#   scripts/postgres-local.sh start|stop|status
#
# After `start`: psql postgresql://pmo:pmo@127.0.0.1:5432/pmo -c 'select 1'
#
# The cluster is created with Debian's pg_createcluster (data in
# /var/lib/postgresql/<ver>/<cluster>, owned by the postgres system user), so it
# works when run as root wherever the repository is checked out. It does not
# depend on the distro's "main" cluster; if another cluster of this machine is
# online on the port, it is stopped (with a message) so ours can take the port.
#
# Environment overrides: PMO_PG_CLUSTER (pmo), PMO_PG_PORT (5432),
# PMO_PG_USER (pmo), PMO_PG_PASSWORD (pmo), PMO_PG_DB (pmo),
# PMO_PG_START_TIMEOUT (60 seconds).
set -euo pipefail

CLUSTER="${PMO_PG_CLUSTER:-pmo}"
PORT="${PMO_PG_PORT:-5432}"
DB_USER="${PMO_PG_USER:-pmo}"
DB_PASSWORD="${PMO_PG_PASSWORD:-pmo}"
DB_NAME="${PMO_PG_DB:-pmo}"
START_TIMEOUT="${PMO_PG_START_TIMEOUT:-60}"
HOST=127.0.0.1
SOCKET_DIR=/var/run/postgresql

log() { printf '[postgres-local] %s\n' "$*"; }
die() { printf '[postgres-local] ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
  echo "usage: $0 start|stop|status" >&2
  exit 2
}

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
  as_postgres() { (cd / && runuser -u postgres -- "$@"); }
else
  command -v sudo >/dev/null 2>&1 || die "run as root (or install sudo)"
  SUDO=(sudo)
  as_postgres() { (cd / && sudo -u postgres -- "$@"); }
fi

installed_versions() {
  local p
  for p in /usr/lib/postgresql/*/bin/postgres; do
    [ -x "$p" ] || continue
    p="${p#/usr/lib/postgresql/}"
    echo "${p%%/*}"
  done | sort -V
}

ensure_installed() {
  if [ -z "$(installed_versions)" ]; then
    log "PostgreSQL server not found; installing Debian package 'postgresql' (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update
    "${SUDO[@]}" apt-get install -y --no-install-recommends postgresql
    [ -n "$(installed_versions)" ] || die "postgresql installed but no /usr/lib/postgresql/*/bin/postgres found"
    log "installed PostgreSQL $(installed_versions | tail -n1)"
  fi
  command -v pg_lsclusters >/dev/null 2>&1 || die "pg_lsclusters missing (package postgresql-common)"
}

# pg_lsclusters -h columns: version cluster port status owner datadir logfile
cluster_line() { pg_lsclusters -h 2>/dev/null | awk -v c="$CLUSTER" '$2 == c' | head -n1; }
cluster_version() { cluster_line | awk '{print $1}'; }
cluster_online() { cluster_line | awk '{print $4}' | grep -q '^online'; }

pg_ready() { pg_isready -q -h "$HOST" -p "$PORT" -t 2 >/dev/null 2>&1; }

port_in_use() {
  # true if something listens on 127.0.0.1:$PORT (or on the wildcard address)
  if command -v ss >/dev/null 2>&1; then
    ss -Hltn "sport = :$PORT" 2>/dev/null | grep -q .
  else
    (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null
  fi
}

ensure_socket_dir() {
  if [ ! -d "$SOCKET_DIR" ]; then
    "${SUDO[@]}" install -d -o postgres -g postgres -m 2775 "$SOCKET_DIR"
  fi
}

create_cluster() {
  local ver
  ver="$(installed_versions | tail -n1)"
  log "creating PostgreSQL $ver cluster '$CLUSTER' on port $PORT (listen $HOST only)"
  "${SUDO[@]}" pg_createcluster "$ver" "$CLUSTER" \
    --port "$PORT" --locale C.UTF-8 --encoding UTF8 --start-conf auto \
    -o "listen_addresses=$HOST" \
    -- --auth-local=peer --auth-host=scram-sha-256 >/dev/null
}

configure_cluster() {
  # Re-assert settings every start (cheap; fixes drift after manual edits).
  local ver
  ver="$(cluster_version)"
  local conf="/etc/postgresql/$ver/$CLUSTER/postgresql.conf"
  [ -f "$conf" ] || die "missing $conf"
  # (pg_conftool would write 127.0.0.1 unquoted, which postgres rejects.)
  if grep -Eq '^[[:space:]]*listen_addresses[[:space:]]*=' "$conf"; then
    "${SUDO[@]}" sed -i -E "s/^[[:space:]]*listen_addresses[[:space:]]*=.*/listen_addresses = '$HOST'/" "$conf"
  else
    echo "listen_addresses = '$HOST'" | "${SUDO[@]}" tee -a "$conf" >/dev/null
  fi
  "${SUDO[@]}" pg_conftool -s "$ver" "$CLUSTER" set port "$PORT"
}

free_port_from_other_clusters() {
  # Stop any other local cluster that is online on our port (e.g. distro's "main").
  local ver name port status
  while read -r ver name port status _; do
    [ "$name" = "$CLUSTER" ] && continue
    if [ "$port" = "$PORT" ] && [[ "$status" == online* ]]; then
      log "port $PORT is held by cluster $ver/$name; stopping it so '$CLUSTER' can use the port"
      "${SUDO[@]}" pg_ctlcluster "$ver" "$name" stop
    fi
  done < <(pg_lsclusters -h 2>/dev/null)
}

wait_ready() {
  local deadline=$((SECONDS + START_TIMEOUT))
  until pg_ready; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      die "PostgreSQL did not accept connections on $HOST:$PORT within ${START_TIMEOUT}s (see $(cluster_line | awk '{print $7}'))"
    fi
    sleep 0.5
  done
}

ensure_role_and_db() {
  local ver
  ver="$(cluster_version)"
  local psql=(psql -X -q -v ON_ERROR_STOP=1 -h "$SOCKET_DIR" -p "$PORT" -d postgres)
  # Password literal is quoted via format(%L) so unusual passwords are safe.
  as_postgres "${psql[@]}" -v u="$DB_USER" -v pw="$DB_PASSWORD" <<'SQL'
SELECT format(CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'u')
                   THEN 'ALTER ROLE %I WITH LOGIN SUPERUSER PASSWORD %L'
                   ELSE 'CREATE ROLE %I WITH LOGIN SUPERUSER PASSWORD %L' END,
              :'u', :'pw') \gexec
SQL
  as_postgres "${psql[@]}" -v u="$DB_USER" -v d="$DB_NAME" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'d', :'u')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'d') \gexec
SQL
  # Verify over TCP with the password, exactly as clients will connect.
  PGPASSWORD="$DB_PASSWORD" psql -X -q -At -h "$HOST" -p "$PORT" -U "$DB_USER" -d "$DB_NAME" \
    -c 'select 1' >/dev/null || die "could not connect as $DB_USER to $DB_NAME over TCP"
  log "role '$DB_USER' (superuser) and database '$DB_NAME' present in cluster $ver/$CLUSTER"
}

url() { echo "postgresql://$DB_USER:$DB_PASSWORD@$HOST:$PORT/$DB_NAME"; }

cmd_start() {
  ensure_installed
  ensure_socket_dir
  if [ -n "$(cluster_line)" ] && cluster_online && pg_ready; then
    log "cluster $(cluster_version)/$CLUSTER already running on $HOST:$PORT"
    ensure_role_and_db
    log "url: $(url)"
    return 0
  fi
  if [ -z "$(cluster_line)" ]; then
    create_cluster
  else
    log "using existing cluster $(cluster_version)/$CLUSTER"
  fi
  configure_cluster
  free_port_from_other_clusters
  if port_in_use; then
    die "port $PORT is in use by a process that is not a pg_lsclusters cluster; free it or set PMO_PG_PORT"
  fi
  log "starting cluster $(cluster_version)/$CLUSTER"
  "${SUDO[@]}" pg_ctlcluster "$(cluster_version)" "$CLUSTER" start
  wait_ready
  log "PostgreSQL $(cluster_version) accepting connections on $HOST:$PORT"
  ensure_role_and_db
  log "started; url: $(url)"
}

cmd_stop() {
  if [ -z "$(installed_versions)" ] || ! command -v pg_lsclusters >/dev/null 2>&1 || [ -z "$(cluster_line)" ]; then
    log "cluster '$CLUSTER' does not exist; nothing to stop"
    return 0
  fi
  if cluster_online; then
    log "stopping cluster $(cluster_version)/$CLUSTER"
    "${SUDO[@]}" pg_ctlcluster "$(cluster_version)" "$CLUSTER" stop -m fast
    log "stopped"
  else
    log "cluster $(cluster_version)/$CLUSTER is not running"
  fi
}

cmd_status() {
  if [ -z "$(installed_versions)" ] || ! command -v pg_lsclusters >/dev/null 2>&1; then
    log "PostgreSQL server not installed; not running"
    return 1
  fi
  if [ -z "$(cluster_line)" ]; then
    log "cluster '$CLUSTER' does not exist; not running"
    return 1
  fi
  if cluster_online && pg_ready; then
    log "running: cluster $(cluster_version)/$CLUSTER on $HOST:$PORT ($(url))"
    return 0
  fi
  log "not running: cluster $(cluster_version)/$CLUSTER ($(cluster_line | awk '{print $4}'))"
  return 1
}

[ $# -eq 1 ] || usage
case "$1" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) usage ;;
esac
