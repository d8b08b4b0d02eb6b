#!/bin/sh
# Builds the kernel test (tests/test_kernels.c with the portable and NEON kernels)
# for aarch64 with Debian's cross compiler, statically, and runs it under
# qemu-aarch64. Only the kernel files are built: the library's other
# dependencies are not installed for arm64.
#
#   tests/neon-qemu.sh [SOURCE_DIR [BUILD_DIR]]
#
# Exits 77 (ctest: skipped) when the cross compiler or qemu-aarch64 is missing;
# scripts/install-deps.sh installs gcc-aarch64-linux-gnu, libc6-dev-arm64-cross
# and qemu-user. R1_AARCH64_CC and R1_QEMU_AARCH64 override the tool names.
set -eu
src=${1:-$(dirname "$0")/..}
out=${2:-${TMPDIR:-/tmp}/r1-neon-$$}
cc=${R1_AARCH64_CC:-aarch64-linux-gnu-gcc}
qemu=${R1_QEMU_AARCH64:-qemu-aarch64}
for tool in "$cc" "$qemu"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "neon-qemu: $tool not found, skipping (install gcc-aarch64-linux-gnu qemu-user)"
        exit 77
    fi
done
mkdir -p "$out"
flags="-O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -fopenmp -I$src/include -I$src/core -I$src/cpu -I$src/tests"
objs=""
for f in "$src"/cpu/arm/*_neon.c; do
    o="$out/$(basename "$f" .c).o"
    "$cc" $flags -march=armv8.2-a+dotprod+fp16 -c "$f" -o "$o"
    objs="$objs $o"
done
# (static libgomp makes the linker warn about dlopen; the log is shown on failure only)
if ! "$cc" $flags "$src/tests/test_kernels.c" "$src/cpu/kernels.c" "$src/cpu/q4_scalar.c" \
    "$src/core/tensor.c" "$src/core/error.c" $objs -o "$out/test_kernels" -static -lm \
    >"$out/link.log" 2>&1; then
    cat "$out/link.log"
    exit 1
fi
# qemu's "max" CPU has the ASIMD dot product, so the NEON table is tested, not skipped
rc=0
"$qemu" -cpu max "$out/test_kernels" >"$out/test.log" 2>&1 || rc=$?
cat "$out/test.log"
[ $rc -eq 0 ] || exit $rc
grep -q "^neon: tested" "$out/test.log" || { echo "neon-qemu: the NEON table was not tested"; exit 1; }
