-- A scratch schema for the pgbench scripts beside it (issue 30: what serializes post writes).
-- createdb -h 127.0.0.1 -U postgres social_scratch && psql -h 127.0.0.1 -U postgres social_scratch -f schema.sql
CREATE TABLE p (id bigserial PRIMARY KEY, author bigint, body text, created_at bigint);
CREATE INDEX ON p (author, created_at);
CREATE INDEX ON p (created_at);
CREATE TABLE clocks (name text PRIMARY KEY, at bigint);
INSERT INTO clocks SELECT 'posts', 0;
INSERT INTO clocks SELECT 'posts:' || g, 0 FROM generate_series(0, 31) g;
