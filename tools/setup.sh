#!/usr/bin/env bash
# Creates the project's virtual environment with the OpenMMLab stack mcl_plugin is tested on:
#   torch 2.14.1 + torchvision 0.29.1, mmcv 2.1.0 with compiled ops (built from the PyPI sdist,
#   patched for C++20), mmengine 0.10.7, mmdet 3.3.0, mmpretrain 1.2.0, openmim 0.3.9 (without
#   its opendatalab dataset downloader), setuptools 79, and the plugin in editable (develop) mode.
#
# Idempotent: a ready environment is recognised by a stamp and the script returns in seconds.
# The compiled mmcv wheel is cached in $MCL_CACHE/wheels/<torch>-<python abi>/ and reused by
# later clones. Environment knobs:
#   MCL_VENV   venv location            (default: <repo>/.venv)
#   MCL_CACHE  wheel/data cache          (default: ~/.cache/mcl_plugin)
#   PYTHON     interpreter for the venv  (default: python3)
#   MAX_JOBS   parallel compile jobs     (default: nproc)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${MCL_VENV:-$ROOT/.venv}
CACHE=${MCL_CACHE:-$HOME/.cache/mcl_plugin}
PYTHON=${PYTHON:-python3}
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0
START=$(date +%s)

say() { printf '[setup %4ss] %s\n' "$(( $(date +%s) - START ))" "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# Everything that changes what gets installed goes into the stamp.
# (and the checkout itself: a venv shared by two clones must be re-pointed at this one)
STAMP_KEY=$( (cat "$ROOT/tools/setup.sh" "$ROOT/requirements/"*.txt "$ROOT/setup.py"; echo "$ROOT") \
  | sha1sum | cut -c1-16)
STAMP=$VENV/.mcl_plugin_setup
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$STAMP_KEY" ] && [ -x "$VENV/bin/python" ]; then
  if "$VENV/bin/python" -c 'import mcl_plugin, mmcv.ops' >/dev/null 2>&1; then
    say "environment $VENV is ready (stamp $STAMP_KEY); nothing to do"
    exit 0
  fi
  say "stamp found but 'import mcl_plugin, mmcv.ops' fails: repairing"
fi

# ---- preflight: name the missing piece instead of failing deep inside a build -------------
command -v "$PYTHON" >/dev/null || die "no '$PYTHON' on PATH. Install Python 3.9-3.11 or set PYTHON=/path/to/python3."
PYV=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null \
  || die "Python $PYV lacks venv/ensurepip. On Debian/Ubuntu: apt-get install python3-venv"
command -v g++ >/dev/null || die "no C++ compiler (g++) on PATH; mmcv's ops must be compiled. On Debian/Ubuntu: apt-get install g++"
INC=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
[ -f "$INC/Python.h" ] || die "Python headers missing ($INC/Python.h). On Debian/Ubuntu: apt-get install python3-dev"
mkdir -p "$CACHE" "$(dirname "$VENV")"
FREE_GB=$(df -Pk "$(dirname "$VENV")" | awk 'NR==2 {print int($4/1048576)}')
[ "$FREE_GB" -ge 10 ] || die "only ${FREE_GB} GiB free under $(dirname "$VENV"); the environment needs ~7 GiB (torch is a CUDA build) plus ~2 GiB to compile mmcv."

# ---- venv + torch ----------------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  say "creating venv $VENV with $PYTHON ($PYV)"
  "$PYTHON" -m venv "$VENV"
fi
PIP=(pip_quiet "$VENV/bin/python" -m pip --disable-pip-version-check -q)
# Machines with a local wheel mirror print one "Location ... is ignored" line per package.
pip_quiet() {
  local rc=0
  "$@" > >(grep -v "^WARNING: Location '" || true) 2>&1 || rc=$?
  return $rc
}
"${PIP[@]}" install -U 'pip<26' >/dev/null
if ! "$VENV/bin/python" -c "import torch, torchvision, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  say "installing torch==$TORCH_VERSION torchvision==$TORCHVISION_VERSION (large download on machines without a local copy)"
  "${PIP[@]}" install "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" \
    || die "pip could not install torch==$TORCH_VERSION torchvision==$TORCHVISION_VERSION (see the pip error above)"
fi
# Build helpers. setuptools: >= 77.0.3 is what torch 2.14.1 requires; < 80 keeps pkg_resources
# (imported by mmcv's setup.py and by mim) and the legacy `setup.py develop` (egg-link) that lets
# `mim train mcl_plugin` find mcl_plugin/.mim. openmim's own dependency chain (opendatalab ->
# openxlab) pins setuptools~=60.2, which made pip print a resolver ERROR against torch: mim never
# imports opendatalab (only `mim download` of datasets would need it), so openmim is installed
# below with --no-deps plus its real runtime dependencies, and a venv made by an older version of
# this script loses opendatalab/openxlab here, before setuptools moves.
for pkg in opendatalab openxlab; do
  if "$VENV/bin/python" -c "import importlib.metadata as m, sys; m.version(sys.argv[1])" "$pkg" 2>/dev/null; then
    "${PIP[@]}" uninstall -y "$pkg"
  fi
done
"${PIP[@]}" install 'setuptools>=77.0.3,<80' wheel ninja psutil

# ---- mmcv with compiled ops, from a wheel cached per torch version / python ABI -------------
ABI=$("$VENV/bin/python" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
WHEEL_DIR=$CACHE/wheels/torch$TORCH_VERSION-$ABI-$(uname -m)
have_mmcv_ops() { "$VENV/bin/python" - <<EOF 2>/dev/null
import mmcv, torch
from mmcv.ops import RoIAlign, nms
assert mmcv.__version__ == '$MMCV_VERSION'
boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.]]); scores = torch.tensor([.9, .8])
assert nms(boxes, scores, 0.5)[1].tolist() == [0]
EOF
}
if ! have_mmcv_ops; then
  WHEEL=$(ls "$WHEEL_DIR"/mmcv-$MMCV_VERSION-*.whl 2>/dev/null | head -1 || true)
  if [ -z "$WHEEL" ]; then
    SRC=$CACHE/src
    rm -rf "$SRC" && mkdir -p "$SRC"
    say "downloading the mmcv==$MMCV_VERSION sdist (mmcv publishes no wheels on PyPI)"
    "${PIP[@]}" download --no-deps --no-binary :all: --no-build-isolation -d "$SRC" "mmcv==$MMCV_VERSION" \
      || die "could not download the mmcv==$MMCV_VERSION sdist from PyPI"
    tar -xzf "$SRC"/mmcv-$MMCV_VERSION.tar.gz -C "$SRC"
    TREE=$SRC/mmcv-$MMCV_VERSION
    # torch >= 2.14 headers refuse anything below C++20; mmcv 2.1.0 hard-codes -std=c++17.
    sed -i -e "s/'-std=c++17'/'-std=c++20'/g" -e "s/'-std=c++14'/'-std=c++20'/g" "$TREE/setup.py"
    grep -q "c++20" "$TREE/setup.py" || die "could not patch $TREE/setup.py to C++20 (layout changed?)"
    # A CPU build compiles pytorch/*.cpp and pytorch/cpu/*.cpp (77 files for mmcv 2.1.0).
    NSRC=$(( $(ls "$TREE"/mmcv/ops/csrc/pytorch/*.cpp | wc -l) + $(ls "$TREE"/mmcv/ops/csrc/pytorch/cpu/*.cpp | wc -l) ))
    LOG=$CACHE/mmcv-build.log
    say "compiling mmcv ops (~$NSRC C++ files, ${MAX_JOBS:-$(nproc)} jobs; ~15 min on 2 cores). Log: $LOG"
    mkdir -p "$WHEEL_DIR.tmp"
    ( cd "$TREE" && MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
        "$VENV/bin/python" -m pip wheel --no-build-isolation --no-deps -v -w "$WHEEL_DIR.tmp" . ) >"$LOG" 2>&1 &
    BPID=$!
    while kill -0 "$BPID" 2>/dev/null; do
      sleep 30
      DONE=$(find "$TREE/build" -name '*.o' 2>/dev/null | wc -l)
      say "  compiling mmcv: $DONE/$NSRC objects"
    done
    if ! wait "$BPID"; then
      echo "---- last compiler errors (full log: $LOG) ----" >&2
      grep -E 'error:|Error|No space' "$LOG" | head -20 >&2 || tail -30 "$LOG" >&2
      die "mmcv build failed (see the lines above)."
    fi
    mkdir -p "$WHEEL_DIR" && mv "$WHEEL_DIR.tmp"/mmcv-*.whl "$WHEEL_DIR"/ && rm -rf "$WHEEL_DIR.tmp" "$SRC"
    WHEEL=$(ls "$WHEEL_DIR"/mmcv-$MMCV_VERSION-*.whl | head -1)
    say "built $(basename "$WHEEL") -> cached in $WHEEL_DIR"
  else
    say "reusing the cached mmcv wheel $WHEEL"
  fi
  # --no-deps: mmcv's own requirements come with requirements/runtime.txt below.
  "${PIP[@]}" install --no-deps --force-reinstall "$WHEEL"
fi

# ---- the rest of the stack and the plugin -----------------------------------------------------
say "installing mmengine / mmdet / mmpretrain / openmim / test tools"
# requirements/runtime.txt without openmim (see the setuptools note above), plus openmim's runtime
# dependencies except opendatalab; then openmim itself with --no-deps (pip skips its conflict
# report with --no-deps, so the missing opendatalab is not reported).
OPENMIM=$(grep -E '^openmim' "$ROOT/requirements/runtime.txt" | cut -d'#' -f1 | tr -d ' ')
RUNTIME_REQS=$(mktemp "$CACHE/runtime-without-openmim.XXXXXX")
grep -vE '^openmim' "$ROOT/requirements/runtime.txt" > "$RUNTIME_REQS"
"${PIP[@]}" install --no-build-isolation "mmcv==$MMCV_VERSION" -r "$RUNTIME_REQS" -r "$ROOT/requirements/tests.txt" \
    click colorama model-index pandas requests rich tabulate \
  || { rm -f "$RUNTIME_REQS"; die "pip could not install requirements/runtime.txt (see the pip error above)"; }
rm -f "$RUNTIME_REQS"
"${PIP[@]}" install --no-deps "${OPENMIM:-openmim}" || die "pip could not install ${OPENMIM:-openmim}"
# SoCo's selective search needs cv2.ximgproc (opencv-contrib). mmcv/mmdet pull opencv-python,
# which provides the same cv2 package without it: install the contrib build last, over it.
"${PIP[@]}" install --no-deps --force-reinstall "$(grep -E '^opencv-contrib-python-headless' "$ROOT/requirements/opencv.txt")"
"$VENV/bin/python" -c 'import cv2; cv2.ximgproc.segmentation.createSelectiveSearchSegmentation' \
  || die "cv2 has no ximgproc after installing opencv-contrib-python-headless (another opencv package overwrote it?)"
# Legacy develop install (setuptools < 64): the distribution's location is the repo root, which is
# what `mim train mcl_plugin ...` needs to find mcl_plugin/.mim/{configs,tools}.
# (pip's PEP 660 path needs setuptools >= 64, whose editable installs hide the location from mim.)
( cd "$ROOT" && "$VENV/bin/python" setup.py -q develop --no-deps >/dev/null 2>"$CACHE/develop.log" ) \
  || { cat "$CACHE/develop.log" >&2; die "editable (develop) install of $ROOT failed"; }
have_mmcv_ops || die "mmcv.ops does not work after the install (RoIAlign/nms check failed)"
"$VENV/bin/python" -c 'import mcl_plugin, mmdet.models, mmpretrain.models' \
  || die "the stack is installed but 'import mcl_plugin, mmdet.models, mmpretrain.models' fails (see above)"
echo "$STAMP_KEY" > "$STAMP"
say "done: $VENV ($("$VENV/bin/python" -c 'import torch, mmcv, mmdet, mmpretrain, mmengine; print(f"torch {torch.__version__}, mmcv {mmcv.__version__}, mmengine {mmengine.__version__}, mmdet {mmdet.__version__}, mmpretrain {mmpretrain.__version__}")'))"
