use std::time::{Duration, Instant};

use super::*;

/// A connection in these tests: a number, and whether it is still alive.
#[derive(Debug, PartialEq, Eq)]
struct Conn(u32, bool);

fn limits(cap: Option<u32>) -> PoolLimits {
    PoolLimits {
        reuse: true,
        max_per_backend: cap,
        wait_timeout: Duration::from_millis(200),
        idle_timeout: Duration::from_secs(60),
        max_age: Duration::from_secs(3600),
    }
}

async fn get(
    pool: &Arc<Pool<&'static str, Conn>>,
    key: &'static str,
) -> Acquired<&'static str, Conn> {
    let mut closing = Vec::new();
    let got = pool
        .acquire("db1", &key, |c| c.1, &mut closing)
        .await
        .unwrap();
    assert!(closing.is_empty(), "closed: {closing:?}");
    got
}

/// An "app" connection, preferring connection 0.
async fn get_preferring_0(
    pool: &Arc<Pool<&'static str, Conn>>,
    closing: &mut Vec<Conn>,
) -> Acquired<&'static str, Conn> {
    pool.acquire_preferring("db1", &"app", |c| c.0 == 0, |c| c.1, |_, _| false, closing)
        .await
        .unwrap()
}

fn open(pool: &Pool<&'static str, Conn>) -> u32 {
    pool.stats().first().map_or(0, |(_, s)| s.open)
}

#[tokio::test]
async fn a_returned_connection_is_reused_for_the_same_key_only() {
    let pool = Pool::new(limits(None));
    let Acquired::Open(permit) = get(&pool, "app").await else {
        panic!("nothing to reuse yet")
    };
    let lease = permit.opened();
    assert_eq!(open(&pool), 1);
    assert!(pool.release(lease, "app", Conn(1, true)).is_none());
    assert_eq!(pool.stats()[0].1, BackendPoolStats { open: 1, idle: 1 });

    // Another key: a new connection, the idle one stays.
    let Acquired::Open(other) = get(&pool, "report").await else {
        panic!("reused a connection of another account")
    };
    assert_eq!(open(&pool), 2);
    drop(other);
    assert_eq!(open(&pool), 1, "an unused permit frees its slot");

    let Acquired::Reused(conn, lease) = get(&pool, "app").await else {
        panic!("not reused")
    };
    assert_eq!(conn, Conn(1, true));
    assert_eq!(pool.stats()[0].1, BackendPoolStats { open: 1, idle: 0 });
    drop(lease);
    assert_eq!(open(&pool), 0, "a dropped lease frees its slot");
}

#[tokio::test]
async fn a_dead_idle_connection_is_closed_not_handed_out() {
    let pool = Pool::new(limits(None));
    let Acquired::Open(permit) = get(&pool, "app").await else {
        panic!()
    };
    pool.release(permit.opened(), "app", Conn(1, false));
    let mut closing = Vec::new();
    let got = pool
        .acquire("db1", &"app", |c| c.1, &mut closing)
        .await
        .unwrap();
    assert!(matches!(got, Acquired::Open(_)));
    assert_eq!(closing, vec![Conn(1, false)]);
    assert_eq!(open(&pool), 1, "the dead one's slot went to the new one");
}

#[tokio::test]
async fn at_the_cap_an_idle_connection_of_another_key_makes_room() {
    let pool = Pool::new(limits(Some(1)));
    let Acquired::Open(permit) = get(&pool, "report").await else {
        panic!()
    };
    pool.release(permit.opened(), "report", Conn(7, true));
    let mut closing = Vec::new();
    let got = pool
        .acquire("db1", &"app", |c| c.1, &mut closing)
        .await
        .unwrap();
    assert!(matches!(got, Acquired::Open(_)));
    assert_eq!(closing, vec![Conn(7, true)]);
    assert_eq!(open(&pool), 1);
}

#[tokio::test(start_paused = true)]
async fn at_the_cap_a_session_waits_for_a_slot_then_gives_up() {
    let pool = Pool::new(limits(Some(1)));
    let Acquired::Open(permit) = get(&pool, "app").await else {
        panic!()
    };
    let lease = permit.opened();

    // Nothing frees: the wait ends with PoolFull after wait_timeout.
    let mut closing = Vec::new();
    let err = match pool.acquire("db1", &"app", |c| c.1, &mut closing).await {
        Err(e) => e,
        Ok(_) => panic!("got a connection above the cap"),
    };
    assert_eq!((err.backend.as_str(), err.cap), ("db1", 1));
    assert!(err.waited >= Duration::from_millis(200), "{err}");
    assert!(err.to_string().contains("pool.max_per_backend"), "{err}");

    // The held connection comes back meanwhile: the waiter gets it.
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut closing = Vec::new();
            match pool.acquire("db1", &"app", |c| c.1, &mut closing).await {
                Ok(Acquired::Reused(conn, _lease)) => conn,
                Ok(Acquired::Open(_) | Acquired::Adopt(..)) => panic!("opened above the cap"),
                Err(e) => panic!("{e}"),
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(pool.release(lease, "app", Conn(3, true)).is_none());
    assert_eq!(waiter.await.unwrap(), Conn(3, true));
}

#[tokio::test(start_paused = true)]
async fn a_closed_connection_frees_its_slot_for_a_waiter() {
    let pool = Pool::new(limits(Some(1)));
    let Acquired::Open(permit) = get(&pool, "app").await else {
        panic!()
    };
    let lease = permit.opened();
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut closing = Vec::new();
            matches!(
                pool.acquire("db1", &"report", |c| c.1, &mut closing).await,
                Ok(Acquired::Open(_))
            )
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(lease);
    assert!(waiter.await.unwrap(), "the freed slot went to the waiter");
}

#[tokio::test]
async fn sweep_closes_idle_expired_old_and_removed_backends() {
    let mut l = limits(None);
    l.idle_timeout = Duration::from_secs(10);
    l.max_age = Duration::from_secs(100);
    let pool = Pool::new(l);
    let Acquired::Open(permit) = get(&pool, "app").await else {
        panic!()
    };
    pool.release(permit.opened(), "app", Conn(1, true));
    let now = Instant::now();
    assert!(pool
        .sweep(now + Duration::from_secs(5), |_| true)
        .is_empty());
    let gone = pool.sweep(now + Duration::from_secs(11), |_| true);
    assert_eq!(gone, vec![("db1".to_string(), Conn(1, true))]);
    assert!(
        pool.stats().is_empty(),
        "nothing open: the backend's entry is gone"
    );

    let Acquired::Open(permit) = get(&pool, "app").await else {
        panic!()
    };
    pool.release(permit.opened(), "app", Conn(2, true));
    let gone = pool.sweep(Instant::now(), |name| name != "db1");
    assert_eq!(gone.len(), 1, "a backend removed by a reload");
}

#[tokio::test]
async fn with_reuse_off_nothing_is_kept() {
    let mut l = limits(None);
    l.reuse = false;
    let pool = Pool::new(l);
    let Acquired::Open(permit) = get(&pool, "app").await else {
        panic!()
    };
    let back = pool.release(permit.opened(), "app", Conn(1, true));
    assert_eq!(back, Some(Conn(1, true)));
    assert_eq!(open(&pool), 0);
}

#[tokio::test]
async fn a_connection_past_max_age_is_not_kept() {
    let mut l = limits(None);
    l.max_age = Duration::ZERO;
    let pool = Pool::new(l);
    let Acquired::Open(permit) = get(&pool, "app").await else {
        panic!()
    };
    assert!(pool
        .release(permit.opened(), "app", Conn(1, true))
        .is_some());
    assert_eq!(open(&pool), 0);
}

#[tokio::test]
async fn a_backend_that_went_down_loses_its_idle_connections() {
    let pool = Pool::new(limits(None));
    let Acquired::Open(a) = get(&pool, "app").await else {
        panic!()
    };
    let Acquired::Open(b) = get(&pool, "app").await else {
        panic!()
    };
    let held = b.opened();
    pool.release(a.opened(), "app", Conn(1, true));
    assert_eq!(pool.drain_backend("db1"), vec![Conn(1, true)]);
    assert_eq!(pool.stats()[0].1, BackendPoolStats { open: 1, idle: 0 });
    drop(held);
    assert_eq!(open(&pool), 0);
}

#[tokio::test]
async fn the_preferred_connection_comes_back_first_else_the_most_recent() {
    let pool = Pool::new(limits(None));
    let mut leases = Vec::new();
    for _ in 0..3 {
        let Acquired::Open(permit) = get(&pool, "app").await else {
            panic!("nothing idle yet")
        };
        leases.push(permit.opened());
    }
    for (n, lease) in leases.into_iter().enumerate() {
        assert!(pool.release(lease, "app", Conn(n as u32, true)).is_none());
    }
    let mut closing = Vec::new();
    // Connection 0 was returned first; preferred, it is taken over the more recent ones.
    let Acquired::Reused(conn, lease) = get_preferring_0(&pool, &mut closing).await else {
        panic!("not reused")
    };
    assert_eq!(conn, Conn(0, true));
    drop(lease);
    // No preferred one idle: the most recently returned.
    let Acquired::Reused(conn, _lease) = get_preferring_0(&pool, &mut closing).await else {
        panic!("not reused")
    };
    assert_eq!(conn, Conn(2, true));
    assert!(closing.is_empty());
}

/// At the cap, each returned connection wakes one waiter, which takes it: 40 sessions taking
/// turns on one connection all get it, none times out (no lost wake-up), and the pool never
/// opens a second one.
#[tokio::test]
async fn waiters_take_turns_on_one_connection() {
    let mut l = limits(Some(1));
    l.wait_timeout = Duration::from_secs(5);
    let pool = Pool::new(l);
    let Acquired::Open(permit) = get(&pool, "app").await else {
        panic!("nothing idle yet")
    };
    let first = permit.opened();
    let mut tasks = Vec::new();
    for n in 0..40u32 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut closing = Vec::new();
            match pool.acquire("db1", &"app", |c| c.1, &mut closing).await {
                Ok(Acquired::Reused(conn, lease)) => {
                    tokio::task::yield_now().await;
                    assert!(pool.release(lease, "app", conn).is_none());
                    n
                }
                Ok(Acquired::Open(_) | Acquired::Adopt(..)) => {
                    panic!("opened a second connection at the cap")
                }
                Err(full) => panic!("waiter {n}: {full}"),
            }
        }));
    }
    tokio::task::yield_now().await;
    assert!(pool.release(first, "app", Conn(1, true)).is_none());
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(pool.stats()[0].1, BackendPoolStats { open: 1, idle: 1 });
}

#[tokio::test]
async fn at_the_cap_an_idle_connection_of_another_key_is_adopted_when_the_caller_can() {
    let pool = Pool::new(limits(Some(1)));
    let Acquired::Open(permit) = get(&pool, "app").await else {
        panic!("nothing to reuse yet")
    };
    assert!(pool
        .release(permit.opened(), "app", Conn(1, true))
        .is_none());
    let mut closing = Vec::new();
    // The caller cannot take it over: closed to make room (as before), a new one opened.
    let got = pool
        .acquire_preferring(
            "db1",
            &"report",
            |_| false,
            |c| c.1,
            |_, _| false,
            &mut closing,
        )
        .await
        .unwrap();
    assert!(matches!(got, Acquired::Open(_)));
    assert_eq!(closing, vec![Conn(1, true)]);
    let Acquired::Open(permit) = got else {
        unreachable!()
    };
    assert!(pool
        .release(permit.opened(), "app", Conn(2, true))
        .is_none());
    // It can (a change of user): handed over, nothing closed, still one connection.
    closing.clear();
    let got = pool
        .acquire_preferring(
            "db1",
            &"report",
            |_| false,
            |c| c.1,
            |key, c| *key == "app" && c.1,
            &mut closing,
        )
        .await
        .unwrap();
    let Acquired::Adopt(conn, lease) = got else {
        panic!("not adopted")
    };
    assert_eq!(conn, Conn(2, true));
    assert!(closing.is_empty());
    assert_eq!(pool.stats()[0].1, BackendPoolStats { open: 1, idle: 0 });
    // Given back under its new key, it is the new key's.
    assert!(pool.release(lease, "report", conn).is_none());
    let Acquired::Reused(conn, _lease) = get(&pool, "report").await else {
        panic!("not reused under the new key")
    };
    assert_eq!(conn, Conn(2, true));
}

#[tokio::test]
async fn a_returned_connection_goes_to_the_caller_waiting_first() {
    let pool = Pool::new(limits(Some(1)));
    let Acquired::Open(permit) = get(&pool, "app").await else {
        panic!("nothing to reuse yet")
    };
    let lease = permit.opened();
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut closing = Vec::new();
            match pool.acquire("db1", &"app", |c| c.1, &mut closing).await {
                Ok(Acquired::Reused(conn, lease)) => (conn, lease),
                Ok(_) => panic!("not the returned connection"),
                Err(e) => panic!("{e}"),
            }
        })
    };
    // The waiter is in line at the cap.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(pool.release(lease, "app", Conn(1, true)).is_none());
    // The caller that gave it back asks again at once, before the waiter ran (one poll):
    // it does not jump the line, even for its own connection.
    let mut closing = Vec::new();
    let again = tokio::time::timeout(
        Duration::ZERO,
        pool.acquire_preferring(
            "db1",
            &"app",
            |c| c.0 == 1,
            |c| c.1,
            |_, _| false,
            &mut closing,
        ),
    )
    .await;
    assert!(
        again.is_err(),
        "the connection went to a caller that came later"
    );
    let (conn, lease) = waiter.await.unwrap();
    assert_eq!(conn, Conn(1, true));
    // Given back, the next caller gets it.
    assert!(pool.release(lease, "app", conn).is_none());
    let Acquired::Reused(conn, _lease) = get(&pool, "app").await else {
        panic!("not reused")
    };
    assert_eq!(conn, Conn(1, true));
}
