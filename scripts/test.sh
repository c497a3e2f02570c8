#!/usr/bin/env bash
# The test command. Installs what the tests need (the project, PostgreSQL, Chromium, Redis),
# starts a PostgreSQL server on loopback for the run, and runs pytest. Extra args go to pytest,
# e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
source scripts/lib/services.sh
ensure_debian_packages postgresql redis-server chromium chromium-driver
start_postgres
trap stop_services EXIT
# The local argilla-server for the `argilla` tests (scripts/argilla_server.sh).
source scripts/argilla_server.sh
start_argilla_for_tests
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
exit $status
