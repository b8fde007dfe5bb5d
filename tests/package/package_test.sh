#!/usr/bin/env bash
# dtrain as a package: the ctest entries package.<step> (tests/package/CMakeLists.txt) run
#   package_test.sh <step> <build folder> <work folder>
# with DTRAIN_PKG_* in the environment (the source folder, the generator, the compiler, and the
# build's CMAKE_PREFIX_PATH with ':' between entries).
#
#   install    cmake --install <build> --prefix <work>/prefix; the headers, libraries, binary and
#              package config are there, the installed headers include only dtrain/ headers,
#              nothing installed for CMake names the source or build folder, and the exported
#              targets link other targets, not absolute library paths
#   comm_user  tests/package/comm_user configured against the prefix with find_package(Torch)
#              disabled (the comm component needs no LibTorch), built and run
#   own_loop   examples/own_loop configured against the prefix (component train), built, run by
#              the installed `dtrain launch --nproc 2`: both ranks print the same final loss, lower
#              than before training, and exit 0; its `// dtrain` lines number at most 10
#   bench      the installed `dtrain bench allreduce` finds the installed driver and peers
# Every command is bounded by timeout(1), so a hang fails the step.
set -euo pipefail

step=$1
build=$2
work=$3
src=${DTRAIN_PKG_SOURCE_DIR:?}
cmake=${DTRAIN_PKG_CMAKE:-cmake}
prefix=$work/prefix

fail() {
  echo "package.$step: FAIL: $*" >&2
  exit 1
}

# run <seconds> <log> <command...>: the command's output goes to <log>, shown if it fails.
run() {
  local limit=$1 log=$2
  shift 2
  if ! timeout "$limit" "$@" >"$log" 2>&1; then
    cat "$log" >&2
    fail "'$*' failed or ran past ${limit}s (log: $log)"
  fi
}

# configure <source> <binary folder> [cmake args...]: a separate project against the prefix.
configure() {
  local source=$1 binary=$2
  shift 2
  local args=(-S "$source" -B "$binary" -DCMAKE_BUILD_TYPE=Release
    "-DCMAKE_PREFIX_PATH=$prefix${DTRAIN_PKG_PREFIX_PATH:+;${DTRAIN_PKG_PREFIX_PATH//:/;}}")
  [[ -n ${DTRAIN_PKG_GENERATOR:-} ]] && args+=(-G "$DTRAIN_PKG_GENERATOR")
  [[ -n ${DTRAIN_PKG_CXX:-} ]] && args+=("-DCMAKE_CXX_COMPILER=$DTRAIN_PKG_CXX")
  [[ -n ${DTRAIN_PKG_LAUNCHER:-} ]] && args+=("-DCMAKE_CXX_COMPILER_LAUNCHER=$DTRAIN_PKG_LAUNCHER")
  rm -rf "$binary"
  run 180 "$binary.configure.log" "$cmake" "${args[@]}" "$@"
}

case $step in
  install)
    rm -rf "$prefix"
    mkdir -p "$work"
    run 120 "$work/install.log" "$cmake" --install "$build" --prefix "$prefix"
    for f in include/dtrain/communicator.h include/dtrain/error.h lib/libdtrain_core.a \
      lib/libdtrain_comm.a lib/cmake/dtrain/dtrainConfig.cmake \
      lib/cmake/dtrain/dtrainConfigVersion.cmake lib/cmake/dtrain/dtrainTargets.cmake bin/dtrain; do
      [[ -e $prefix/$f ]] || fail "$f is not installed"
    done
    # A public header that includes a private one (src/...) would not compile for a user.
    if grep -n '^#include "' "$prefix"/include/dtrain/*.h | grep -v '#include "dtrain/'; then
      fail "installed headers include headers that are not installed (above)"
    fi
    # The installed targets must point into the prefix, never back at this checkout or build.
    if grep -rn -e "$src" -e "$build" "$prefix/lib/cmake/dtrain"; then
      fail "the installed package config names the source or build folder (above)"
    fi
    # Their link interfaces name targets (found by the config), not this machine's library files.
    if grep -n 'INTERFACE_LINK_LIBRARIES "[^"]*/' "$prefix"/lib/cmake/dtrain/*Targets.cmake; then
      fail "the installed targets link absolute library paths (above)"
    fi
    ;;
  comm_user)
    configure "$src/tests/package/comm_user" "$work/comm_user" -DCMAKE_DISABLE_FIND_PACKAGE_Torch=ON
    run 300 "$work/comm_user.build.log" "$cmake" --build "$work/comm_user"
    run 60 "$work/comm_user.run.log" "$work/comm_user/comm_user"
    grep -q "allreduce sum 6 on every rank" "$work/comm_user.run.log" ||
      fail "comm_user did not report the sum: $(cat "$work/comm_user.run.log")"
    ;;
  own_loop)
    example=$src/examples/own_loop
    added=$(grep -v '^[[:space:]]*//' "$example/own_loop.cc" | grep -c '// dtrain' || true)
    ((added >= 1 && added <= 10)) || fail "own_loop.cc has $added lines marked // dtrain (1..10)"
    configure "$example" "$work/own_loop"
    run 300 "$work/own_loop.build.log" "$cmake" --build "$work/own_loop"
    log=$work/own_loop.run.log
    run 180 "$log" env OPENBLAS_NUM_THREADS=1 "$prefix/bin/dtrain" launch --nproc 2 \
      --timeout-ms 30000 -- "$work/own_loop/own_loop"
    for r in 0 1; do
      grep -q "^\[rank $r\] loss after training " "$log" || fail "rank $r printed no final loss: $(cat "$log")"
    done
    before=$(sed -n 's/^\[rank [01]\] loss before training //p' "$log" | sort -u)
    after=$(sed -n 's/^\[rank [01]\] loss after training //p' "$log" | sort -u)
    [[ $(wc -l <<<"$after") -eq 1 ]] || fail "the ranks ended with different losses: $after"
    [[ $(wc -l <<<"$before") -eq 1 ]] || fail "the ranks started from different losses: $before"
    awk -v a="$after" -v b="$before" 'BEGIN { exit !(a < 0.8 * b) }' ||
      fail "the loss did not fall (before $before, after $after)"
    echo "own_loop: 2 ranks, loss $before -> $after on both"
    ;;
  bench)
    log=$work/bench.log
    run 120 "$log" "$prefix/bin/dtrain" bench allreduce --world 2 --min 4KiB --max 4KiB \
      --iters 2 --warmup 1
    grep -q '^| 4 KiB |' "$log" || fail "no result row: $(cat "$log")"
    ;;
  *)
    fail "unknown step '$step' (install, comm_user, own_loop, bench)"
    ;;
esac
