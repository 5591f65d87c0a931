DROP INDEX CONCURRENTLY blog_posts_author;
