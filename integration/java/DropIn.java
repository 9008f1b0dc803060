// MariaDB Connector/J through rwproxy: server-side prepared statements, a batch insert sent as
// COM_STMT_BULK_EXECUTE, a 20 MiB blob, and the compressed protocol.
//
// Run by integration/java/run.sh (which compiles it); settings come from the environment:
//   RWPROXY_PORT   rwproxy's client port on 127.0.0.1 (required)
//   PRIMARY_PORT   the primary's port, to check what arrived there (required)
//   APP_USER / APP_PASSWORD   the account (default app / app_pass)
// Prints one "ok: ..." or "FAILED: ..." line per check and "N passed, M failed" at the end;
// exits 1 if any check failed (or on an exception).

import java.security.MessageDigest;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Arrays;
import java.util.Random;

public final class DropIn {
    private static int passed = 0;
    private static int failed = 0;

    private static String env(String name, String fallback) {
        String v = System.getenv(name);
        if (v == null || v.isEmpty()) {
            if (fallback == null) {
                throw new IllegalStateException(name + " is not set");
            }
            return fallback;
        }
        return v;
    }

    private static final String USER = env("APP_USER", "app");
    private static final String PASSWORD = env("APP_PASSWORD", "app_pass");

    private static Connection open(String port, String options) throws SQLException {
        String url = "jdbc:mariadb://127.0.0.1:" + port + "/app?" + options;
        return DriverManager.getConnection(url, USER, PASSWORD);
    }

    /** Records a check; a failed one is reported and the run goes on (exit 1 at the end). */
    private static void check(boolean ok, String what) {
        if (ok) {
            passed++;
            System.out.println("ok: " + what);
        } else {
            failed++;
            System.out.println("FAILED: " + what);
        }
    }

    private static long scalarLong(Connection c, String sql) throws SQLException {
        try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery(sql)) {
            if (!rs.next()) {
                throw new AssertionError("no row for " + sql);
            }
            return rs.getLong(1);
        }
    }

    private static long sessionStatus(Connection c, String name) throws SQLException {
        try (Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("SHOW SESSION STATUS LIKE '" + name + "'")) {
            if (!rs.next()) {
                throw new AssertionError("no status variable " + name);
            }
            return rs.getLong(2);
        }
    }

    public static void main(String[] args) throws Exception {
        String proxyPort = env("RWPROXY_PORT", null);
        String primaryPort = env("PRIMARY_PORT", null);
        String suffix = Long.toString(ProcessHandle.current().pid()) + "_" + System.nanoTime() % 100000;
        String table = "t_java_" + suffix;
        String blobTable = "t_javablob_" + suffix;
        long primaryId;
        try (Connection direct = open(primaryPort, "")) {
            primaryId = scalarLong(direct, "SELECT @@server_id");
        }

        try (Connection c = open(proxyPort,
                "useServerPrepStmts=true&useBulkStmts=true&maxAllowedPacket=67108864")) {
            // Server-side prepared statements.
            try (PreparedStatement ps = c.prepareStatement("SELECT ? + 1, CONCAT(?, 'x')")) {
                check(ps.getClass().getSimpleName().startsWith("ServerSide"),
                        "the driver uses server-side prepared statements ("
                                + ps.getClass().getSimpleName() + ")");
                for (int i = 0; i < 3; i++) {
                    ps.setInt(1, 41 + i);
                    ps.setString(2, "v" + i);
                    try (ResultSet rs = ps.executeQuery()) {
                        check(rs.next() && rs.getLong(1) == 42 + i && rs.getString(2).equals("v" + i + "x"),
                                "server-side prepared SELECT, execution " + (i + 1));
                    }
                }
            }

            try (Statement st = c.createStatement()) {
                st.execute("CREATE TABLE " + table + " (id INT PRIMARY KEY, name VARCHAR(64), n BIGINT)");
            }

            // 1,000 rows in one batch: COM_STMT_BULK_EXECUTE with useBulkStmts=true. Run in a
            // transaction so that the session counters read afterwards are the primary's.
            c.setAutoCommit(false);
            long server = scalarLong(c, "SELECT @@server_id FOR UPDATE");
            check(server == primaryId, "the transaction runs on the primary (server " + server + ")");
            long executesBefore = sessionStatus(c, "Com_stmt_execute");
            try (PreparedStatement ps = c.prepareStatement(
                    "INSERT INTO " + table + " (id, name, n) VALUES (?, ?, ?)")) {
                for (int i = 1; i <= 1000; i++) {
                    ps.setInt(1, i);
                    ps.setString(2, "row-" + i);
                    ps.setLong(3, (long) i * i);
                    ps.addBatch();
                }
                int[] counts = ps.executeBatch();
                check(counts.length == 1000, "executeBatch returned 1000 update counts (" + counts.length + ")");
            }
            long executesAfter = sessionStatus(c, "Com_stmt_execute");
            long executes = executesAfter - executesBefore;
            System.out.println("info: Com_stmt_execute on the primary session rose by " + executes
                    + " for the 1000-row batch");
            check(executes < 1000,
                    "the batch was not sent as 1000 single executions (Com_stmt_execute +" + executes + ")");
            c.commit();
            c.setAutoCommit(true);
        }
        try (Connection direct = open(primaryPort, "")) {
            long rows = scalarLong(direct, "SELECT COUNT(*) FROM " + table);
            long sum = scalarLong(direct, "SELECT SUM(n) FROM " + table);
            long names = scalarLong(direct,
                    "SELECT COUNT(*) FROM " + table + " WHERE name = CONCAT('row-', id)");
            check(rows == 1000, "all 1000 batch rows are on the primary (" + rows + ")");
            check(sum == 333833500L, "the batch values arrived intact (sum " + sum + ")");
            check(names == 1000, "every name matches its id (" + names + ")");
        }

        // A 20 MiB blob both ways with server-side prepared statements.
        byte[] blob = new byte[20 * 1024 * 1024];
        new Random(0x5eedL).nextBytes(blob);
        try (Connection c = open(proxyPort, "useServerPrepStmts=true&maxAllowedPacket=67108864")) {
            try (Statement st = c.createStatement()) {
                st.execute("CREATE TABLE " + blobTable + " (id INT PRIMARY KEY, b LONGBLOB)");
            }
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + blobTable + " VALUES (?, ?)")) {
                ps.setInt(1, 1);
                ps.setBytes(2, blob);
                check(ps.executeUpdate() == 1, "20 MiB blob inserted");
            }
            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement("SELECT b FROM " + blobTable + " WHERE id = ?")) {
                ps.setInt(1, 1);
                try (ResultSet rs = ps.executeQuery()) {
                    check(rs.next() && Arrays.equals(rs.getBytes(1), blob), "20 MiB blob read back intact");
                }
            }
            c.commit();
            c.setAutoCommit(true);
        }
        try (Connection direct = open(primaryPort, "")) {
            String hex;
            try (Statement st = direct.createStatement();
                    ResultSet rs = st.executeQuery("SELECT SHA1(b) FROM " + blobTable + " WHERE id = 1")) {
                rs.next();
                hex = rs.getString(1);
            }
            byte[] digest = MessageDigest.getInstance("SHA-1").digest(blob);
            StringBuilder want = new StringBuilder();
            for (byte b : digest) {
                want.append(String.format("%02x", b));
            }
            check(want.toString().equals(hex), "the blob on the primary is the one sent");
        }

        // The compressed protocol.
        try (Connection c = open(proxyPort, "useCompression=true&useServerPrepStmts=true")) {
            long rows = scalarLong(c, "SELECT COUNT(*) FROM " + table);
            check(rows == 1000, "compressed: COUNT(*) = " + rows);
            try (Statement st = c.createStatement();
                    ResultSet rs = st.executeQuery("SELECT id, name, REPEAT(name, 20) FROM " + table + " ORDER BY id")) {
                int seen = 0;
                while (rs.next()) {
                    seen++;
                    String name = "row-" + seen;
                    if (rs.getInt(1) != seen || !name.equals(rs.getString(2))
                            || !rs.getString(3).equals(name.repeat(20))) {
                        throw new AssertionError("compressed: row " + seen + " differs");
                    }
                }
                check(seen == 1000, "compressed: 1000 rows read in order");
            }
            try (PreparedStatement ps = c.prepareStatement("SELECT ? * 2")) {
                ps.setInt(1, 21);
                try (ResultSet rs = ps.executeQuery()) {
                    check(rs.next() && rs.getLong(1) == 42, "compressed: prepared statement");
                }
            }
        }
        // A 20 MiB value in a text-protocol statement inside compressed frames: the statement is
        // more than one 16 MiB packet, and the reply's sequence ids must be the server's.
        try (Connection c = open(proxyPort, "useCompression=true&maxAllowedPacket=67108864")) {
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + blobTable + " VALUES (?, ?)")) {
                ps.setInt(1, 2);
                ps.setBytes(2, blob);
                check(ps.executeUpdate() == 1, "compressed: 20 MiB blob inserted (text protocol)");
            }
            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement("SELECT b FROM " + blobTable + " WHERE id = ?")) {
                ps.setInt(1, 2);
                try (ResultSet rs = ps.executeQuery()) {
                    check(rs.next() && Arrays.equals(rs.getBytes(1), blob), "compressed: 20 MiB blob read back intact");
                }
            }
            c.commit();
            c.setAutoCommit(true);
        }

        try (Connection c = open(proxyPort, "")) {
            try (Statement st = c.createStatement()) {
                st.execute("DROP TABLE " + table);
                st.execute("DROP TABLE " + blobTable);
            }
        }
        System.out.println(passed + " passed, " + failed + " failed");
        if (failed > 0) {
            System.exit(1);
        }
    }
}
