-- Service credentials for POST /api/v1/keys/verify: issued by an admin to a
-- service that checks keys without proxying through keygate. Only the SHA-256
-- of the token is stored; `prefix` (its public part) finds the row.
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
