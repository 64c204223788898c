#!/usr/bin/env python3
"""Where did a latency tail come from? Samples every 2 ms, for DURATION seconds, how late this
probe itself wakes (a stall of the whole machine or the scheduler shows here too) and the state
of every thread of process PID (R running or runnable, S sleeping, D waiting on the disk), and
writes one line per 100 ms window to OUT: time, the node's CPU in the window, the probe's worst
oversleep, and the thread states seen. Used by replay-p99.sh with PROBE=1."""
import os
import sys
import time

pid, out, duration = sys.argv[1], sys.argv[2], float(sys.argv[3])
hz = os.sysconf("SC_CLK_TCK")


def cpu_ticks():
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def states():
    seen = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = open(f"/proc/{pid}/task/{task}/stat").read()
        except OSError:
            continue
        name = stat.split("(", 1)[1].rsplit(")", 1)[0]
        state = stat.rsplit(")", 1)[1].split()[0]
        if state != "S":
            seen[f"{name}:{state}"] = seen.get(f"{name}:{state}", 0) + 1
    return seen


start = time.monotonic()
window_start, window_ticks = start, cpu_ticks()
worst, seen = 0.0, {}
with open(out, "w") as log:
    log.write("t_s node_cpu_ms probe_late_ms non_sleeping_threads(samples)\n")
    while time.monotonic() - start < duration:
        before = time.monotonic()
        time.sleep(0.002)
        late = (time.monotonic() - before - 0.002) * 1000
        worst = max(worst, late)
        for k, v in states().items():
            seen[k] = seen.get(k, 0) + v
        now = time.monotonic()
        if now - window_start >= 0.1:
            ticks = cpu_ticks()
            cpu_ms = (ticks - window_ticks) * 1000 / hz
            top = " ".join(f"{k}={v}" for k, v in sorted(seen.items(), key=lambda kv: -kv[1])[:6])
            log.write(f"{now - start:.1f} {cpu_ms:.0f} {worst:.1f} {top}\n")
            window_start, window_ticks, worst, seen = now, ticks, 0.0, {}
