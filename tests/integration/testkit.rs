//! The test support itself: each test gets a database of its own on both servers, and it is gone after.

use migrate_hub_tests::{MySqlDatabase, PgDatabase};

#[tokio::test]
async fn postgres_databases_are_fresh_separate_and_dropped() {
    let a = PgDatabase::fresh().await;
    let b = PgDatabase::fresh().await;
    assert_ne!(a.name, b.name);
    sqlx::query("CREATE TABLE only_in_a (id int)").execute(&a.pool).await.unwrap();
    let in_b: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('only_in_a')::text").fetch_one(&b.pool).await.unwrap();
    assert_eq!(in_b, None);

    let name = a.name.clone();
    drop(a);
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(&name)
        .fetch_one(&b.pool)
        .await
        .unwrap();
    assert!(!exists, "{name} should have been dropped");
}

#[tokio::test]
async fn mysql_databases_are_fresh_separate_and_dropped() {
    let a = MySqlDatabase::fresh().await;
    let b = MySqlDatabase::fresh().await;
    assert_ne!(a.name, b.name);
    sqlx::query("CREATE TABLE only_in_a (id int)").execute(&a.pool).await.unwrap();
    let tables: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()")
            .fetch_one(&b.pool)
            .await
            .unwrap();
    assert_eq!(tables, 0);
    let version: String = sqlx::query_scalar("SELECT VERSION()").fetch_one(&a.pool).await.unwrap();
    assert!(!version.is_empty());

    let name = a.name.clone();
    drop(a);
    let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ?")
        .bind(&name)
        .fetch_one(&b.pool)
        .await
        .unwrap();
    assert_eq!(exists, 0, "{name} should have been dropped");
}
