# Helpers for scripts/test.sh: Debian packages and throw-away servers on loopback.
# Everything lives under $RLAIF_SERVICES_DIR (default: /tmp/rlaif-services-$$) and is removed
# by stop_services.

RLAIF_SERVICES_DIR=${RLAIF_SERVICES_DIR:-/tmp/rlaif-services-$$}
_STOP_HOOKS=()

ensure_debian_packages() {
  local missing=()
  for package in "$@"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "Installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A PostgreSQL cluster of our own in a temporary folder, on a free loopback port.
start_postgres() {
  local bindir
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  local data="$RLAIF_SERVICES_DIR/pg"
  local port
  port=$(free_port)
  mkdir -p "$data"
  local run_as=()
  if [ "$(id -u)" -eq 0 ]; then
    chown -R postgres:postgres "$RLAIF_SERVICES_DIR"
    run_as=(runuser -u postgres --)
  fi
  "${run_as[@]}" "$bindir/initdb" -D "$data" -U rlaif --auth=trust >/dev/null
  if ! "${run_as[@]}" "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w \
      -o "-k $data -h 127.0.0.1 -p $port -F" start >/dev/null; then
    echo "PostgreSQL did not start; its log:" >&2
    cat "$data/server.log" >&2
    return 1
  fi
  export RLAIF_TEST_POSTGRES_URL="postgresql+psycopg://rlaif@127.0.0.1:$port/postgres"
  _STOP_HOOKS+=("${run_as[*]} $bindir/pg_ctl -D $data -m fast stop")
  echo "PostgreSQL on 127.0.0.1:$port"
}

stop_services() {
  for hook in "${_STOP_HOOKS[@]}"; do
    eval "$hook" >/dev/null 2>&1 || true
  done
  rm -rf "$RLAIF_SERVICES_DIR"
}
