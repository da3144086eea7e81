#!/usr/bin/env bash
# The whole GPU device check of ehrbench in one command (issue 20): at most 8 minutes on one H200.
#
#   bash benchmarks/gpu/check.sh [--dry-run] [--stages preflight,pytest,speed,e2e,paper]
#                                [--budget SECONDS] [--paper-fast] [--install-only]
#
# Writes check.json (every figure), check.md (the summary against the issue's targets) and
# check.log (everything printed) into $OUT, or ./gpu-check-out when OUT is unset. Safe to re-run:
# it starts from a clean work folder and install target each time.
#
# On the GPU machine it first installs, without network, what that machine lacks: the wheels in
# .whl/ (torchsde, trampoline: `make gpu-wheels` fetches them here; carry ".whl" to the machine)
# and ehrbench itself (pip --no-deps --no-build-isolation into a private target that goes on
# PYTHONPATH and PATH). A missing wheel, a Python without CUDA or a failed install stops it within
# seconds. Then benchmarks/gpu/check.py runs the stages, each time-boxed; see its docstring.
#
# --dry-run (or EHRBENCH_GPU_CHECK_DRY=1): the same stages on the CPU at tiny sizes, no install;
# tests/test_gpu_check.py runs it in the default suite so this script cannot rot.
# PYTHON picks the interpreter (default python3); CHECK_BUDGET the total seconds (default 470).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT" || exit 2
START=$(date +%s)
PY="${PYTHON:-python3}"
OUT="${OUT:-$ROOT/gpu-check-out}"
TOTAL="${CHECK_BUDGET:-470}"
SITE="${TMPDIR:-/tmp}/ehrbench-site"
DRY="${EHRBENCH_GPU_CHECK_DRY:-0}"
INSTALL_ONLY=0
PASS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --install-only) INSTALL_ONLY=1 ;;
    --budget) TOTAL="$2"; shift ;;
    --budget=*) TOTAL="${1#*=}" ;;
    *) PASS+=("$1") ;;
  esac
  shift
done
mkdir -p "$OUT" || exit 2
export PYTHONUNBUFFERED=1

# A failure before check.py starts still leaves a check.json and a check.md behind.
fail() {
  local stage="$1" reason="${2//\"/\'}"
  reason="${reason//$'\n'/ }"
  printf '{"status": "failed", "stage": "%s", "reason": "%s", "dry_run": %s, "seconds": %s}\n' \
    "$stage" "${reason//\\//}" "$([ "$DRY" = 1 ] && echo true || echo false)" "$(( $(date +%s) - START ))" > "$OUT/check.json"
  printf '# GPU device check (benchmarks/gpu/check.sh)\n\n**Failed at %s**: %s\n' "$stage" "$reason" > "$OUT/check.md"
  echo "check.sh: failed at $stage: $reason" >&2
  exit 1
}

install() {
  echo "== install (python: $(command -v "$PY"), target $SITE)"
  "$PY" -c 'import sys; assert sys.version_info >= (3, 10), sys.version' 2>/dev/null \
    || fail install "$PY is not Python 3.10 or newer"
  local have_torchsde=0
  "$PY" -c 'import torchsde' 2>/dev/null && have_torchsde=1
  if [ "$have_torchsde" = 0 ]; then  # the wheels first: checking them takes no time
    local missing=()
    shopt -s nullglob
    for name in torchsde trampoline; do
      set -- .whl/"$name"-*.whl
      [ "$#" -eq 1 ] || missing+=("$name (found $#)")
    done
    shopt -u nullglob
    [ ${#missing[@]} -eq 0 ] || fail install "need exactly one wheel each in .whl/ of: ${missing[*]}; run 'make gpu-wheels' where pip works and carry .whl"
  fi
  local cuda
  cuda=$(timeout 120 "$PY" -c '
import torch
assert torch.cuda.is_available(), f"torch {torch.__version__} sees no CUDA device"
x = torch.ones(1 << 20, device="cuda")
print(torch.cuda.get_device_name(0), torch.__version__, int(x.sum().item()))' 2>&1) \
    || fail install "CUDA is not usable from $PY: $(echo "$cuda" | tail -n 3)"
  echo "CUDA: $cuda"
  rm -rf "$SITE" && mkdir -p "$SITE" || fail install "cannot create $SITE"
  if [ "$have_torchsde" = 0 ]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --root-user-action=ignore \
      --target "$SITE" .whl/*.whl || fail install "pip could not install the wheels in .whl/"
  fi
  if ! "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --no-cache-dir \
      --root-user-action=ignore --target "$SITE" . ; then
    echo "pip could not build ehrbench here; putting the checkout on the path with its entry points instead"
    "$PY" - "$SITE" "$ROOT" <<'EOF' || fail install "could not put ehrbench on the path"
import sys, tomllib, pathlib
site, root = map(pathlib.Path, sys.argv[1:])
project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
(site / "ehrbench").symlink_to(root / "ehrbench")
(site / "ehrbench_plugins").symlink_to(root / "plugins")
info = site / f"ehrbench-{project['version']}.dist-info"
info.mkdir()
(info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: ehrbench\nVersion: {project['version']}\n")
groups = {"console_scripts": project["scripts"], **project["entry-points"]}
(info / "entry_points.txt").write_text("".join(
    f"[{g}]\n" + "".join(f"{k} = {v}\n" for k, v in items.items()) + "\n" for g, items in groups.items()))
(site / "bin").mkdir(exist_ok=True)
script = site / "bin" / "ehrbench"
script.write_text(f"#!{sys.executable}\nimport sys\nfrom ehrbench.cli import main\nsys.exit(main())\n")
script.chmod(0o755)
EOF
  fi
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  export PATH="$SITE/bin:$PATH"
  local check
  check=$(cd / && "$PY" -c '
import importlib.metadata as md, torchsde, ehrbench_plugins
names = {e.name for e in md.entry_points(group="ehrbench")}
assert {"scoehr", "raw_diffusion", "medgan"} <= names, names
print("torchsde", torchsde.__version__, "| ehrbench entry points:", ", ".join(sorted(names)))' 2>&1) \
    || fail install "the installed ehrbench does not import or register its plugins: $(echo "$check" | tail -n 3)"
  echo "$check"
  command -v ehrbench >/dev/null || fail install "the ehrbench console script is not on PATH"
  echo "== install: ok in $(( $(date +%s) - START )) s"
}

main() {
  echo "check.sh: $(date -u +%FT%TZ), root $ROOT, out $OUT, dry run $DRY, budget ${TOTAL}s"
  if [ "$DRY" = 1 ]; then
    PASS+=(--dry-run)
  else
    install
    # cuBLAS picks the same reduction order run after run with this workspace setting.
    export CUBLAS_WORKSPACE_CONFIG="${CUBLAS_WORKSPACE_CONFIG:-:4096:8}"
  fi
  [ "$INSTALL_ONLY" = 1 ] && return 0
  local left=$(( TOTAL - ($(date +%s) - START) ))
  "$PY" benchmarks/gpu/check.py --out "$OUT" --budget "$left" ${PASS[@]+"${PASS[@]}"}
}

main 2>&1 | tee "$OUT/check.log"
exit "${PIPESTATUS[0]}"
