#!/usr/bin/env python3
"""COPY into the sink's staging table in text against binary format (bench/README.md, finding 10).

    bash scripts/servers.sh start /tmp/copyfmt --durable
    python3 bench/copy_formats.py /tmp/copyfmt            # prints milliseconds per variant, best of 3
    bash scripts/servers.sh stop /tmp/copyfmt

Rows like WIDE's (5,000 of 9.6 kB of text) and BULK's (200,000 of bigint, integer, text, timestamptz,
numeric) are exported once with \\copy in each format, then loaded into a temp table created as the sink
creates its stage (varlena columns SET STORAGE EXTERNAL). "binary, text-typed" loads BULK's rows with the
timestamptz and numeric columns as text (what the sink could send without encoding those types itself) and
casts them in the INSERT ... SELECT into a target table; "text" does the same load and insert as the sink
does today, "binary (every type)" as it would if it encoded every type's binary form itself. KINDS's rows
(200,000 of an enum, a domain over text, text[], int[], interval, inet and time: the types that gained
encoders after finding 17) are loaded the same way into a stage of their own.
"""
import os
import re
import subprocess
import sys
import tempfile

SETUP = """
DROP TABLE IF EXISTS cf_wide, cf_bulk, cf_bulk_target, cf_kinds;
DROP TYPE IF EXISTS cf_mood;
DROP DOMAIN IF EXISTS cf_email;
CREATE TYPE cf_mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN cf_email AS text CHECK (VALUE LIKE '%@%');
CREATE TABLE cf_kinds (id bigint PRIMARY KEY, mood cf_mood, email cf_email, tags text[], scores int[],
  period interval, ip inet, at time, _cdc_lsn pg_lsn);
INSERT INTO cf_kinds SELECT g, (ARRAY['sad', 'ok', 'happy'])[g % 3 + 1]::cf_mood, 'user' || g || '@example.com',
  ARRAY['tag ' || g % 10, 'vip', md5(g::text)], ARRAY[g, g % 100, -g], make_interval(days => g % 30, secs => g / 7.0),
  ('10.' || g % 256 || '.' || g / 256 % 256 || '.1/24')::inet, make_time(g % 24, g % 60, g % 60 + 0.5), '0/1'
  FROM generate_series(1, 200000) g;
\\copy cf_kinds TO '{d}/kinds.txt'
\\copy cf_kinds TO '{d}/kinds.bin' (FORMAT binary)
CREATE TABLE cf_wide (id bigint PRIMARY KEY, n integer, note text, body text, _cdc_lsn pg_lsn);
CREATE TABLE cf_bulk (id bigint PRIMARY KEY, a integer, b text, c timestamptz, d numeric(12,2), _cdc_lsn pg_lsn);
CREATE TABLE cf_bulk_target (LIKE cf_bulk INCLUDING ALL);
INSERT INTO cf_wide SELECT g, g, md5(g::text),
  (SELECT string_agg(md5((g * 1000 + k)::text), '') FROM generate_series(1, 300) k), '0/1'
  FROM generate_series(1, 5000) g;
INSERT INTO cf_bulk SELECT g, g, md5(g::text), now(), g / 7.0, '0/1' FROM generate_series(1, 200000) g;
\\copy cf_wide TO '{d}/wide.txt'
\\copy cf_wide TO '{d}/wide.bin' (FORMAT binary)
\\copy cf_bulk TO '{d}/bulk.txt'
\\copy cf_bulk TO '{d}/bulk.bin' (FORMAT binary)
\\copy (SELECT id, a, b, c::text, d::text, _cdc_lsn FROM cf_bulk) TO '{d}/bulk-text-typed.bin' (FORMAT binary)
"""

STAGES = """
SET temp_buffers = '256MB';
CREATE TEMP TABLE sw AS SELECT * FROM cf_wide WITH NO DATA;
ALTER TABLE sw ALTER note SET STORAGE EXTERNAL, ALTER body SET STORAGE EXTERNAL;
CREATE TEMP TABLE sb AS SELECT * FROM cf_bulk WITH NO DATA;
ALTER TABLE sb ALTER b SET STORAGE EXTERNAL;
CREATE TEMP TABLE sbt (id bigint, a integer, b text, c text, d text, _cdc_lsn pg_lsn);
ALTER TABLE sbt ALTER b SET STORAGE EXTERNAL, ALTER c SET STORAGE EXTERNAL, ALTER d SET STORAGE EXTERNAL;
CREATE TEMP TABLE sk AS SELECT * FROM cf_kinds WITH NO DATA;
ALTER TABLE sk ALTER email SET STORAGE EXTERNAL, ALTER tags SET STORAGE EXTERNAL, ALTER scores SET STORAGE EXTERNAL;
\\timing on
"""

VARIANTS = {
    "WIDE, COPY text": "\\copy sw FROM '{d}/wide.txt'\nTRUNCATE sw;",
    "WIDE, COPY binary": "\\copy sw FROM '{d}/wide.bin' (FORMAT binary)\nTRUNCATE sw;",
    "BULK, COPY text": "\\copy sb FROM '{d}/bulk.txt'\nTRUNCATE sb;",
    "BULK, COPY binary (every type)": "\\copy sb FROM '{d}/bulk.bin' (FORMAT binary)\nTRUNCATE sb;",
    "BULK, text: COPY + INSERT": "BEGIN;\n\\copy sb FROM '{d}/bulk.txt'\n"
                                 "INSERT INTO cf_bulk_target SELECT * FROM sb;\nROLLBACK;",
    "BULK, binary (every type): COPY + INSERT": "BEGIN;\n\\copy sb FROM '{d}/bulk.bin' (FORMAT binary)\n"
                                                "INSERT INTO cf_bulk_target SELECT * FROM sb;\nROLLBACK;",
    "BULK, binary, text-typed: COPY + INSERT with casts":
        "BEGIN;\n\\copy sbt FROM '{d}/bulk-text-typed.bin' (FORMAT binary)\n"
        "INSERT INTO cf_bulk_target SELECT id, a, b, c::timestamptz, d::numeric(12,2), _cdc_lsn FROM sbt;\n"
        "ROLLBACK;",
    "KINDS, COPY text": "\\copy sk FROM '{d}/kinds.txt'\nTRUNCATE sk;",
    "KINDS, COPY binary": "\\copy sk FROM '{d}/kinds.bin' (FORMAT binary)\nTRUNCATE sk;",
}


def psql(conninfo, passfile, script):
    return subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", conninfo], input=script, text=True,
                          capture_output=True, check=True, env=dict(os.environ, PGPASSFILE=passfile)).stdout


def main():
    env = dict(line.split("=", 1) for line in open(os.path.join(sys.argv[1], "env")).read().split("\n") if "=" in line)
    conninfo = env["CDCSYNC_ORDER_ADMIN"].strip("'")
    passfile = env.get("CDCSYNC_PGPASSFILE", "").strip("'")
    with tempfile.TemporaryDirectory() as d:
        psql(conninfo, passfile, SETUP.format(d=d))
        for name, body in VARIANTS.items():
            best = None
            for _ in range(3):
                out = psql(conninfo, passfile, STAGES + body.format(d=d))
                ms = sum(float(t) for t in re.findall(r"Time: ([0-9.]+) ms", out))
                best = ms if best is None else min(best, ms)
            print(f"{name:52s} {best:8.0f} ms", flush=True)
        psql(conninfo, passfile, "DROP TABLE cf_wide, cf_bulk, cf_bulk_target, cf_kinds; DROP TYPE cf_mood; "
                                 "DROP DOMAIN cf_email;")


if __name__ == "__main__":
    main()
