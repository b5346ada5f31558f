-- Leased admission (issue 17): how a key's calls are counted. 'exact' (the
-- default): every call asks the key's object. 'leased': Worker isolates admit
-- from calls the object granted them in advance (src/limits/lease.ts), never
-- over the limits, with estimated remaining counts. A key's null = its product's.
ALTER TABLE api_keys ADD COLUMN rate_limit_mode TEXT CHECK (rate_limit_mode IS NULL OR rate_limit_mode IN ('exact', 'leased'));
ALTER TABLE products ADD COLUMN rate_limit_mode TEXT NOT NULL DEFAULT 'exact' CHECK (rate_limit_mode IN ('exact', 'leased'));
