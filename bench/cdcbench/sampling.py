"""/proc readings of the processes in a drain (CPU, peak RSS, context switches, run-queue wait); perf record."""
import os
import subprocess

from .servers import CHILDREN

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    """utime + stime of a process (all its threads), seconds; None when gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def proc_hwm_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def proc_ctxsw(pid):
    """Context switches (voluntary + involuntary) summed over the process's threads: one per sleep/wake-up."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                        total += int(line.split()[1])
    except OSError:
        return None
    return total


def proc_runqueue_wait_s(pid):
    """Seconds the process's threads spent runnable but waiting for a CPU (/proc/PID/task/*/schedstat)."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return total / 1e9


class Sampler:
    """Keeps the last CPU reading of named pids (a process may exit before the final sample)."""

    def __init__(self):
        self.pids = {}   # name -> pid
        self.first = {}  # name -> cpu at first sight
        self.last = {}   # name -> last cpu seen
        self.hwm = {}
        self.ctxsw_first = {}
        self.rqwait_first = {}
        self.rqwait = {}  # name -> seconds waiting for a CPU since first sight
        self.ctxsw = {}  # name -> context switches since first sight

    def add(self, name, pid):
        if name in self.pids or not pid:
            return
        self.pids[name] = int(pid)
        c = proc_cpu(pid)
        self.first[name] = c if c is not None else 0.0
        self.last[name] = self.first[name]
        self.ctxsw_first[name] = proc_ctxsw(pid) or 0
        self.rqwait_first[name] = proc_runqueue_wait_s(pid) or 0.0

    def sample(self):
        for name, pid in self.pids.items():
            c = proc_cpu(pid)
            if c is not None:
                self.last[name] = c
            h = proc_hwm_kb(pid)
            if h is not None:
                self.hwm[name] = h
            x = proc_ctxsw(pid)
            if x is not None:
                self.ctxsw[name] = x - self.ctxsw_first.get(name, 0)
            q = proc_runqueue_wait_s(pid)
            if q is not None:
                self.rqwait[name] = round(q - self.rqwait_first.get(name, 0.0), 3)

    def cpu(self, name):
        """CPU seconds since the process was born (processes started for the drain)."""
        return round(self.last[name], 3) if name in self.last else None


def start_perf(pid, path):
    p = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", os.environ.get("CDCSYNC_BENCH_PERF_HZ", "499"), "--call-graph", "dwarf,16384",
                          "-o", path, "-p", str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    CHILDREN.append(p)
    return p
