-- Companion GIN indexes for FerretDB's indexes, on the local stack's own PostgreSQL cluster.
-- Applied by .ci/with-services.sh to the cluster it runs (each start; every statement is idempotent), never to a
-- server given with POSTGRESQL_URL.
--
-- Why: FerretDB v1.24.2 (PostgreSQL handler) creates a MongoDB index on {a: 1, b: -1} as a btree over the
-- expressions ((_jsonb -> 'a')), ((_jsonb -> 'b')), but pushes an equality filter {a: v} down as
-- `_jsonb -> 'a' @> '<v as JSON>'` (internal/backends/postgresql/query.go, filterEqual). A btree has no `@>`, so
-- every pushed-down filter, even {_id: ...}, was a sequential scan of the collection's whole table. jsonb_ops GIN
-- indexes do serve `@>`: for every btree FerretDB creates over top-level field expressions, the event trigger below
-- creates a GIN index over each of those expressions (`USING gin ((_jsonb -> 'a'))`), FerretDB's unique `_id`
-- index included. Nested fields (a.b) get none: FerretDB does not push dot-notation filters down.
--
-- An index only changes PostgreSQL's access path, never a query's result: FerretDB sends the same SQL and gets the
-- same rows, and nothing here touches FerretDB's metadata (listIndexes, dropIndexes still see only its own
-- indexes). A companion stays when FerretDB drops the btree it came with (dropIndexes; other btrees may share it)
-- and goes with its table (drop of the collection or database).
--
-- FerretDB sends the field name as a statement parameter (`_jsonb -> $1 @> $2`) through pgx's statement cache: a
-- generic plan of such a statement cannot match an expression index, so the ferretdb role plans every execution
-- with its parameters (plan_cache_mode = force_custom_plan), which a custom plan can.

-- The companions of one index: nothing unless it is a btree over `_jsonb -> 'field'` expressions on the table of a
-- collection of a FerretDB database (a table beside _ferretdb_database_metadata, which itself is left alone).
-- The GIN indexes it creates are not btrees, so the event trigger that fires again for each of them does nothing:
-- that is the guard against recursion.
SET client_min_messages = warning;  -- no NOTICE for what already exists (or not yet)

CREATE OR REPLACE FUNCTION public.ferretdb_gin_companions(index_oid oid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    table_oid oid;
    table_schema name;
    table_name name;
    columns int;
    field_match text[];
    field text;
BEGIN
    SELECT i.indrelid, n.nspname, t.relname, i.indnatts
      INTO table_oid, table_schema, table_name, columns
      FROM pg_index i
      JOIN pg_class ic ON ic.oid = i.indexrelid
      JOIN pg_am am ON am.oid = ic.relam
      JOIN pg_class t ON t.oid = i.indrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace
     WHERE i.indexrelid = index_oid AND am.amname = 'btree' AND t.relkind = 'r'
       AND t.relname <> '_ferretdb_database_metadata';
    IF NOT FOUND OR to_regclass(format('%I.%I', table_schema, '_ferretdb_database_metadata')) IS NULL THEN
        RETURN;
    END IF;
    FOR k IN 1..columns LOOP
        -- Exactly one top-level field: (_jsonb -> 'name'::text), the name with '' for each quote.
        field_match := regexp_match(pg_get_indexdef(index_oid, k, true), '^\(_jsonb -> ''((?:[^'']|'''')*)''::text\)$');
        CONTINUE WHEN field_match IS NULL;
        field := replace(field_match[1], '''''', '''');
        -- FerretDB's own index names end in _idx; a companion's in _gin (at most 63 bytes either way).
        EXECUTE format(
            'CREATE INDEX IF NOT EXISTS %I ON %I.%I USING gin ((_jsonb -> %L))',
            left(table_name, 40) || '_' || left(md5(field), 12) || '_gin', table_schema, table_name, field
        );
    END LOOP;
END;
$$;

CREATE OR REPLACE FUNCTION public.ferretdb_gin_companions_on_create() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
    command record;
BEGIN
    FOR command IN SELECT objid FROM pg_event_trigger_ddl_commands() WHERE object_type = 'index' LOOP
        PERFORM public.ferretdb_gin_companions(command.objid);
    END LOOP;
END;
$$;

DROP EVENT TRIGGER IF EXISTS ferretdb_gin_companions;
CREATE EVENT TRIGGER ferretdb_gin_companions ON ddl_command_end WHEN TAG IN ('CREATE INDEX')
    EXECUTE FUNCTION public.ferretdb_gin_companions_on_create();

-- Indexes FerretDB made before this file was applied (a --persist cluster from before it): companions now.
DO $$ BEGIN PERFORM public.ferretdb_gin_companions(indexrelid) FROM pg_index; END $$;

ALTER ROLE CURRENT_USER SET plan_cache_mode = force_custom_plan;
