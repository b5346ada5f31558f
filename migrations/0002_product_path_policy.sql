-- How a product's scope rules match the canonical request path (SPEC section 3):
-- by default case-insensitively and ignoring one trailing slash, as Express and
-- most origin routers serve paths.
ALTER TABLE products ADD COLUMN case_sensitive_rules  INTEGER NOT NULL DEFAULT 0 CHECK (case_sensitive_rules IN (0, 1));
ALTER TABLE products ADD COLUMN strict_trailing_slash INTEGER NOT NULL DEFAULT 0 CHECK (strict_trailing_slash IN (0, 1));
