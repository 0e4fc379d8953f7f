"""The end-to-end benchmark behind bench/run.sh, as a package (bench/bench.py is the entry point).

    servers.py    the throwaway servers (scripts/servers.sh's DIR/env), psql sessions, child processes
    sampling.py   /proc readings of the processes in a drain (CPU, peak RSS, context switches), perf record
    workloads.py  what each workload is: tables, backlog, marker; the registry WORKLOADS
    consumers.py  cdcsync, native logical replication and pg_recvlogical draining a backlog, timed
    runs.py       one measured run of a workload: slots, backlog, each consumer's drain, the check
    report.py     summary.md of a run, and the committed summary bench/results/<run-id>.json
"""
