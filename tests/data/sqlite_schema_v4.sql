-- The schema of a SQLite ledger at v4 as spendgate created it with sqlite-utils 4.2.1
-- (sqlite_master.sql, in creation order). tests/test_ledger.py checks a new ledger still
-- gets exactly this, so old ledger files and new ones have one schema.

CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT);

CREATE TABLE "budgets" (
   "kind" TEXT,
   "id" TEXT,
   "max_nanos" INTEGER,
   "soft_nanos" INTEGER,
   "duration" TEXT,
   "spend_nanos" INTEGER NOT NULL DEFAULT 0,
   "reserved_nanos" INTEGER NOT NULL DEFAULT 0,
   "period_start" TEXT NOT NULL,
   "reset_at" TEXT,
   "updated_at" TEXT,
   PRIMARY KEY ("kind", "id")
);

CREATE TABLE "reservations" (
   "id" TEXT PRIMARY KEY,
   "instance_id" TEXT,
   "created_at" TEXT,
   "amount_nanos" INTEGER,
   "scopes" TEXT
);

CREATE INDEX "idx_reservations_instance_id"
    ON "reservations" ("instance_id");

CREATE TABLE "calls" (
   "id" INTEGER PRIMARY KEY,
   "ts" TEXT,
   "started_at" TEXT,
   "provider" TEXT,
   "endpoint" TEXT,
   "path" TEXT,
   "model" TEXT,
   "streamed" INTEGER,
   "input_tokens" INTEGER,
   "cache_read_tokens" INTEGER,
   "cache_write_tokens" INTEGER,
   "output_tokens" INTEGER,
   "reasoning_tokens" INTEGER,
   "cost_nanos" INTEGER,
   "cost_usd" REAL,
   "priced" INTEGER,
   "price_source" TEXT,
   "usage_source" TEXT,
   "status" TEXT,
   "http_status" INTEGER,
   "latency_ms" REAL,
   "key_hash" TEXT,
   "key_masked" TEXT,
   "key_alias" TEXT,
   "user_id" TEXT,
   "team_id" TEXT,
   "metadata" TEXT,
   "error" TEXT
, uid TEXT);

CREATE INDEX "idx_calls_ts"
    ON "calls" ("ts");

CREATE INDEX "idx_calls_key_hash_ts"
    ON "calls" ("key_hash", "ts");

CREATE INDEX "idx_calls_user_id_ts"
    ON "calls" ("user_id", "ts");

CREATE INDEX "idx_calls_team_id_ts"
    ON "calls" ("team_id", "ts");

CREATE INDEX "idx_calls_model"
    ON "calls" ("model");

CREATE TABLE "budget_events" (
   "id" INTEGER PRIMARY KEY,
   "ts" TEXT,
   "kind" TEXT,
   "scope_id" TEXT,
   "event" TEXT,
   "spend_nanos" INTEGER,
   "period_start" TEXT,
   "reset_at" TEXT
);

CREATE TABLE "instances" (
   "id" TEXT PRIMARY KEY,
   "pid" INTEGER,
   "host" TEXT,
   "started_at" TEXT,
   "heartbeat_at" TEXT
);

CREATE TABLE "keys" (
   "hash" TEXT PRIMARY KEY,
   "key_masked" TEXT,
   "key_alias" TEXT,
   "user_id" TEXT,
   "team_id" TEXT,
   "models" TEXT,
   "metadata" TEXT,
   "issued" INTEGER NOT NULL DEFAULT 0,
   "blocked" INTEGER NOT NULL DEFAULT 0,
   "expires_at" TEXT,
   "created_at" TEXT,
   "updated_at" TEXT,
   "deleted_at" TEXT
);

CREATE INDEX "idx_keys_key_alias"
    ON "keys" ("key_alias");

CREATE INDEX "idx_keys_team_id"
    ON "keys" ("team_id");

CREATE INDEX "idx_keys_user_id"
    ON "keys" ("user_id");

CREATE TABLE "teams" (
   "team_id" TEXT PRIMARY KEY,
   "team_alias" TEXT,
   "members" TEXT,
   "models" TEXT,
   "metadata" TEXT,
   "blocked" INTEGER NOT NULL DEFAULT 0,
   "created_at" TEXT,
   "updated_at" TEXT
);

CREATE INDEX "idx_teams_team_alias"
    ON "teams" ("team_alias");

CREATE TABLE "users" (
   "user_id" TEXT PRIMARY KEY,
   "user_email" TEXT,
   "team_id" TEXT,
   "metadata" TEXT,
   "created_at" TEXT,
   "updated_at" TEXT
);

CREATE TABLE directory_revision (id INTEGER PRIMARY KEY CHECK (id = 1), revision INTEGER NOT NULL);

CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            uid TEXT NOT NULL,              -- sent as X-Spendgate-Alert-Id, for receivers to dedupe
            dedupe_key TEXT NOT NULL UNIQUE,
            event TEXT NOT NULL,            -- budget_alert | soft_budget_alert | projected_spend_alert | budget_exceeded
            scope_kind TEXT NOT NULL,
            scope_id TEXT NOT NULL,
            threshold REAL,
            period_start TEXT NOT NULL,
            max_nanos INTEGER,
            spend_nanos INTEGER NOT NULL,
            route_team TEXT,                -- whose alert settings route it (NULL: the global ones)
            created_at TEXT NOT NULL,
            facts TEXT NOT NULL             -- JSON of alerts.events.Alert: what the channels render
        );

CREATE INDEX alerts_created ON alerts (created_at);

CREATE INDEX alerts_scope ON alerts (scope_kind, scope_id);

CREATE TABLE alert_deliveries (
            id INTEGER PRIMARY KEY,
            alert_id INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
            channel TEXT NOT NULL,          -- slack | webhook | email
            status TEXT NOT NULL,           -- pending | sending | sent | failed | dropped
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT NOT NULL,
            lease_owner TEXT,
            lease_until TEXT,
            last_error TEXT,
            last_attempt_at TEXT,
            sent_at TEXT,
            UNIQUE (alert_id, channel)
        );

CREATE INDEX alert_deliveries_due ON alert_deliveries (status, next_attempt_at);

CREATE UNIQUE INDEX calls_uid ON calls (uid);
