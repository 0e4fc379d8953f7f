#!/usr/bin/env python3
# CPU timeline of a bench drain: every 0.5 s, the CPU ticks (1/100 s) each walsender ("wal"), cdcsync
# process ("cdc") and other PostgreSQL process ("pg:<user>_<db>_<client>") used since the last sample.
# Run it next to bench/run.sh:  python3 bench/cpu_timeline.py SECONDS > timeline.txt &  bash bench/run.sh ...
import os
import sys
import time

end = time.time() + float(sys.argv[1])
prev = {}
t0 = time.time()
while time.time() < end:
    row = {}
    for pid in os.listdir('/proc'):
        if not pid.isdigit(): continue
        try:
            cmd = open(f'/proc/{pid}/cmdline','rb').read().replace(b'\0',b' ').decode(errors='replace')
            st = open(f'/proc/{pid}/stat').read().rsplit(')',1)[1].split()
        except Exception: continue
        if 'walsender' in cmd: k='wal'
        elif cmd.startswith('/work') and 'cdcsync' in cmd and ' run' in cmd: k='cdc'
        elif 'postgres:' in cmd: k='pg:'+'_'.join(cmd.split()[1:4])[:40]
        else: continue
        ticks = int(st[11]) + int(st[12])
        key = (k, pid)
        if key in prev: row[k] = row.get(k,0) + ticks - prev[key]
        prev[key] = ticks
    if row: print(f"{time.time()-t0:6.1f} " + " ".join(f"{k}={v}" for k,v in sorted(row.items()) if v), flush=True)
    time.sleep(0.5)
