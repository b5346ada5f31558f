-- Keyset pagination of the management lists (GET /api/v1/keys, /api/v1/admin/users,
-- /api/v1/admin/products, /api/v1/admin/audit): each page is one range of an index
-- in the list's order, ending in a unique column, so no list sorts or skips rows.

-- A user's own keys, newest first: (owner_id, created_at) gains the id that breaks ties.
DROP INDEX api_keys_owner;
CREATE INDEX api_keys_owner ON api_keys (owner_id, created_at, id);
-- An admin's list of every key, newest first.
CREATE INDEX api_keys_created ON api_keys (created_at, id);

-- Users, oldest first. (Products page by slug, through the index of its UNIQUE constraint.)
CREATE INDEX users_created ON users (created_at, id);

-- The audit log filtered by target id (its type, if given too, is only checked) or by
-- target type, newest first; like audit_log_at, each index ends in the rowid tiebreak.
CREATE INDEX audit_log_target ON audit_log (target_id, at);
CREATE INDEX audit_log_target_type ON audit_log (target_type, at);
