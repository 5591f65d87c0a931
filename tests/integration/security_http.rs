//! Issue 16 regressions at the HTTP edge: bounded metrics labels, trusted proxies for client addresses, bounded imports.
