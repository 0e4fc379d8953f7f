\set r random(1, 100)
\set id random(1, :seed)
\if :r <= 60
UPDATE bench.small SET balance = balance + 1, tier = CASE WHEN tier = 'gold' THEN 'silver' ELSE 'gold' END, updated_at = now() WHERE id = :id;
\elif :r <= 90
INSERT INTO bench.small (full_name, email, tier) VALUES ('New customer ' || :id, 'new' || :id || '@example.com', 'standard');
\else
DELETE FROM bench.small WHERE id = :id;
\endif
