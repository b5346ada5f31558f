-- Credits (issue 16). Balances live in the rate limiter's Durable Objects,
-- beside the windows they are decided with; D1 holds what prices a call and
-- the daily history.
--   cost_rules:    JSON list of {method?, path?, cost}: the first rule matching a
--                  call gives its cost in credits (no match: 1).
--   usage_header:  response header the origin reports a call's metered usage in
--                  (e.g. X-Usage-Cost); keygate strips it and debits it afterwards.
--   usage_reserve: with a usage header, the least balance a call needs to be admitted.
ALTER TABLE products ADD COLUMN cost_rules TEXT NOT NULL DEFAULT '[]';
ALTER TABLE products ADD COLUMN usage_header TEXT;
ALTER TABLE products ADD COLUMN usage_reserve INTEGER NOT NULL DEFAULT 1;
-- Credits used per key lineage per UTC day (cost at admission plus reported usage).
ALTER TABLE usage_daily ADD COLUMN credits_used INTEGER NOT NULL DEFAULT 0;
