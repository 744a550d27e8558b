#!/usr/bin/env python3
"""Wall time of short commands, run alternately (interleaved), so that the
load of a busy machine falls on each command alike.

    scripts/interleave.py [--runs N] [--warmup W] CMD_A CMD_B [CMD_C ...]

Each round runs every command once, in turn (the order rotates each round);
each run is one posix_spawn + waitpid (stdout and stderr to /dev/null, no
shell), timed with time.perf_counter_ns. Prints min, median and mean per
command, and each command's min and median as a ratio of the last command's
(the baseline, e.g. `cat FILE`). Every command must exit 0.

Used for docs/BENCHMARKS.md, "CLI cache hit vs `cat`".
"""

import argparse
import os
import shlex
import statistics
import sys
import time


def run_once(argv, devnull):
    actions = [
        (os.POSIX_SPAWN_DUP2, devnull, 1),
        (os.POSIX_SPAWN_DUP2, devnull, 2),
    ]
    start = time.perf_counter_ns()
    pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=actions)
    _, status = os.waitpid(pid, 0)
    elapsed = time.perf_counter_ns() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{shlex.join(argv)} failed (status {status})")
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300, help="runs of each command")
    parser.add_argument("--warmup", type=int, default=20, help="untimed rounds first")
    parser.add_argument("commands", nargs="+", help="commands (shell words), baseline last")
    args = parser.parse_args()
    if len(args.commands) < 2:
        parser.error("two commands at least")
    argvs = [shlex.split(c) for c in args.commands]
    devnull = os.open(os.devnull, os.O_WRONLY)
    times = [[] for _ in argvs]
    for round_ in range(args.warmup + args.runs):
        order = list(range(len(argvs)))
        shift = round_ % len(order)
        order = order[shift:] + order[:shift]
        for i in order:
            t = run_once(argvs[i], devnull)
            if round_ >= args.warmup:
                times[i].append(t)
    base_min = min(times[-1])
    base_med = statistics.median(times[-1])
    for command, ts in zip(args.commands, times):
        lo, med, mean = min(ts), statistics.median(ts), statistics.fmean(ts)
        print(
            f"{lo / 1e6:7.3f} ms min  {med / 1e6:7.3f} ms median  {mean / 1e6:7.3f} ms mean"
            f"  min ratio {lo / base_min:5.2f}x  median ratio {med / base_med:5.2f}x  {command}"
        )


if __name__ == "__main__":
    main()
