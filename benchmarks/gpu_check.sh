#!/usr/bin/env bash
# The GPU check in one go (about 5 minutes on one GPU; docs/embeddings.md, "GPU check"):
#   1. pytest -m cuda: embed, pretraining, thermal and depth run a tiny job on CUDA and on the
#      CPU and are compared within a tolerance;
#   2. the GPU rows of benchmarks/embed.py (bf16 images/s and their fraction of the FLOP bound,
#      whether the GPU waits on loading) and of benchmarks/train.py;
#   3. one table of the results.
# Without CUDA the tests are skipped, the benchmarks are not run and their rows say "not measured".
#
#   bash benchmarks/gpu_check.sh [LOG_DIR]      (logs of every step go to LOG_DIR, default a temp folder)
set -u
cd "$(dirname "$0")/.."
logs=${1:-$(mktemp -d)}
mkdir -p "$logs"
python=${PYTHON:-python}

gpu=$("$python" -c "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')")
echo "GPU check: ${gpu:-no CUDA device}; logs in $logs" >&2

# -s: the tests print their measured tolerances (TOLERANCE lines) for the table.
timeout 300 "$python" -m pytest -m cuda tests/test_cuda.py -q -s -p no:cacheprovider >"$logs/pytest.log" 2>&1
echo "pytest exit status $?" >>"$logs/pytest.log"

if [ -n "$gpu" ]; then
    timeout 180 "$python" benchmarks/embed.py --device cuda --samples 128 --items 4 --loader-threads 4 --repeats 1 \
        --seconds 2 --no-tolerance --summary >"$logs/embed.log" 2>&1
    if "$python" benchmarks/train.py --help 2>/dev/null | grep -q -- "--device"; then
        timeout 120 "$python" benchmarks/train.py --device cuda --quick >"$logs/train.log" 2>&1
    fi
fi

"$python" - "$logs" "$gpu" <<'EOF'
import re
import sys
from pathlib import Path

logs, gpu = Path(sys.argv[1]), sys.argv[2]


def read(name: str) -> str:
    path = logs / name
    return path.read_text(errors="replace") if path.exists() else ""


rows = [("GPU", gpu or "none (CPU only)")]
pytest_log = read("pytest.log")
counts = re.findall(r"(\d+) (passed|failed|skipped|error)", pytest_log)
rows.append(("pytest -m cuda", ", ".join(f"{n} {what}" for n, what in counts) or "did not run (see pytest.log)"))
for name, value, limit in re.findall(r"^TOLERANCE\t([^\t]+)\t([^\t]+)\t(.+)$", pytest_log, re.M):
    rows.append((f"CPU vs GPU: {name}", f"{value} (limit {limit})"))
if not re.search(r"^TOLERANCE", pytest_log, re.M):
    rows.append(("CPU vs GPU tolerance", "not measured"))

summary = dict(re.findall(r"^SUMMARY\t([^\t]+)\t(.+)$", read("embed.log"), re.M))
for batch in (32, 128):
    for what, label in (("infer", "backbone only"), ("pipeline", "whole pipeline"), ("bound_by", "bound by")):
        key = f"bfloat16_batch{batch}_{what}"
        rows.append((f"embed bf16 batch {batch}, {label}", summary.get(key, "not measured")))

train = read("train.log").strip().splitlines()
rows.append(("benchmarks/train.py --device cuda --quick", "see below" if train else "not measured"))

width = max(len(name) for name, _ in rows)
print(f"| {'check':<{width}} | result |")
print(f"|{'-' * (width + 2)}|--------|")
for name, value in rows:
    print(f"| {name:<{width}} | {value} |")
if train:
    print("\nbenchmarks/train.py --device cuda --quick (last lines):")
    print("\n".join(train[-12:]))
EOF
