#!/usr/bin/env bash
# The README's first command: install everything, load the bundled sample data into the default
# SQLite database, label it with the bundled judge (SmolLM2-135M-Instruct, both orders), create
# an admin, print counts and metrics, and open the review app.
#   RLAIF_HOME     where the database, model cache and runs live (default ~/.rlaif)
#   RLAIF_DEMO_NO_APP=1   stop before opening the app (used by the tests)
#   RLAIF_PORT     the app's port (default 8501)
#   RLAIF_DEMO_LLMBAR_PAIRS, RLAIF_DEMO_HH_PAIRS   how many pairs of each set to label (60, 40)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
rlaif=.venv/bin/rlaif
data=pipeline/data

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Database"
$rlaif init

step "Import: 300 HH-RLHF pairs with their human preferences, 100 LLMBar pairs to review"
$rlaif import pairs "$data/hh_rlhf_harmless_sample.jsonl" --chosen-rejected --source hh-rlhf
$rlaif import pairs "$data/llmbar_natural_pairs.jsonl" --source llmbar

step "Label with the bundled judge (both orders, label-token probabilities)"
# A 135M model on CPU scores about one pair per second when idle: the demo labels a part of each
# set (a re-run labels the next ones). Set RLAIF_DEMO_*_PAIRS to change how many.
$rlaif label --judge default --source llmbar --limit "${RLAIF_DEMO_LLMBAR_PAIRS:-60}"
$rlaif label --judge default --source hh-rlhf --limit "${RLAIF_DEMO_HH_PAIRS:-40}"
$rlaif judges

step "How far does the AI judge agree with the humans?"
$rlaif metrics

step "Sign-in"
# The password file is named after the database (admin-password-<8 hex>.txt); the command
# prints which one it wrote.
bootstrap_output="$($rlaif users bootstrap-admin)"
echo "$bootstrap_output"
password_file="$(printf '%s\n' "$bootstrap_output" \
  | sed -n 's/.*password is in \(.*admin-password-[0-9a-f]*\.txt\).*/\1/p')"
if [ -n "$password_file" ] && [ -r "$password_file" ]; then
  echo "Sign in as admin with the password: $(cat "$password_file")"
fi

if [ "${RLAIF_DEMO_NO_APP:-0}" = "1" ]; then
  exit 0
fi
step "Review app on http://localhost:${RLAIF_PORT:-8501} (Ctrl-C to stop)"
exec $rlaif app --port "${RLAIF_PORT:-8501}"
