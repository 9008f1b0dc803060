//! The `mariadb` command-line client through the proxy prints what it prints against
//! the primary.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::support::{cluster, start_standard_proxy, unique_table};

fn mariadb(port: u16, args: &[&str], stdin: Option<&str>) -> Output {
    let app = &cluster().app;
    let mut child = Command::new("mariadb")
        .arg("--no-defaults")
        .arg("-h127.0.0.1")
        .arg(format!("-P{port}"))
        .arg(format!("-u{}", app.user))
        .arg(format!("-p{}", app.password))
        .arg("--protocol=tcp")
        .arg("--connect-timeout=10")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the mariadb client is installed");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn cli_output_matches_a_direct_run() {
    let proxy = start_standard_proxy();
    let primary = cluster().primary().port;
    let t = unique_table("cli");

    let setup = mariadb(
        proxy.port,
        &[
            "app",
            "-e",
            &format!(
                "CREATE TABLE {t} (id INT PRIMARY KEY, name VARCHAR(20), amount DECIMAL(8,2) NULL); \
                 INSERT INTO {t} VALUES (1, 'one', 1.10), (2, 'two', NULL), (3, 'trois', -3.00)"
            ),
        ],
        None,
    );
    assert!(
        setup.status.success(),
        "setup through the proxy failed: {}\n--- proxy log ---\n{}",
        text(&setup.stderr),
        proxy.log_tail(30)
    );
    // Each `mariadb -e` run is a new session: read-your-writes does not cover it (that is
    // per session), so let the replicas catch up with the setup before comparing output.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(cluster().wait_replicas_caught_up(std::time::Duration::from_secs(20)))
        .unwrap();

    let queries = [
        format!("SELECT * FROM {t} ORDER BY id"),
        format!("SELECT name, amount * 2 AS twice FROM {t} WHERE amount IS NOT NULL ORDER BY id"),
        format!("SHOW CREATE TABLE {t}"),
        "SELECT 1 AS a, 'x' AS b, NULL AS c, DATABASE() AS db".to_string(),
    ];
    for sql in &queries {
        for mode in [&["-B"][..], &["-t"][..], &["-N", "-B"][..]] {
            let mut args = vec!["app"];
            args.extend_from_slice(mode);
            args.extend_from_slice(&["-e", sql]);
            let through = mariadb(proxy.port, &args, None);
            let reference = mariadb(primary, &args, None);
            assert!(reference.status.success(), "{}", text(&reference.stderr));
            assert!(
                through.status.success(),
                "{sql} {mode:?} failed through the proxy: {}",
                text(&through.stderr)
            );
            assert_eq!(
                text(&through.stdout),
                text(&reference.stdout),
                "{sql} {mode:?}"
            );
        }
    }

    // A script on stdin, as `mariadb app < file.sql` would run it.
    let script = format!(
        "UPDATE {t} SET name = 'uno' WHERE id = 1;\nSELECT ROW_COUNT();\n\
         SELECT id, name FROM {t} ORDER BY id;\n"
    );
    let through = mariadb(proxy.port, &["app"], Some(&script));
    assert!(through.status.success(), "{}", text(&through.stderr));
    assert_eq!(
        text(&through.stdout),
        "ROW_COUNT()\n1\nid\tname\n1\tuno\n2\ttwo\n3\ttrois\n"
    );

    // Errors: same exit status and message.
    let bad = "SELECT * FROM app.no_such_table_cli";
    let through = mariadb(proxy.port, &["app", "-e", bad], None);
    let reference = mariadb(primary, &["app", "-e", bad], None);
    assert_eq!(through.status.code(), reference.status.code());
    assert_eq!(text(&through.stderr), text(&reference.stderr));
    assert!(text(&through.stderr).contains("ERROR 1146 (42S02)"));

    let drop = mariadb(proxy.port, &["app", "-e", &format!("DROP TABLE {t}")], None);
    assert!(drop.status.success(), "{}", text(&drop.stderr));
}

#[test]
fn cli_reports_a_wrong_password() {
    let proxy = start_standard_proxy();
    let out = Command::new("mariadb")
        .args([
            "--no-defaults",
            "-h127.0.0.1",
            "--protocol=tcp",
            "-uapp",
            "-pwrong-password",
        ])
        .arg(format!("-P{}", proxy.port))
        .args(["-e", "SELECT 1"])
        .stdin(Stdio::null())
        .output()
        .expect("the mariadb client is installed");
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("ERROR 1045 (28000): Access denied for user 'app'@'"),
        "{stderr}"
    );
}

/// A 20 MiB statement and a 20 MiB result with `--compress`: more than one 16 MiB packet inside
/// compressed frames, where Connector/C numbers every chunk 0 and expects the server's
/// numbering back. Through rwproxy the run succeeds and reads back what a direct run reads.
#[test]
fn cli_compressed_twenty_mib_both_ways() {
    let proxy = start_standard_proxy();
    let primary = cluster().primary().port;
    let t = unique_table("clz");
    let create = mariadb(
        primary,
        &[
            "app",
            "-e",
            &format!("CREATE TABLE {t} (id INT PRIMARY KEY, b LONGBLOB)"),
        ],
        None,
    );
    assert!(create.status.success(), "{}", text(&create.stderr));
    // Deterministic hex digits (xorshift), so the statement is 20 MiB on the wire.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let value: String = (0..20 * 1024 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b"0123456789abcdef"[(state & 15) as usize])
        })
        .collect();
    let big = ["--compress", "--max-allowed-packet=256M", "app"];
    for (id, port) in [(1, proxy.port), (2, primary)] {
        let insert = format!("INSERT INTO {t} VALUES ({id}, '{value}');\n");
        let out = mariadb(port, &big, Some(&insert));
        assert!(
            out.status.success(),
            "20 MiB compressed INSERT via port {port}: {}\n--- proxy log ---\n{}",
            text(&out.stderr),
            proxy.log_tail(20)
        );
    }
    let read = |port: u16, id: u32| {
        let sql = format!(
            "SELECT LENGTH(b), MD5(b) FROM {t} WHERE id = {id}; SELECT b FROM {t} WHERE id = {id}"
        );
        let mut args = big.to_vec();
        args.extend_from_slice(&["-N", "-B", "-e", &sql]);
        let out = mariadb(port, &args, None);
        assert!(
            out.status.success(),
            "20 MiB compressed SELECT via port {port}: {}",
            text(&out.stderr)
        );
        out.stdout
    };
    // A new session reads from a replica: let it apply the rows first.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(cluster().wait_replicas_caught_up(std::time::Duration::from_secs(30)))
        .unwrap();
    let through = read(proxy.port, 1);
    let direct = read(primary, 1);
    assert_eq!(through.len(), direct.len());
    assert!(
        through == direct,
        "the 20 MiB row read through rwproxy differs"
    );
    assert!(direct.starts_with(format!("{}\t", value.len()).as_bytes()));
    assert!(
        read(primary, 2) == direct.clone(),
        "rows 1 and 2 hold the same value"
    );
    let drop = mariadb(primary, &["app", "-e", &format!("DROP TABLE {t}")], None);
    assert!(drop.status.success(), "{}", text(&drop.stderr));
}
