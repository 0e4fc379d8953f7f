\set v random(1, 1000000)
INSERT INTO bench.lag (v) VALUES (:v);
