CREATE TABLE blog_posts (
    id bigserial PRIMARY KEY,
    author_id bigint NOT NULL REFERENCES blog_users (id) ON DELETE CASCADE,
    title text NOT NULL,
    body text NOT NULL DEFAULT '',
    published boolean NOT NULL DEFAULT false
);
