DROP TABLE shop_items;
