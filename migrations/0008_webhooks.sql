-- Signed webhooks (src/webhooks/): the endpoints an admin configures, and the
-- events already fanned out, which keep each event at most once.

-- Where events are delivered. `secret` is the Standard Webhooks signing
-- secret ("whsec_" + base64): every delivery is signed with an HMAC keyed by
-- it, so it is stored as it is (a hash could not sign). It is shown once, when
-- the endpoint is created or its secret rotated, and never in a list.
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
-- subject and period): inserting an id that is already here inserts nothing,
-- so a published-again event is dropped.
CREATE TABLE webhook_events (
  id         TEXT PRIMARY KEY,   -- "evt_" + 32 hex: every delivery's webhook-id
  type       TEXT NOT NULL,
  subject    TEXT NOT NULL,      -- e.g. "key:<lineage id>", "user:<id>"
  period     TEXT NOT NULL,      -- what the event is unique in for its subject (a day, an expiry, …)
  created_at TEXT NOT NULL
) WITHOUT ROWID;
-- The key.expiring scan skips keys already warned of: (subject, period) of an event.
CREATE INDEX webhook_events_subject ON webhook_events (subject, period);

-- The hourly key.expiring scan: active keys by expiry, soonest first.
CREATE INDEX api_keys_expiring ON api_keys (expires_at) WHERE status = 'active' AND expires_at IS NOT NULL;
