CREATE TABLE shop_items (
    id bigserial PRIMARY KEY,
    sku text NOT NULL,
    price_cents integer NOT NULL CHECK (price_cents >= 0)
);
