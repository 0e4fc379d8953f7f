"""What a run leaves: summary.md next to its raw output (tables of every measurement), and the summary that
is committed, bench/results/<run-id>.json: the environment of the run and every figure of results.jsonl,
without the logs, configs and scrapes that stay in the raw directory (bench/results/raw/, not tracked)."""
import json
import os
import re


def summary(results, out, header):
    lines = [header, "",
             "| workload | run | consumer | changes | seconds | changes/s | vs native | walsender CPU share | "
             "consumer CPU s | target backend CPU s | CPU s per 1M changes | target WAL MB | target WAL syncs / buffers "
             "written by backends | peak RSS MB | load avg |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    native = {(r["workload"], r["run"]): r for r in results if r.get("consumer") == "native" and "changes_per_s" in r}
    loads = [r for r in results if r.get("kind") == "initial_load"]
    for r in results:
        if "changes_per_s" not in r or r.get("kind") == "initial_load":
            continue
        n = native.get((r["workload"], r["run"]))
        # Seconds, not changes/s: the same changes, and WIDE-XL's few changes round to 0 per second.
        ratio = f"{n['seconds'] / r['seconds']:.2f}×" if n else ""
        lines.append(f"| {r['workload']} | {r['run']} | {r['consumer']} | {r['changes']:,} | {r['seconds']} | "
                     f"{r['changes_per_s']:,} | {ratio} | {r['walsender_cpu_share']} | {r.get('consumer_cpu_s')} | "
                     f"{r.get('target_backend_cpu_s') or ''} | {r.get('cpu_s_per_million', '')} | {r.get('target_wal_mb', '')} | "
                     f"{r.get('target_wal_syncs', '')} / {r.get('target_buffers_backend', '')} | "
                     f"{r.get('cdcsync_vmhwm_mb', r.get('apply_worker_vmhwm_mb', ''))} | {r['loadavg_before']} |")
    if loads:
        lines += ["", "| initial load | run | consumer | rows | seconds | rows/s | vs native | consumer CPU s | "
                  "parts, format | peak RSS MB | load avg |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in loads:
            n = native.get((r["workload"], r["run"]))
            ratio = f"{r['changes_per_s'] / n['changes_per_s']:.2f}×" if n else ""
            parts = f"{r['parts']}, {r['format']}" if "parts" in r else ""
            lines.append(f"| {r['workload']} | {r['run']} | {r['consumer']} | {r['rows']:,} | {r['seconds']} | "
                         f"{r['changes_per_s']:,} | {ratio} | {r.get('consumer_cpu_s') or ''} | {parts} | "
                         f"{r.get('cdcsync_vmhwm_mb', '')} | {r['loadavg_before']} |")
    lines += ["", "| lag | run | consumer | rate tx/s (achieved) | rows | p50 ms | p99 ms | max ms | metrics histogram | load avg |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if r.get("workload") == "lag":
            h = r.get("histogram_end_to_end")
            hs = f"p50 {h['p50_ms']} / p99 {h['p99_ms']} ms" if h else ""
            vis = (f" (commit: {r['committed_p50_ms']} / {r['committed_p99_ms']} / {r['committed_max_ms']})"
                   if "committed_p50_ms" in r else "")
            lines.append(f"| lag | {r['run']} | {r['consumer']} | {r['rate']} ({r['pgbench_tps']}) | {r['rows']:,} | "
                         f"{r['p50_ms']} | {r['p99_ms']} | {r['max_ms']}{vis} | {hs} | {r['loadavg_before']} |")
    for r in results:
        if r.get("workload") == "lag_max":
            lines.append(f"| lag, highest rate with p99 < 100 ms | {r['run']} | {r['consumer']} | {r['max_rate']} | "
                         f"| | | | stopped at {r['stopped_at']} | {r['loadavg']} |")
    staged = [r for r in results if r.get("workload") == "lag" and r.get("stages_us")]
    if staged:
        names = list(dict.fromkeys(k for r in staged for k in r["stages_us"]))
        lines += ["", "| lag stages p50 / p99 µs | run | rate | " + " | ".join(names) + " |",
                  "|---|---|---|" + "---|" * len(names)]
        for r in staged:
            cells = [f"{r['stages_us'][k]['p50_us']} / {r['stages_us'][k]['p99_us']}" if k in r["stages_us"] else ""
                     for k in names]
            lines.append(f"| cdcsync | {r['run']} | {r['rate']} | " + " | ".join(cells) + " |")
    lines += ["", "| check | run | result | source | cdcsync | native | pgcopydb | cdcsync's table | native's table |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if r.get("kind") == "check":
            lines.append(f"| {r['workload']} | {r['run']} | {'OK' if r['ok'] else 'MISMATCH'} | {r['source']} | "
                         f"{r.get('cdcsync', '')} | {r.get('native', '')} | {r.get('pgcopydb', '')} | "
                         f"{r.get('cdcsync_storage', '')} | "
                         f"{r.get('native_storage', '')} |")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(text)
    print(text)


def read_environment(raw_dir):
    """environment.txt as written by run.sh: `key: value` lines (date, command, git, cpus, cpu, postgres,
    uptime at start/end, and the order server's slower fsync when asked for)."""
    env = {}
    path = os.path.join(raw_dir, "environment.txt")
    if not os.path.exists(path):
        return env
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            m = re.match(r"^([a-z][a-z ]*?): (.*)$", line)
            if m:
                env[m.group(1)] = m.group(2).strip()
            elif line:
                env.setdefault("notes", []).append(line)
    return env


def read_results(raw_dir):
    path = os.path.join(raw_dir, "results.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def run_summary(raw_dir):
    """The committed summary of one run: its id (the raw directory's name), environment and figures."""
    results = read_results(raw_dir)
    checks = [r for r in results if r.get("kind") == "check"]
    return {
        "run": os.path.basename(os.path.normpath(raw_dir)),
        "environment": read_environment(raw_dir),
        "targets_equal_to_source": all(r["ok"] for r in checks) if checks else None,
        "results": results,
    }


def write_run_summary(raw_dir, results_dir):
    """Writes results_dir/<run-id>.json (one result object per line, so a diff shows what changed)."""
    s = run_summary(raw_dir)
    path = os.path.join(results_dir, s["run"] + ".json")
    body = ",\n".join("    " + json.dumps(r, ensure_ascii=False) for r in s["results"])
    with open(path, "w") as f:
        f.write("{\n")
        f.write(f'  "run": {json.dumps(s["run"])},\n')
        f.write(f'  "environment": {json.dumps(s["environment"], ensure_ascii=False)},\n')
        f.write(f'  "targets_equal_to_source": {json.dumps(s["targets_equal_to_source"])},\n')
        f.write(f'  "results": [\n{body}\n  ]\n' if body else '  "results": []\n')
        f.write("}\n")
    json.load(open(path))  # what was written parses
    return path
