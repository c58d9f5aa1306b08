#!/usr/bin/env bash
# The device procedure of docs/gpu.md, tried on this machine as far as it goes without a GPU: the same
# wheel set for this machine's Python, installed the way the device installs it (--target, no index,
# no deps), run by an EMPTY virtual environment's Python that sees only
#   - those packages (the bundle, fvc's own wheels, Ray stripped as it travels), and
#   - the packages the device's image already holds (device/README KINDS.md), linked from .venv,
# then `gpu_check.py --dry`. A package the check needs but the bundle lacks fails here as it would there.
#
#   benchmarks/gpu_try_here.sh [gpu_check.py options]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PYV=$(.venv/bin/python -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
T=${T:-/tmp/fvc_gpu_try}
PYV=$PYV GPU=$T benchmarks/gpu_wheels.sh --no-pack 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$T/site" "$T"/fvc/*.whl

# The device image's packages (those the check can reach), linked from this machine's .venv.
rm -rf "$T/device" && mkdir -p "$T/device"
.venv/bin/python - "$T/device" <<'EOF'
import importlib.metadata as md, os, sys
from pathlib import Path

target = Path(sys.argv[1])
# The image's package list as the device README (KINDS.md) gave it on 2026-11-17.
device = """absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build 
certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core 
cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock 
flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx 
huggingface-hub humanize hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt 
jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities 
linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes 
mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind narwhals networkx ninja numba 
numba-cuda numpy numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime 
nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse 
nvidia-cusparselt-cu13 nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx 
onnx-ir onnxruntime onnxscript opencv-python-headless optax opt-einsum opt-einsum-fx optimistix 
orbax-checkpoint packaging pandas pathspec patsy peft pillow pip pluggy portalocker prometheus-client 
propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions 
pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist python-dateutil pytorch-lightning 
pyyaml regex requests rich sacrebleu safetensors scikit-build-core scikit-image scikit-learn scipy seaborn 
sentencepiece sentence-transformers setuptools shellingham simplejson six sortedcontainers statsmodels sympy 
tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm tokenizers 
toolz torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers treescope 
triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash 
yarl zipp""".split()
for name in device:
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        continue
    tops = {Path(f.parts[0]) for f in dist.files or [] if f.parts and not f.parts[0].endswith(".pth")
            and f.parts[0] not in ("..", "__pycache__") and not str(f).startswith("../")}
    for top in tops:
        src = Path(dist.locate_file(top))
        if src.exists() and not (target / top).exists():
            os.symlink(src, target / top)
EOF

rm -rf "$T/venv" && "$(.venv/bin/python -c 'import sys; print(sys._base_executable)')" -m venv --without-pip "$T/venv"
echo "== an empty venv ($("$T/venv/bin/python" -c 'import sys; print(sys.version.split()[0])')), PYTHONPATH = site : ray : device"
PYTHONPATH="$T/site:$T/ray:$T/device" OMP_NUM_THREADS=1 "$T/venv/bin/python" benchmarks/gpu_check.py --dry \
  --out "$T/gpu_check_dry.json" "$@"
