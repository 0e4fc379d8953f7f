-- WIDE's update pass as the sink applies it (finding 14 in bench/README.md): 10,000 folded updates of the
-- small columns, the TOASTed body unchanged (NULL in the stage, left out of the SET list), three ways.
-- Setup on the order DB of `scripts/servers.sh start DIR --durable` (psql -h <CDCSYNC_PG_ROOT> -p <order port>
-- -U cdcsync_admin orders):
--   CREATE TABLE public.w (id bigint PRIMARY KEY, n integer, note text, body text, _cdc_lsn pg_lsn);
--   INSERT INTO public.w SELECT i, 0, 'note ' || i, (SELECT string_agg(md5(i::text || '-' || j), '')
--     FROM generate_series(1, 300) j), '0/10' FROM generate_series(1, 10000) i;
--   VACUUM ANALYZE public.w;
-- Then: psql ... -f bench/wide_updates.sql (each variant rolled back; read the "Time:" lines).
SET temp_buffers = '32MB';
CREATE TEMP TABLE s AS SELECT id, n, note, body, _cdc_lsn, NULL::"char" AS _cdc_stage_op, NULL::integer AS _cdc_stage_mask FROM public.w WITH NO DATA;
ALTER TABLE s ALTER body SET STORAGE EXTERNAL;
\timing on
BEGIN;
INSERT INTO s SELECT i, 2, 'pass 2 of ' || i, NULL, '0/20', 'u', 1 FROM generate_series(1, 10000) i;
WITH w AS (INSERT INTO public.w AS t (id, n, note, body, _cdc_lsn) SELECT id, n, note, body, _cdc_lsn FROM s WHERE _cdc_stage_op = 'u' AND _cdc_stage_mask = 1 ORDER BY _cdc_lsn ON CONFLICT (id) DO UPDATE SET n = EXCLUDED.n, note = EXCLUDED.note, _cdc_lsn = EXCLUDED._cdc_lsn WHERE t._cdc_lsn <= EXCLUDED._cdc_lsn RETURNING (t.xmax = 0) AS ins, false AS tomb) SELECT count(*) FILTER (WHERE ins AND NOT tomb) FROM w;
ROLLBACK;
BEGIN;
INSERT INTO s SELECT i, 2, 'pass 2 of ' || i, NULL, '0/20', 'u', 1 FROM generate_series(1, 10000) i;
INSERT INTO public.w AS t (id, n, note, body, _cdc_lsn) SELECT id, n, note, body, _cdc_lsn FROM s WHERE _cdc_stage_op = 'u' AND _cdc_stage_mask = 1 ORDER BY _cdc_lsn ON CONFLICT (id) DO UPDATE SET n = EXCLUDED.n, note = EXCLUDED.note, _cdc_lsn = EXCLUDED._cdc_lsn WHERE t._cdc_lsn <= EXCLUDED._cdc_lsn;
ROLLBACK;
BEGIN;
INSERT INTO s SELECT i, 2, 'pass 2 of ' || i, NULL, '0/20', 'u', 1 FROM generate_series(1, 10000) i;
UPDATE public.w AS t SET n = s.n, note = s.note, _cdc_lsn = s._cdc_lsn FROM s WHERE t.id = s.id AND t._cdc_lsn <= s._cdc_lsn AND s._cdc_stage_op = 'u' AND s._cdc_stage_mask = 1;
ROLLBACK;
