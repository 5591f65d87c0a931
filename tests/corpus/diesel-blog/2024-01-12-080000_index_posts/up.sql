CREATE INDEX CONCURRENTLY blog_posts_author ON blog_posts (author_id) WHERE published;
