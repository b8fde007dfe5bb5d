#!/usr/bin/env python3
"""Every command line in README.md's code blocks, run as written with small limits.

    readme_commands.py <source folder> <build folder> <work folder>

The README's fenced code blocks are its contract with a new user. Each line of them (comments
after `#` dropped) must match one RULE below, in README order; a line that matches none fails
the test, so a command added to the README without a way to run it here fails too. A rule
either runs the line -- `build/` becomes the build folder, placeholders become a real command,
and the limits it names are appended -- in one work folder shared by all lines (so
`--checkpoint-dir runs/a` and the `--resume auto` after it see the same folder), or names the
ctest entry that already runs exactly that line (the install block: tests/package).

Each command must exit 0 within its time limit; its output is shown when it does not.
"""
import os
import re
import shlex
import subprocess
import sys
import time

# Training commands stop after a few steps and print only the summary.
TRAIN_LIMITS = ["--max-steps", "6", "--quiet"]
BENCH_LIMITS = ["--world", "2", "--min", "4KiB", "--max", "16KiB", "--iters", "3",
                "--warmup", "1", "--peers", "none"]

# (pattern, action): action is ("run", extra arguments, seconds) or ("covered", ctest entry, why).
RULES = [
    (r"^make run$", ("make_run", [], 300)),
    (r"^make test$", ("covered", "(all)", "it is the command that runs this suite")),
    # The fault fires at step 40, so this one runs past it.
    (r"^build/dtrain run .*--fault kill:rank=\d+,step=(\d+)",
     ("run", ["--max-steps", "60", "--quiet"], 300)),
    # Resumes the checkpoint of the line before it (6 steps) and trains 6 more.
    (r"^build/dtrain run .*--resume auto", ("run", ["--max-steps", "12", "--quiet"], 180)),
    (r"^build/dtrain run( |$)", ("run", TRAIN_LIMITS, 180)),
    (r"^build/dtrain launch --nproc 2 -- CMD ARGS\.\.\.$", ("launch_placeholder", [], 60)),
    (r"^torchrun .* build/dtrain train ", ("run", TRAIN_LIMITS, 180)),
    (r"^mpirun .* build/dtrain train ", ("run", TRAIN_LIMITS, 180)),
    (r"^build/dtrain bench allreduce( |$)", ("run", BENCH_LIMITS, 180)),
    (r"^build/examples/\w+( \d+)?$", ("run", [], 180)),
    (r"^cmake --install build --prefix ", ("covered", "package.install", "tests/package")),
    (r"^cmake -S examples/own_loop -B own_loop-build ", ("covered", "package.own_loop", "")),
    (r"^cmake --build own_loop-build$", ("covered", "package.own_loop", "")),
    (r"^\S*/bin/dtrain launch --nproc 2 -- own_loop-build/own_loop$",
     ("covered", "package.own_loop", "")),
]


def readme_lines(text):
    """The command lines of the fenced code blocks, without comments and continuation lines."""
    lines, inside = [], False
    for raw in text.splitlines():
        if raw.startswith("```"):
            inside = not inside
            continue
        if not inside:
            continue
        line = raw.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def rule_of(line):
    for pattern, action in RULES:
        if re.search(pattern, line):
            return action
    return None


def main():
    src, build, work = (os.path.abspath(p) for p in sys.argv[1:4])
    with open(os.path.join(src, "README.md")) as f:
        lines = readme_lines(f.read())
    if len(lines) < 10:
        print(f"FAIL: only {len(lines)} command lines found in README.md's code blocks")
        return 1
    os.makedirs(work, exist_ok=True)
    subprocess.run(["rm", "-rf", os.path.join(work, "runs")], check=True)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    failures, ran, covered = [], 0, 0
    for line in lines:
        action = rule_of(line)
        if action is None:
            failures.append(f"no rule runs this README line: {line}")
            continue
        kind = action[0]
        if kind == "covered":
            covered += 1
            print(f"covered by {action[1]}: {line}")
            continue
        extra, limit = action[1], action[2]
        if kind == "make_run":
            # The Makefile's run target after its build (a no-op here: this build is current).
            argv = ["make", "-s", "-C", src, "run", f"BUILD={build}",
                    "RUN_ARGS=" + " ".join(TRAIN_LIMITS)]
        else:
            argv = shlex.split(line)
            if kind == "launch_placeholder":
                # CMD ARGS...: a program that checks the environment the launcher gives it.
                argv = argv[:argv.index("CMD")] + [
                    "sh", "-c", 'test "$WORLD_SIZE" = 2 && test -n "$RANK" && test -n "$MASTER_PORT"']
            argv = [os.path.join(build, a[len("build/"):]) if a.startswith("build/") else a
                    for a in argv] + extra
        start = time.monotonic()
        try:
            out = subprocess.run(argv, cwd=work, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, timeout=limit, text=True)
            rc, log = out.returncode, out.stdout
        except subprocess.TimeoutExpired as e:
            partial = e.stdout or ""
            rc = f"none (killed at its {limit}s limit)"
            log = partial.decode(errors="replace") if isinstance(partial, bytes) else partial
        seconds = time.monotonic() - start
        ran += 1
        if rc != 0:
            failures.append(f"exit {rc} after {seconds:.1f}s: {shlex.join(argv)}\n{log[-4000:]}")
            print(f"FAIL ({seconds:.1f}s): {line}")
        else:
            print(f"ok ({seconds:.1f}s): {line}")
    print(f"{ran} README lines run, {covered} covered by other tests, {len(failures)} failed")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
