CREATE TABLE blog_users (
    id bigserial PRIMARY KEY,
    handle text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER blog_users_updated_at BEFORE UPDATE ON blog_users
    FOR EACH ROW EXECUTE FUNCTION blog_set_updated_at();
