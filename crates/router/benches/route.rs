use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rwproxy_router::{decide, SessionView};
use rwproxy_sql::classify;

fn bench(c: &mut Criterion) {
    let yaml = "backends:\n  - { name: db1, address: 127.0.0.1:3316, primary: true }\nusers:\n  - { name: app, password: x }\n";
    let env: std::collections::HashMap<String, String> = Default::default();
    let config = rwproxy_config::parse(yaml, &env).expect("bench config");
    let sql = b"SELECT `users`.`id`, `users`.`email`, `users`.`name` FROM `users` WHERE `users`.`account_id` = 42 AND `users`.`deleted_at` IS NULL ORDER BY `users`.`created_at` DESC LIMIT 20";
    let session = SessionView::default();
    c.bench_function("classify + decide (200-byte ORM SELECT)", |b| {
        b.iter(|| {
            let class = classify(black_box(sql));
            decide(&class, sql, "app", Some("app"), &session, &config.routing)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
