-- morph:nontransactional
CREATE UNIQUE INDEX CONCURRENTLY shop_items_sku ON shop_items (sku);
