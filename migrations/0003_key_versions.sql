-- Keys API concurrency and admin decisions (issue 13, security review F4 and F9).

-- Moves by one with every keys-API write to the row (an edit, a revocation, a
-- rotation's mark, detaching a deleted owner); usage copied by the rate limiter
-- (last_used_at) is not an edit and moves nothing. A PATCH writes only while the
-- row is still at the version it read, GET shows it as the key's ETag, and the
-- key's Durable Object keeps the state of the newest version it was told.
ALTER TABLE api_keys ADD COLUMN version INTEGER NOT NULL DEFAULT 1;

-- Who last set the status and the expiry: "admin_token" or "user:<id>". Set by
-- anyone but the key's owner (only an admin can edit another's key), it binds
-- the owner: they cannot lift that deactivation, nor remove the expiry or move it
-- later. NULL: not known (a key from before this migration that the audit log
-- does not explain); then the owner is not bound.
ALTER TABLE api_keys ADD COLUMN status_set_by  TEXT;
ALTER TABLE api_keys ADD COLUMN expires_set_by TEXT;

-- Backfill from the audit log. Status: the actor of the key's last deactivation
-- or reactivation.
UPDATE api_keys SET status_set_by = (
  SELECT actor FROM audit_log
  WHERE target_type = 'key' AND target_id = api_keys.id AND action IN ('key.deactivate', 'key.reactivate')
  ORDER BY at DESC, rowid DESC LIMIT 1
);

-- Expiry: the actor of the last audited write naming expiresAt, of the key or,
-- since a rotation's replacement copies its predecessor's expiry, of the key it
-- replaced (before the replacement was made), and so on up the chain.
WITH RECURSIVE predecessor (key_id, ancestor, depth, copied_at) AS (
  SELECT id, id, 0, NULL FROM api_keys
  UNION ALL
  SELECT predecessor.key_id, older.id, predecessor.depth + 1, newer.created_at
  FROM predecessor
  JOIN api_keys AS newer ON newer.id = predecessor.ancestor
  JOIN api_keys AS older ON older.rotated_to = newer.id
)
UPDATE api_keys SET expires_set_by = (
  SELECT audit_log.actor FROM predecessor JOIN audit_log ON audit_log.target_id = predecessor.ancestor
  WHERE predecessor.key_id = api_keys.id
    AND audit_log.target_type = 'key'
    AND json_type(audit_log.details, '$.expiresAt') IS NOT NULL
    AND (predecessor.copied_at IS NULL OR audit_log.at <= predecessor.copied_at)
  ORDER BY predecessor.depth, audit_log.at DESC, audit_log.rowid DESC LIMIT 1
)
WHERE expires_at IS NOT NULL;
