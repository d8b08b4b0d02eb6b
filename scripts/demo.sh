#!/usr/bin/env bash
# The README's main job: installs the dependencies, builds, and streams text
# from the bundled KJV demo model (models/kjv-tiny, GPTQ-Int4, 5.6M parameters).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
./build/r1run -m models/kjv-tiny --raw -p "${1:-In the beginning}" -n 64 --temp 0.7 --seed 1
