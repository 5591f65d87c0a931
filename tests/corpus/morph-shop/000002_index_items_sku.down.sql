-- morph:nontransactional
DROP INDEX CONCURRENTLY shop_items_sku;
