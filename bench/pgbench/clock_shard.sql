\set a random(1, 100000)
\set s random(0, 31)
BEGIN;
SELECT at FROM clocks WHERE name='posts:' || :s FOR UPDATE;
UPDATE clocks SET at = GREATEST(at + 1, (extract(epoch from clock_timestamp())*1000)::bigint) WHERE name = 'posts:' || :s;
INSERT INTO p(author, body, created_at) VALUES (:a, 'hello world', (extract(epoch from clock_timestamp())*1000)::bigint);
COMMIT;
