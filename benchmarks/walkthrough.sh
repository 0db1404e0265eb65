#!/usr/bin/env bash
# The "own data in 5 minutes" walk-through, timed: clone, set up, evaluate, tune, train,
# serve, one request, on a CSV whose columns are not lmrec's names.
#
#   LMREC_DATA_DIR=../shared/datasets bash benchmarks/walkthrough.sh [WORKDIR]
#
# The CSV is made from MovieLens-100K (renamed columns, a separate item file) so the
# run is the same on any machine that has it; nothing is written to the repository.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
stamp() { date +%s.%N; }
say() { printf '%-34s %6.1f s\n' "$1" "$(echo "$(stamp) - $2" | bc)"; }

ml="${LMREC_DATA_DIR:?set LMREC_DATA_DIR}/ml-100k"
python3 - "$ml" "$work" <<'PY'
import csv, sys
src, out = sys.argv[1], sys.argv[2]
with open(f"{src}/u.data") as fh, open(f"{out}/events.csv", "w", newline="") as w:
    wr = csv.writer(w); wr.writerow(["uid", "sku", "stars", "ts"])
    for line in fh:
        u, i, r, t = line.split("\t"); wr.writerow([u, i, r, t.strip()])
with open(f"{src}/u.item", encoding="latin-1") as fh, open(f"{out}/items.csv", "w", newline="") as w:
    wr = csv.writer(w); wr.writerow(["sku", "name"])
    for line in fh:
        parts = line.split("|"); wr.writerow([parts[0], parts[1]])
PY

t0=$(stamp)
git clone -q "$repo" "$work/lmrec" && cd "$work/lmrec"
t=$(stamp); scripts/setup; say "scripts/setup (install)" "$t"
. .venv/bin/activate
flags=(--dataset "$work/events.csv" --columns user=uid,item=sku,rating=stars,timestamp=ts
       --catalog "$work/items.csv" --item-columns item=sku,title=name)
t=$(stamp); lmrec evaluate "${flags[@]}" --models pop,itemknn,ease,als --out "$work/eval.json" >/dev/null
say "lmrec evaluate (4 models)" "$t"
t=$(stamp); lmrec tune "${flags[@]}" --model itemknn --trials 20 --out "$work/tune" >/dev/null
say "lmrec tune itemknn (20 trials)" "$t"
t=$(stamp); lmrec train "${flags[@]}" --config "$work/tune/best.json" --out "$work/model" >/dev/null
say "lmrec train --config best.json" "$t"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
t=$(stamp)
lmrec serve --model-dir "$work/model" --db "$work/state.db" --allow-anonymous --port "$port" \
  >"$work/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
until curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null; do sleep 0.2; done
curl -sf -X POST "http://127.0.0.1:$port/v1/recommendations" -H 'content-type: application/json' \
  -d '{"user_id": "1", "k": 5}' >"$work/answer.json"
say "lmrec serve + first answer" "$t"
say "clone to first recommendation" "$t0"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print('first answer:', [i['item_id'] for i in d['items']])" "$work/answer.json"
