#!/usr/bin/env bash
# One-command GPU run of the salrank benchmark suite (AMP on, larger batches), including the
# hardware-relative figures flop_bound (fraction of the FLOP bound) and host_overhead.
#
#   benchmarks/gpu.sh                    # full suite -> $OUT/bench-gpu.json (OUT defaults to benchmarks/)
#   OUT=/tmp/results benchmarks/gpu.sh --quick --only end_to_end,detectors
#
# Extra arguments go to `salrank bench`. Run it from anywhere; it uses the repository's .venv when
# present, else the `salrank` on PATH.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${OUT:-$repo/benchmarks}"
mkdir -p "$out"
if [[ -x "$repo/.venv/bin/salrank" ]]; then
    salrank="$repo/.venv/bin/salrank"
    python="$repo/.venv/bin/python"
else
    salrank="salrank"
    python="python"
fi

"$python" - <<'PY'
import sys
import torch
if not torch.cuda.is_available():
    sys.exit("benchmarks/gpu.sh: torch sees no CUDA device (torch %s); use a CUDA build on a GPU machine" % torch.__version__)
print("GPU:", torch.cuda.get_device_name(0), "| torch", torch.__version__, "| CUDA", torch.version.cuda)
PY
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

rc=0
"$salrank" bench --device cuda --amp auto --json "$out/bench-gpu.json" "$@" || rc=$?
echo "record: $out/bench-gpu.json (exit code $rc: 1 = a benchmark failed, see its notes)"
exit "$rc"
