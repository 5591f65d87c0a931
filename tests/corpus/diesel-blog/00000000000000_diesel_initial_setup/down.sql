DROP FUNCTION IF EXISTS blog_set_updated_at();
