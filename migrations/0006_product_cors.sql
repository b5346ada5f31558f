-- The browser origins a product admits cross-origin (CORS, SPEC section 7): a JSON
-- array of exact origins ("https://app.example.com"), or ["*"] for any; [] = none.
ALTER TABLE products ADD COLUMN cors_origins TEXT NOT NULL DEFAULT '[]';
