#!/usr/bin/env python3
"""The order DB's side of a set-based apply, statement by statement (bench/README.md, finding 6).

    bash scripts/servers.sh start /tmp/apply --durable
    python3 bench/apply_statements.py /tmp/apply          # prints seconds and target WAL MB per variant
    bash scripts/servers.sh stop /tmp/apply

One target table like BULK's (with _cdc_lsn), 1M rows staged in 100 chunks of 10k in one transaction through a
temp table as the sink stages them, then applied with each variant: the sink's upsert with and without
ORDER BY, a DELETE instead of TRUNCATE between chunks, a plain INSERT (rows new to the target); and for 1M
updates of existing rows: the upsert against UPDATE ... FROM.
"""
import os
import subprocess
import sys
import tempfile

COLS = "id,a,b,c,d,_cdc_lsn"
UPSERT = (" ON CONFLICT (id) DO UPDATE SET a=EXCLUDED.a,b=EXCLUDED.b,c=EXCLUDED.c,d=EXCLUDED.d,"
          "_cdc_lsn=EXCLUDED._cdc_lsn WHERE t._cdc_lsn <= EXCLUDED._cdc_lsn")
SETUP = """DROP TABLE IF EXISTS apply_bench;
CREATE TABLE apply_bench (id bigint PRIMARY KEY, a integer, b text, c timestamptz, d numeric(12,2),
                          _cdc_lsn pg_lsn NOT NULL DEFAULT '0/0');
CREATE TEMP TABLE st ON COMMIT DELETE ROWS AS SELECT t.*, NULL::"char" AS op, NULL::integer AS mask
  FROM apply_bench t WITH NO DATA;
"""
STATEMENT = {
    "upsert (the sink before)": f"INSERT INTO apply_bench AS t ({COLS}) SELECT {COLS} FROM st WHERE op='u' AND mask=0 ORDER BY _cdc_lsn{UPSERT};",
    "upsert without ORDER BY": f"INSERT INTO apply_bench AS t ({COLS}) SELECT {COLS} FROM st WHERE op='u' AND mask=0{UPSERT};",
    "upsert, DELETE between chunks": f"INSERT INTO apply_bench AS t ({COLS}) SELECT {COLS} FROM st WHERE op='u' AND mask=0{UPSERT};",
    "plain INSERT (the sink now, new keys)": f"INSERT INTO apply_bench ({COLS}) SELECT {COLS} FROM st WHERE op='u';",
    "updates: upsert": f"INSERT INTO apply_bench AS t ({COLS}) SELECT {COLS} FROM st WHERE op='u' AND mask=0 ORDER BY _cdc_lsn{UPSERT};",
    "updates: UPDATE ... FROM": "UPDATE apply_bench AS t SET a=s.a,b=s.b,c=s.c,d=s.d,_cdc_lsn=s._cdc_lsn FROM st s "
                                "WHERE s.op='u' AND s.mask=0 AND t.id=s.id AND t._cdc_lsn <= s._cdc_lsn;",
}


def main():
    env = dict(line.split("=", 1) for line in open(os.path.join(sys.argv[1], "env")).read().split("\n") if "=" in line)
    conninfo = env["CDCSYNC_ORDER_ADMIN"].strip("'")
    with tempfile.TemporaryDirectory() as d:
        for chunk in range(100):
            with open(os.path.join(d, f"part.{chunk:03d}"), "w") as f:
                for i in range(chunk * 10000 + 1, chunk * 10000 + 10001):
                    f.write(f"{i}\t{i % 1000}\tsome text value number {i} padding padding\t"
                            f"2026-11-24 10:00:00+00\t{i % 10000}.25\t0/{0x1000000 + i:X}\tu\t0\n")
        for name, stmt in STATEMENT.items():
            lines = [SETUP]
            if name.startswith("updates"):
                lines.append("INSERT INTO apply_bench SELECT g, g % 1000, 'x' || g, now(), 1.5, '0/1' "
                             "FROM generate_series(1, 1000000) g; CHECKPOINT;")
            lines += ["SELECT extract(epoch from clock_timestamp()) AS t0, pg_current_wal_lsn() AS w0 \\gset",
                      "BEGIN;"]
            for chunk in range(100):
                if chunk:
                    lines.append("DELETE FROM st;" if "DELETE" in name else "TRUNCATE st;")
                lines.append(f"\\copy st FROM '{d}/part.{chunk:03d}'")
                lines.append(stmt)
            lines += ["COMMIT;",
                      "SELECT round((extract(epoch from clock_timestamp()) - :t0)::numeric, 2) || ' s, ' || "
                      "round(pg_wal_lsn_diff(pg_current_wal_lsn(), :'w0') / 1e6) || ' MB WAL';"]
            out = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", conninfo],
                                 input="\n".join(lines), text=True, capture_output=True, check=True,
                                 env=dict(os.environ, PGPASSFILE=env.get("CDCSYNC_PGPASSFILE", "").strip("'")))
            print(f"{name:40s} {out.stdout.strip().splitlines()[-1]}", flush=True)


if __name__ == "__main__":
    main()
