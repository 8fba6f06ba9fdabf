-- Dagster's own database, beside ops-pipeline's (POSTGRES_DB): Dagster has a `jobs` table too.
-- The image runs this once, as POSTGRES_USER (its owner), when the postgres volume is first created.
CREATE DATABASE dagster;
