#!/usr/bin/env bash
# Creates /work/main/bench-env (gitignored): the pinned CPU torch, timm without its torchvision dependency (a stub
# stands in, see torchvision_stub.py), and vitnas itself (editable, no deps). timm never becomes a project dependency.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python3 -m venv "$root/bench-env"
pip="$root/bench-env/bin/pip"
"$pip" install -q torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu || "$pip" install -q torch==2.13.0
"$pip" install -q --no-deps timm
"$pip" install -q pyyaml huggingface_hub safetensors typer rich pillow numpy
"$pip" install -q --no-deps -e "$root"
site="$("$root/bench-env/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
mkdir -p "$site/torchvision"
cp "$root/benchmarks/torchvision_stub.py" "$site/torchvision/__init__.py"
"$root/bench-env/bin/python" -c "import timm, vitnas.search_spaces.model; print('bench-env ready: timm', timm.__version__)"
