DROP TABLE blog_users;
