#!/usr/bin/env bash
# Installs a GUI build of OpenCV (opencv-python, the same version as the installed
# opencv-python-headless) into <prefix>/opencv-gui, OUTSIDE site-packages: the environment keeps
# the headless build, and the preview-window test puts this folder first on PYTHONPATH of the
# daemon it starts under Xvfb. Usage: bash .ci/preview-opencv.sh [PYTHON]
set -euo pipefail
PY=${1:-python3}
prefix=$("$PY" -c 'import sys; print(sys.prefix)')
target="$prefix/opencv-gui"
version=$("$PY" -c 'import importlib.metadata as m; print(m.version("opencv-python-headless"))')
[ -f "$target/.installed-$version" ] && exit 0
rm -rf "$target"
"$PY" -m pip install -q --no-deps --target "$target" "opencv-python==$version"
touch "$target/.installed-$version"
echo "installed opencv-python $version (highgui) into $target"
