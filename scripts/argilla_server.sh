#!/usr/bin/env bash
# The local Argilla server (no Docker): argilla-server 2.8.0 in its own virtualenv, Debian's
# redis-server on loopback, and our SQL search engine instead of Elasticsearch.
#
#   bash scripts/argilla_server.sh [--port 6900]   # start (or reuse) it; prints URL + credentials
#   .venv/bin/rlaif argilla stop                    # stop it
#
# Sourced by scripts/test.sh, it provides start_argilla_for_tests, which starts a throw-away
# server for the `argilla` tests and exports RLAIF_TEST_ARGILLA_* (its virtualenv is cached in
# $RLAIF_ARGILLA_VENV, default ~/.cache/rlaif/argilla-server-venv, so a second run skips pip).

start_argilla_for_tests() {
  export RLAIF_ARGILLA_VENV=${RLAIF_ARGILLA_VENV:-$HOME/.cache/rlaif/argilla-server-venv}
  local home="$RLAIF_SERVICES_DIR/argilla" exports
  if ! exports=$(.venv/bin/python -m pipeline.argilla.local_server start --home "$home" \
      --port "$(free_port)" --print-test-env); then
    echo "warning: the local Argilla server did not start; the argilla tests will start one" \
      "themselves (and fail in CI if it cannot start)" >&2
    return 0
  fi
  eval "$exports"
  _STOP_HOOKS+=(".venv/bin/python -m pipeline.argilla.local_server stop --home $home")
  echo "Argilla on $RLAIF_TEST_ARGILLA_URL"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  cd "$(dirname "$0")/.."
  [ -x .venv/bin/rlaif ] || bash scripts/install.sh
  command -v redis-server >/dev/null || {
    echo "redis-server is missing: sudo apt-get install redis-server" >&2
    exit 1
  }
  exec .venv/bin/rlaif argilla serve "$@"
fi
