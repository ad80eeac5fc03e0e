\set a random(1, 100000)
BEGIN;
INSERT INTO p(author, body, created_at) VALUES (:a, 'hello world', (extract(epoch from clock_timestamp())*1000)::bigint);
SELECT pg_notify('events', 'p ' || :a);
COMMIT;
