#!/usr/bin/env python3
"""loadtest/cpu_split.py: each process's time on one CPU, from `perf script -F tid,time,event,ip,trace`
of a `perf record -C CPU -e sched:sched_switch -c 1 -e cpu-clock/period=N/` run, read on stdin.

Owns the arithmetic only (this split, and `ceilings`, what the split allows a proxy's throughput);
loadtest/compare runs perf and the load. The time between two context
switches on the CPU belongs to the thread switched out at the second, which makes each thread's time
exact (the first and last stretches, before the first switch and after the last, are left out). The
cpu-clock samples, taken at a fixed period whoever runs, split a group's time into user and kernel by
where they landed. Prints one JSON object: the window covered, and per group (threads named on the
command line; "idle" is the CPU's idle thread, "other" everything else) its seconds on the CPU, its
samples and how many of them were in user space; with --proc, the /proc times read around the run
(the target's user and system seconds, then the mock's, before and after) as given.

Usage: cpu_split.py [--proc "BEFORE AFTER"] --group NAME="TID TID ..." [--group ...] < perf-script
"""
import argparse
import json
import re
import sys

SWITCH = re.compile(r"sched:sched_switch:.*\bprev_pid=(\d+)\b.*==>.*\bnext_pid=(\d+)\b")
# x86-64 kernel addresses live in the upper half of the address space.
KERNEL_START = 0xFFFF800000000000


def parse_groups(specs):
    owner = {}
    names = []
    for spec in specs:
        name, _, tids = spec.partition("=")
        names.append(name)
        for tid in tids.split():
            owner[int(tid)] = name
    return names, owner


def split(lines, owner):
    seconds, samples, user = {}, {}, {}
    last_switch = first_switch = None

    def group(tid):
        return "idle" if tid == 0 else owner.get(tid, "other")

    for line in lines:
        fields = line.split()
        if len(fields) < 4 or not fields[1].endswith(":"):
            continue
        tid, time = int(fields[0]), float(fields[1][:-1])
        if fields[2] == "sched:sched_switch:":
            m = SWITCH.search(line)
            if not m:
                continue
            if last_switch is not None:
                g = group(int(m.group(1)))
                seconds[g] = seconds.get(g, 0.0) + time - last_switch
            else:
                first_switch = time
            last_switch = time
        elif fields[2].startswith("cpu-clock"):
            g = group(tid)
            samples[g] = samples.get(g, 0) + 1
            if int(fields[3], 16) < KERNEL_START:
                user[g] = user.get(g, 0) + 1
    window = 0.0 if first_switch is None else last_switch - first_switch
    return window, seconds, samples, user


def ceilings(ours, theirs):
    """The throughput ratio (ours over theirs) that one request's time on a saturated server CPU
    allows, and the same with our user-space time taken away: the most any user-space work can win
    there. `ours` and `theirs` are (proxy µs, of it user µs, mock µs, others µs) per request, the
    switch-time figures of one workload; a saturated CPU serves 1 / (all its µs per request)."""
    def whole(figures):
        proxy, _user, mock, others = figures
        return proxy + mock + (others or 0.0)

    ours_whole, theirs_whole = whole(ours), whole(theirs)
    return theirs_whole / ours_whole, theirs_whole / (ours_whole - ours[1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--group", action="append", default=[])
    parser.add_argument("--proc", default="")
    args = parser.parse_args()
    names, owner = parse_groups(args.group)
    window, seconds, samples, user = split(sys.stdin, owner)
    out = {"window_s": window, "groups": {}}
    for name in names + ["other", "idle"]:
        out["groups"][name] = {"cpu_s": seconds.get(name, 0.0), "samples": samples.get(name, 0),
                               "user_samples": user.get(name, 0)}
    if args.proc:
        out["proc"] = [float(v) for v in args.proc.split()]
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
