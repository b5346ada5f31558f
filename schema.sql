-- keygate schema: the whole current structure, equal to what migrations/ builds (test/integration/schema.test.ts checks it).

-- People who sign in (dashboard, POST /auth/login). Passwords are PBKDF2-SHA-256.
CREATE TABLE users (
  id            TEXT PRIMARY KEY,
  email         TEXT NOT NULL COLLATE NOCASE,
  password_hash TEXT NOT NULL,                       -- pbkdf2-sha256$<iterations>$<salt b64url>$<hash b64url>
  role          TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
  products      TEXT NOT NULL DEFAULT '["*"]',       -- JSON array of product slugs; "*" = all
  scopes        TEXT NOT NULL DEFAULT '["*"]',       -- JSON array of scopes; "*" and "prefix:*" wildcards
  created_at    TEXT NOT NULL,
  updated_at    TEXT NOT NULL,
  -- Owner-level limits set by an admin, shared by all of the user's keys and tokens; NULL = none (0004).
  rate_limit_per_minute INTEGER CHECK (rate_limit_per_minute IS NULL OR rate_limit_per_minute > 0),
  rate_limit_per_day    INTEGER CHECK (rate_limit_per_day IS NULL OR rate_limit_per_day > 0),
  max_active_keys       INTEGER CHECK (max_active_keys IS NULL OR max_active_keys >= 0)
);
-- Login looks a user up by email, case-insensitively.
CREATE UNIQUE INDEX users_email ON users (email);
-- GET /api/v1/admin/users: oldest first, one range per page (0005).
CREATE INDEX users_created ON users (created_at, id);

-- Origin APIs behind the gateway, routed by the longest matching path_prefix.
CREATE TABLE products (
  id                    TEXT PRIMARY KEY,
  slug                  TEXT NOT NULL UNIQUE,       -- its UNIQUE index also serves GET /api/v1/admin/products, by slug
  name                  TEXT NOT NULL,
  path_prefix           TEXT NOT NULL UNIQUE,
  origin_url            TEXT NOT NULL,
  test_origin_url       TEXT,
  strip_prefix          INTEGER NOT NULL DEFAULT 0 CHECK (strip_prefix IN (0, 1)),
  auth_methods          TEXT NOT NULL DEFAULT '["api_key","jwt"]',  -- JSON array
  error_format          TEXT NOT NULL DEFAULT 'detailed' CHECK (error_format IN ('detailed', 'compact')),
  rate_limit_per_minute INTEGER CHECK (rate_limit_per_minute IS NULL OR rate_limit_per_minute > 0),
  rate_limit_per_day    INTEGER CHECK (rate_limit_per_day IS NULL OR rate_limit_per_day > 0),
  inject_auth_method    INTEGER NOT NULL DEFAULT 1 CHECK (inject_auth_method IN (0, 1)),
  scope_rules           TEXT NOT NULL DEFAULT '[]',  -- JSON array of {method?, path?, scope}
  created_at            TEXT NOT NULL,
  updated_at            TEXT NOT NULL,
  -- Scope rules match the canonical path case-insensitively and ignoring one trailing slash unless set (0002).
  case_sensitive_rules  INTEGER NOT NULL DEFAULT 0 CHECK (case_sensitive_rules IN (0, 1)),
  strict_trailing_slash INTEGER NOT NULL DEFAULT 0 CHECK (strict_trailing_slash IN (0, 1)),
  -- Browser origins admitted cross-origin: JSON array of exact origins, or ["*"]; [] = none (0006).
  cors_origins          TEXT NOT NULL DEFAULT '[]',
  -- Pricing (0009): JSON array of {method?, path?, cost}, the first match prices a call (else 1);
  -- the response header the origin reports metered usage in; the least balance a metered call needs.
  cost_rules            TEXT NOT NULL DEFAULT '[]',
  usage_header          TEXT,
  usage_reserve         INTEGER NOT NULL DEFAULT 1,
  -- How calls are counted (0010): 'exact' (each asks the key's object) or 'leased' (isolates admit from granted calls).
  rate_limit_mode       TEXT NOT NULL DEFAULT 'exact' CHECK (rate_limit_mode IN ('exact', 'leased'))
);

-- API keys. Only the SHA-256 of a key is stored; the plaintext is shown once.
CREATE TABLE api_keys (
  id                    TEXT PRIMARY KEY,
  prefix                TEXT NOT NULL,              -- e.g. ilal_live_3f9a1c2b: not secret, not unique
  hash                  TEXT NOT NULL UNIQUE,       -- lowercase hex SHA-256 of the whole key
  format                TEXT NOT NULL,              -- ilal | ila
  env                   TEXT CHECK (env IS NULL OR env IN ('live', 'test')),
  name                  TEXT NOT NULL,
  owner_id              TEXT REFERENCES users (id),
  status                TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive', 'revoked')),
  created_at            TEXT NOT NULL,
  updated_at            TEXT NOT NULL,
  last_used_at          TEXT,
  expires_at            TEXT,
  rate_limit_per_minute INTEGER CHECK (rate_limit_per_minute IS NULL OR rate_limit_per_minute > 0),
  rate_limit_per_day    INTEGER CHECK (rate_limit_per_day IS NULL OR rate_limit_per_day > 0),
  ip_allowlist          TEXT NOT NULL DEFAULT '[]', -- JSON array of addresses / CIDR ranges; [] = any
  products              TEXT NOT NULL DEFAULT '["*"]',
  scopes                TEXT NOT NULL DEFAULT '["*"]',
  rotated_to            TEXT REFERENCES api_keys (id),
  grace_until           TEXT,
  -- Moves with every keys-API write to the row: the ETag, and what a PATCH is conditioned on (0003).
  version               INTEGER NOT NULL DEFAULT 1,
  -- Who last set the status / the expiry ("admin_token", "user:<id>"); anyone but the owner binds the owner (0003).
  status_set_by         TEXT,
  expires_set_by        TEXT,
  -- The first key of this key's rotation chain: the chain shares one quota and one usage record (0004).
  lineage_id            TEXT,
  -- 'exact' or 'leased', null = the product's (0010).
  rate_limit_mode       TEXT CHECK (rate_limit_mode IS NULL OR rate_limit_mode IN ('exact', 'leased'))
);
-- Verification: SELECT … WHERE prefix = ? (the hot path on a cache miss).
CREATE INDEX api_keys_prefix ON api_keys (prefix);
-- Usage stats and owner-limit moves look a key's lineage up (0004).
CREATE INDEX api_keys_lineage ON api_keys (lineage_id);
-- Keys API: a user's own keys, newest first, the id breaking ties: one range per page (0005).
CREATE INDEX api_keys_owner ON api_keys (owner_id, created_at, id);
-- Keys API: an admin's list of every key, newest first (0005).
CREATE INDEX api_keys_created ON api_keys (created_at, id);

-- Admitted calls per credential per UTC day, kept current by the rate-limiter
-- Durable Object; serves last30Days in GET /api/v1/usage/stats.
CREATE TABLE usage_daily (
  key_id TEXT NOT NULL,   -- api key lineage id (the first key of a rotation chain), or the limiter name of a JWT caller
  day    TEXT NOT NULL,   -- YYYY-MM-DD (UTC)
  count  INTEGER NOT NULL,
  credits_used INTEGER NOT NULL DEFAULT 0,  -- credits used that day: costs at admission plus reported usage (0009)
  PRIMARY KEY (key_id, day)
) WITHOUT ROWID;

-- Who changed what, when. Written in the same D1 batch as the change.
CREATE TABLE audit_log (
  id          TEXT PRIMARY KEY,
  at          TEXT NOT NULL,
  actor       TEXT NOT NULL,   -- "user:<id>", "admin_token"
  action      TEXT NOT NULL,   -- e.g. key.create, key.revoke, product.update
  target_type TEXT NOT NULL,   -- key | product | user
  target_id   TEXT NOT NULL,
  details     TEXT             -- JSON: the changed fields (never a secret)
);
-- GET /api/v1/admin/audit: newest first (the rowid, last in every index, breaks ties).
CREATE INDEX audit_log_at ON audit_log (at);
-- ?targetId= (with or without ?targetType=), newest first (0005).
CREATE INDEX audit_log_target ON audit_log (target_id, at);
-- ?targetType= alone, newest first (0005).
CREATE INDEX audit_log_target_type ON audit_log (target_type, at);

-- Service credentials for POST /api/v1/keys/verify: issued by an admin to a
-- service that checks keys without proxying through keygate. Only the SHA-256
-- of the token is stored; `prefix` (its public part) finds the row (0007).
CREATE TABLE service_tokens (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL,
  prefix     TEXT NOT NULL UNIQUE,   -- "kgsvc_" + 12 characters: shown in lists, finds the row
  hash       TEXT NOT NULL,          -- lowercase hex SHA-256 of the whole token
  created_at TEXT NOT NULL,
  created_by TEXT NOT NULL,          -- the admin's actor name, as in the audit log
  revoked_at TEXT                    -- null while it works; revocation is final
);
-- The admin list: oldest first.
CREATE INDEX service_tokens_created ON service_tokens (created_at, id);

-- Webhook endpoints (0008): where signed events are delivered. `secret` is the
-- Standard Webhooks signing secret ("whsec_" + base64), stored as it is because
-- every delivery is signed with it (a hash could not sign); shown once, when the
-- endpoint is created or its secret rotated, never in a list.
CREATE TABLE webhook_endpoints (
  id          TEXT PRIMARY KEY,
  url         TEXT NOT NULL,                 -- https (http only for localhost / 127.0.0.1)
  description TEXT,
  secret      TEXT NOT NULL,                 -- "whsec_" + base64 of 32 random bytes
  events      TEXT NOT NULL DEFAULT '["*"]', -- JSON list of event types; ["*"] (or []) = every type
  enabled     INTEGER NOT NULL DEFAULT 1,    -- 0: nothing is delivered, pending deliveries are dropped
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL,
  created_by  TEXT NOT NULL                  -- the admin's actor name, as in the audit log
);
-- The admin list: oldest first.
CREATE INDEX webhook_endpoints_created ON webhook_endpoints (created_at, id);

-- Every event the queue consumer has fanned out, by its id (a hash of type,
-- subject and period): an id already here is not inserted again, so an event
-- published twice is delivered once (0008).
CREATE TABLE webhook_events (
  id         TEXT PRIMARY KEY,   -- "evt_" + 32 hex: every delivery's webhook-id
  type       TEXT NOT NULL,
  subject    TEXT NOT NULL,      -- e.g. "key:<lineage id>", "user:<id>"
  period     TEXT NOT NULL,      -- what the event is unique in for its subject (a day, an expiry, …)
  created_at TEXT NOT NULL
) WITHOUT ROWID;
-- The key.expiring scan skips keys already warned of: (subject, period) of an event (0008).
CREATE INDEX webhook_events_subject ON webhook_events (subject, period);

-- The hourly key.expiring scan: active keys by expiry, soonest first (0008).
CREATE INDEX api_keys_expiring ON api_keys (expires_at) WHERE status = 'active' AND expires_at IS NOT NULL;
