//! Cost of classifying typical statements.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rwproxy_sql::classify;

/// A Hibernate-style SELECT of about 200 bytes.
const ORM_SELECT: &str = "select user0_.id as id1_3_, user0_.created_at as created_2_3_, \
user0_.email as email3_3_, user0_.display_name as display_4_3_, user0_.status as status5_3_ \
from users user0_ where user0_.email=? and user0_.status<>? limit ?";

const POINT_SELECT: &str = "SELECT * FROM t WHERE id = 42";

const INSERT: &str = "INSERT INTO `orders` (`customer_id`,`total`,`created_at`) \
VALUES (17,'129.90','2024-05-01 10:22:31')";

const COMMENTED_WITH_HINTS: &str = "/* controller:orders,action:show */ \
/* rwproxy:replica */ /* rwproxy:consistency=session */ \
SELECT o.id, o.total -- newest first\n FROM orders o WHERE o.customer_id = 17 \
ORDER BY o.created_at DESC LIMIT 20";

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("classify");
    for (name, sql) in [
        ("orm_select_200b", ORM_SELECT),
        ("point_select", POINT_SELECT),
        ("insert", INSERT),
        ("comments_and_hints", COMMENTED_WITH_HINTS),
    ] {
        group.throughput(Throughput::Bytes(sql.len() as u64));
        group.bench_function(name, |b| b.iter(|| classify(black_box(sql.as_bytes()))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
