#!/usr/bin/env bash
# Run HERE, in a checkout with .venv/ and the internet: everything benchmarks/gpu_check.py needs on the
# lent GPU machine beyond what its Python (3.12, torch 2.11+cu130, numpy, scikit-learn, pluggy, rich,
# pyyaml, opencv, nvidia-ml-py, ...) already holds, packed to travel with the working tree (64 MiB a
# call; nothing can be fetched there). docs/gpu.md has the device commands.
#
#   benchmarks/gpu_wheels.sh              # .whl/ (the wheels) and .gpu/ (what travels)
#   PYV=3.11 GPU=/tmp/gpu311 benchmarks/gpu_wheels.sh --no-pack   # the same set for this machine's
#                                         # Python, unpacked, to try the device procedure here
#
# What travels is not the wheels themselves: PyAV (36 MB) and polars' runtime (54 MB) alone are over
# 64 MiB as zip files, so they are installed here (pip --target, for the device's Python and
# platform) and packed with xz, which takes a third off:
#   .gpu/site.tar.xz   third-party packages (repacked only when the wheel set changes; xz: minutes)
#   .gpu/fvc/*.whl     fvc and its plugins, built from this working tree on every run (seconds)
#   .gpu/ray.tar.xz    Ray (its 79 MB wheel less Java, RLlib, Data, Serve, Tune, Train, LLM), for a
#                      second call: it does not fit beside the rest.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=${PY:-$ROOT/.venv/bin/python}
PYV=${PYV:-3.12}
WHL=${WHL:-$ROOT/.whl/py$PYV}
GPU=${GPU:-$ROOT/.gpu}
PACK=1
[ "${1:-}" = "--no-pack" ] && PACK=0
LIMIT=$((64 * 1024 * 1024))

# Versions: those this project's tests run with (requirements.txt resolves them), except torchcodec,
# which must match the device's torch 2.11 (PyPI's build: CPU decoding; its CUDA build is on
# download.pytorch.org only).
BASE=(av==18.1.0 polars==2.1.0 polars-runtime-32==2.1.0 pydantic==2.14.4 pydantic-core==2.50.5
      annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions==4.16.0 omegaconf==2.4.0
      torchcodec==0.11.0)
RAY=(ray==2.60.0 jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.9.1)
# fvc's own distributions the check imports (mlflow, duckdb and report are not needed: trackers [console]).
FVC=(. plugins/loaders plugins/naive_cnn plugins/video_models plugins/torchcodec plugins/faces plugins/ray_executor
     plugins/timm_models)
PLATFORM=(--python-version "$PYV" --implementation cp --only-binary=:all:
          --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
          --platform manylinux2014_x86_64 --platform manylinux1_x86_64)

mkdir -p "$WHL/base" "$WHL/ray" "$GPU/fvc"
echo "== wheels into $WHL"
"$PY" -m pip download -q --no-deps "${PLATFORM[@]}" -d "$WHL/base" "${BASE[@]}"
"$PY" -m pip download -q --no-deps "${PLATFORM[@]}" -d "$WHL/ray" "${RAY[@]}"
rm -f "$GPU"/fvc/*.whl
"$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$GPU/fvc" "${FVC[@]}"
rm -rf "$ROOT"/build "$ROOT"/plugins/*/build  # setuptools' leftovers

# Keep one version of each: two wheels of one name stop the whole install there.
for dir in "$WHL/base" "$WHL/ray"; do
  dupes=$(ls "$dir" | sed -E 's/-[0-9].*//' | tr '[:upper:]-' '[:lower:]_' | sort | uniq -d)
  [ -z "$dupes" ] || { echo "error: two versions of $dupes in $dir; delete the older" >&2; exit 1; }
done

install() {  # install WHEELS... into $1, for the device's Python and platform, no .pyc
  local target=$1; shift
  rm -rf "$target"; mkdir -p "$target"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$target" "${PLATFORM[@]}" "$@"
}

STAGE=$(mktemp -d /tmp/fvc_gpu_wheels.XXXXXX)
trap 'rm -rf "$STAGE"' EXIT
install "$STAGE/site" "$WHL"/base/*.whl
install "$STAGE/ray" "$WHL"/ray/*.whl
# Ray without what fvc's executor never imports: Java, RLlib, Data, Serve, Tune, Train, LLM.
rm -rf "$STAGE"/ray/ray/{jars,rllib,data,serve,tune,train,llm}

if [ "$PACK" = 0 ]; then
  rm -rf "$GPU/site" "$GPU/ray"
  mv "$STAGE/site" "$GPU/site"; mv "$STAGE/ray" "$GPU/ray"
  echo "unpacked: $GPU/site $GPU/ray $GPU/fvc"
  exit 0
fi

stamp=$(ls "$WHL/base" | sha256sum | cut -c1-16)
if [ ! -f "$GPU/site.tar.xz" ] || [ "$(cat "$GPU/site.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "== packing site.tar.xz (xz -9, a few minutes)"
  tar -C "$STAGE/site" -cf - . | xz -9 -T2 > "$GPU/site.tar.xz.part" && mv "$GPU/site.tar.xz.part" "$GPU/site.tar.xz"
  echo "$stamp" > "$GPU/site.stamp"
fi
stamp=$(ls "$WHL/ray" | sha256sum | cut -c1-16)
if [ ! -f "$GPU/ray.tar.xz" ] || [ "$(cat "$GPU/ray.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "== packing ray.tar.xz (xz -9, a few minutes)"
  tar -C "$STAGE/ray" -cf - . | xz -9 -T2 > "$GPU/ray.tar.xz.part" && mv "$GPU/ray.tar.xz.part" "$GPU/ray.tar.xz"
  echo "$stamp" > "$GPU/ray.stamp"
fi

# What travels in a call: the working tree (tracked and untracked, not ignored) and what it carries.
tree=$(git ls-files -co --exclude-standard -z | xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')
size() { du -cb "$@" | tail -1 | cut -f1; }
{
  echo "wheels (zip, as downloaded or built):"
  for f in "$WHL"/base/*.whl "$WHL"/ray/*.whl "$GPU"/fvc/*.whl; do printf '  %10d  %s\n' "$(stat -c %s "$f")" "$(basename "$f")"; done
  echo "what travels:"
  printf '  %10d  working tree\n' "$tree"
  printf '  %10d  .gpu/site.tar.xz\n' "$(size "$GPU/site.tar.xz")"
  printf '  %10d  .gpu/fvc\n' "$(size "$GPU/fvc")"
  printf '  %10d  .gpu/ray.tar.xz\n' "$(size "$GPU/ray.tar.xz")"
} | tee "$GPU/MANIFEST.txt"
call1=$((tree + $(size "$GPU/site.tar.xz" "$GPU/fvc")))
call2=$((tree + $(size "$GPU/ray.tar.xz")))
awk -v a="$call1" -v b="$call2" 'BEGIN {printf "call 1 (the check): %.1f MiB of 64; call 2 (ray): %.1f MiB of 64\n", \
  a / 1048576, b / 1048576}' | tee -a "$GPU/MANIFEST.txt"
if [ "$call1" -ge "$LIMIT" ]; then echo "error: call 1 is over 64 MiB" >&2; exit 1; fi
if [ "$call2" -ge "$LIMIT" ]; then echo "warning: Ray does not fit a call: its section will say skipped" >&2; fi
