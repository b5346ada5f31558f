-- Quotas follow the credential, not the key id (issue 13, F5): a rotation's
-- replacement shares its predecessor's counters. lineage_id is the id of the
-- first key of a rotation chain; the rate limiter counts a key in the object
-- named after its lineage (key:<lineage_id>), and usage is filed under it.
ALTER TABLE api_keys ADD COLUMN lineage_id TEXT;

-- Every existing chain: a key nobody rotated to starts one; each rotated_to inherits it.
WITH RECURSIVE chain (id, lineage) AS (
  SELECT id, id FROM api_keys WHERE id NOT IN (SELECT rotated_to FROM api_keys WHERE rotated_to IS NOT NULL)
  UNION ALL
  SELECT api_keys.rotated_to, chain.lineage FROM api_keys JOIN chain ON api_keys.id = chain.id WHERE api_keys.rotated_to IS NOT NULL
)
UPDATE api_keys SET lineage_id = (SELECT lineage FROM chain WHERE chain.id = api_keys.id);

-- Usage stats and the rate limiter look a key's lineage up by it.
CREATE INDEX api_keys_lineage ON api_keys (lineage_id);

-- Owner-level limits (issue 13): set by an admin on a user, shared by all of
-- that user's keys and tokens. NULL = no owner-level limit.
ALTER TABLE users ADD COLUMN rate_limit_per_minute INTEGER CHECK (rate_limit_per_minute IS NULL OR rate_limit_per_minute > 0);
ALTER TABLE users ADD COLUMN rate_limit_per_day    INTEGER CHECK (rate_limit_per_day IS NULL OR rate_limit_per_day > 0);
ALTER TABLE users ADD COLUMN max_active_keys       INTEGER CHECK (max_active_keys IS NULL OR max_active_keys >= 0);
