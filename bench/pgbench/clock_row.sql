\set a random(1, 100000)
BEGIN;
SELECT at FROM clocks WHERE name='posts' FOR UPDATE;
UPDATE clocks SET at = at + 1 WHERE name = 'posts';
INSERT INTO p(author, body, created_at) VALUES (:a, 'hello world', (extract(epoch from clock_timestamp())*1000)::bigint);
COMMIT;
