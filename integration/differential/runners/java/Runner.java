// Differential runner for MariaDB Connector/J (Debian's libmariadb-java), JDBC.
//
//   java -cp classes:mariadb-java-client.jar:gson.jar Runner --lib connector-j --scenarios FILE --port P ...
//
// Prints one JSON transcript (see ../common.py for the format) on stdout. JDBC exposes no
// COM_CHANGE_USER, COM_RESET_CONNECTION or server-side cursor here: those scenarios are unsupported.

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.sql.CallableStatement;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.SQLWarning;
import java.sql.Statement;
import java.sql.Types;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

public class Runner {
    static final int HASH_OVER = 2048;
    static final Set<String> FEATURES = Set.of("multi_statements", "multi_results", "local_infile", "tls",
            "compress", "prepared", "call");
    static Map<String, String> args = new HashMap<>();

    static class Unsupported extends Exception {
        Unsupported(String m) { super(m); }
    }

    static String hex(byte[] b) {
        StringBuilder sb = new StringBuilder();
        for (byte x : b) sb.append(String.format("%02x", x));
        return sb.toString();
    }

    static List<Object> hashed(String kind, byte[] b) throws Exception {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        return Arrays.asList(kind, "len=" + b.length + " sha256=" + hex(md.digest(b)));
    }

    /** A value as the application received it: [Java class, canonical text]. */
    static Object enc(Object v) throws Exception {
        if (v == null) return null;
        String kind = v.getClass().getSimpleName();
        if (v instanceof byte[]) {
            byte[] b = (byte[]) v;
            return b.length > HASH_OVER ? hashed(kind, b) : Arrays.asList(kind, hex(b));
        }
        String s = v.toString();
        if (s.length() > HASH_OVER) return hashed(kind, s.getBytes(StandardCharsets.UTF_8));
        return Arrays.asList(kind, s);
    }

    /** Connector/J puts the connection id in messages: "(conn=123) ...". It differs by design. */
    static String stripConn(String m) {
        return m == null ? null : m.replaceAll("\\(conn=\\d+\\) ", "(conn=N) ");
    }

    static Map<String, Object> serverError(Throwable e) {
        if (e instanceof SQLException) {
            SQLException s = (SQLException) e;
            if (s.getErrorCode() > 0 && s.getErrorCode() < 2000) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("code", s.getErrorCode());
                m.put("sqlstate", s.getSQLState());
                m.put("message", stripConn(s.getMessage()));
                return m;
            }
        }
        return null;
    }

    static Map<String, Object> describe(Throwable e) {
        Map<String, Object> m = serverError(e);
        if (m != null) return m;
        m = new LinkedHashMap<>();
        String msg = e.getClass().getSimpleName() + ": " + stripConn(String.valueOf(e.getMessage()));
        m.put("exception", msg.length() > 500 ? msg.substring(0, 500) : msg);
        if (e instanceof SQLException) {
            m.put("code", ((SQLException) e).getErrorCode());
            m.put("sqlstate", ((SQLException) e).getSQLState());
        }
        return m;
    }

    static List<Object> warnings(SQLWarning w) {
        List<Object> out = new ArrayList<>();
        for (; w != null; w = w.getNextWarning()) {
            out.add(Arrays.asList(w.getErrorCode(), w.getSQLState(), stripConn(w.getMessage())));
        }
        return out;
    }

    static Map<String, Object> resultSet(ResultSet rs) throws Exception {
        ResultSetMetaData md = rs.getMetaData();
        List<Object> cols = new ArrayList<>();
        int n = md.getColumnCount();
        for (int i = 1; i <= n; i++) {
            Map<String, Object> c = new LinkedHashMap<>();
            c.put("label", md.getColumnLabel(i));
            c.put("name", md.getColumnName(i));
            c.put("table", md.getTableName(i));
            c.put("catalog", md.getCatalogName(i));
            c.put("schema", md.getSchemaName(i));
            c.put("type", md.getColumnType(i));
            c.put("typeName", md.getColumnTypeName(i));
            c.put("className", md.getColumnClassName(i));
            c.put("precision", md.getPrecision(i));
            c.put("scale", md.getScale(i));
            c.put("displaySize", md.getColumnDisplaySize(i));
            c.put("nullable", md.isNullable(i));
            c.put("signed", md.isSigned(i));
            c.put("autoIncrement", md.isAutoIncrement(i));
            c.put("readOnly", md.isReadOnly(i));
            cols.add(c);
        }
        List<Object> rows = new ArrayList<>();
        while (rs.next()) {
            List<Object> row = new ArrayList<>();
            for (int i = 1; i <= n; i++) row.add(enc(rs.getObject(i)));
            rows.add(row);
        }
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("columns", cols);
        r.put("rows", rows);
        r.put("warnings", warnings(rs.getWarnings()));
        return r;
    }

    /** Every result of an executed statement, in order. */
    static void drain(Statement st, boolean isResultSet, List<Object> out) throws Exception {
        while (true) {
            if (isResultSet) {
                try (ResultSet rs = st.getResultSet()) {
                    out.add(resultSet(rs));
                }
            } else {
                int count = st.getUpdateCount();
                if (count == -1) break;
                Map<String, Object> r = new LinkedHashMap<>();
                r.put("updateCount", count);
                List<Object> keys = new ArrayList<>();
                try (ResultSet k = st.getGeneratedKeys()) {
                    while (k != null && k.next()) keys.add(enc(k.getObject(1)));
                } catch (SQLException e) {
                    keys.add("error: " + e.getErrorCode());
                }
                r.put("generatedKeys", keys);
                r.put("warnings", warnings(st.getWarnings()));
                out.add(r);
            }
            st.clearWarnings();
            isResultSet = st.getMoreResults();
        }
    }

    static Object param(JsonElement p) {
        if (p.isJsonNull()) return null;
        if (p.isJsonObject()) {
            JsonObject o = p.getAsJsonObject();
            return o.get("repeat").getAsString().repeat(o.get("times").getAsInt());
        }
        if (p.getAsJsonPrimitive().isNumber()) {
            String s = p.getAsString();
            if (s.contains(".") || s.contains("e") || s.contains("E")) return p.getAsDouble();
            return p.getAsLong();
        }
        return p.getAsString();
    }

    static void bind(PreparedStatement ps, List<Object> params) throws SQLException {
        for (int i = 0; i < params.size(); i++) {
            Object p = params.get(i);
            if (p == null) ps.setNull(i + 1, Types.VARCHAR);
            else ps.setObject(i + 1, p);
        }
    }

    static Connection connect(JsonObject opts) throws SQLException {
        StringBuilder url = new StringBuilder("jdbc:mariadb://" + args.get("host") + ":" + args.get("port") + "/"
                + args.get("database") + "?useServerPrepStmts=true&connectTimeout=10000&socketTimeout=60000");
        if (flag(opts, "multi_statements")) url.append("&allowMultiQueries=true");
        if (flag(opts, "local_infile")) url.append("&allowLocalInfile=true");
        if (flag(opts, "compress")) url.append("&useCompression=true");
        if (flag(opts, "tls")) url.append("&useSsl=true&trustServerCertificate=true");
        return DriverManager.getConnection(url.toString(), args.get("user"), args.get("password"));
    }

    static boolean flag(JsonObject o, String k) {
        return o != null && o.has(k) && o.get(k).getAsBoolean();
    }

    public static void main(String[] argv) throws Exception {
        args.put("host", "127.0.0.1");
        args.put("user", "app");
        args.put("password", "app_pass");
        args.put("database", "app");
        args.put("admin-user", "admin");
        args.put("admin-password", "admin_pass");
        args.put("only", "");
        for (int i = 0; i + 1 < argv.length; i += 2) args.put(argv[i].substring(2), argv[i + 1]);
        List<String> only = args.get("only").isEmpty() ? List.of() : Arrays.asList(args.get("only").split(","));
        JsonArray scenarios = JsonParser.parseString(Files.readString(Path.of(args.get("scenarios"))))
                .getAsJsonObject().getAsJsonArray("scenarios");
        Path tmp = Files.createTempDirectory("rwproxy-diff-");
        Map<String, Object> scenOut = new LinkedHashMap<>();
        String driverVersion = null;
        for (JsonElement se : scenarios) {
            JsonObject scen = se.getAsJsonObject();
            String name = scen.get("name").getAsString();
            if (!only.isEmpty() && !only.contains(name)) continue;
            JsonObject opts = scen.has("connect") ? scen.getAsJsonObject("connect") : new JsonObject();
            List<String> missing = new ArrayList<>();
            for (JsonElement n : scen.getAsJsonArray("needs")) if (!FEATURES.contains(n.getAsString())) missing.add(n.getAsString());
            for (String k : opts.keySet()) if (flag(opts, k) && !FEATURES.contains(k) && !missing.contains(k)) missing.add(k);
            if (!missing.isEmpty()) {
                scenOut.put(name, Map.of("unsupported", "library has no " + String.join(", ", missing)));
                continue;
            }
            List<Object> steps = new ArrayList<>();
            Connection c;
            try {
                c = connect(opts);
                Map<String, Object> info = new LinkedHashMap<>();
                info.put("product", c.getMetaData().getDatabaseProductVersion());
                driverVersion = c.getMetaData().getDriverVersion();
                steps.add(Map.of("connect", info));
            } catch (Exception e) {
                scenOut.put(name, Map.of("connect_error", describe(e)));
                continue;
            }
            for (JsonElement ste : scen.getAsJsonArray("steps")) {
                JsonObject step = ste.getAsJsonObject();
                String mode = step.has("mode") ? step.get("mode").getAsString() : "text";
                Map<String, Object> rec = new LinkedHashMap<>();
                rec.put("mode", mode);
                String sql = step.has("sql") ? step.get("sql").getAsString() : "";
                if (step.has("sql")) rec.put("sql", sql.length() > 80 ? sql.substring(0, 80) : sql);
                List<Object> results = new ArrayList<>();
                rec.put("results", results);
                try {
                    List<Object> params = new ArrayList<>();
                    if (step.has("params")) for (JsonElement p : step.getAsJsonArray("params")) params.add(param(p));
                    if (mode.equals("prepared_or_text")) mode = "prepared";
                    switch (mode) {
                        case "text": {
                            try (Statement st = c.createStatement()) {
                                drain(st, st.execute(sql, Statement.RETURN_GENERATED_KEYS), results);
                            }
                            break;
                        }
                        case "prepared": {
                            try (PreparedStatement ps = c.prepareStatement(sql, Statement.RETURN_GENERATED_KEYS)) {
                                bind(ps, params);
                                drain(ps, ps.execute(), results);
                            }
                            break;
                        }
                        case "call": {
                            try (CallableStatement cs = c.prepareCall(sql)) {
                                List<Integer> outs = new ArrayList<>();
                                for (JsonElement o : step.getAsJsonArray("out")) outs.add(o.getAsInt());
                                for (int i = 0; i < params.size(); i++) {
                                    if (outs.contains(i)) cs.registerOutParameter(i + 1, Types.VARCHAR);
                                    if (!outs.contains(i) || params.get(i) != null) {
                                        if (params.get(i) == null) cs.setNull(i + 1, Types.VARCHAR);
                                        else cs.setObject(i + 1, params.get(i));
                                    }
                                }
                                drain(cs, cs.execute(), results);
                                List<Object> outVals = new ArrayList<>();
                                for (int i : outs) outVals.add(enc(cs.getObject(i + 1)));
                                results.add(Map.of("out_params", outVals));
                            }
                            break;
                        }
                        case "load_local": {
                            Path f = tmp.resolve(name + "-" + steps.size() + ".csv");
                            Files.writeString(f, step.get("data").getAsString());
                            try (Statement st = c.createStatement()) {
                                drain(st, st.execute(sql.replace("{file}", f.toString())), results);
                            }
                            break;
                        }
                        case "admin": {
                            try (Connection a = DriverManager.getConnection("jdbc:mariadb://" + args.get("host") + ":"
                                    + args.get("admin-port") + "/", args.get("admin-user"), args.get("admin-password"));
                                 Statement st = a.createStatement()) {
                                st.execute(sql);
                            }
                            break;
                        }
                        case "cursor":
                            throw new Unsupported("no server-side cursor");
                        case "change_user":
                            throw new Unsupported("no change user");
                        case "reset_connection":
                            throw new Unsupported("no reset");
                        default:
                            throw new IllegalArgumentException("unknown mode " + mode);
                    }
                } catch (Unsupported e) {
                    rec.put("skipped", e.getMessage());
                } catch (Exception e) {
                    Map<String, Object> err = describe(e);
                    rec.put("error", err);
                    if (err.containsKey("exception")) {
                        try { c.close(); } catch (Exception ignored) { }
                        try {
                            c = connect(opts);
                            rec.put("reconnected", true);
                        } catch (Exception e2) {
                            rec.put("reconnect_error", describe(e2));
                            steps.add(rec);
                            break;
                        }
                    }
                }
                steps.add(rec);
            }
            try { c.close(); } catch (Exception ignored) { }
            scenOut.put(name, Map.of("steps", steps));
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("library", "connector-j");
        out.put("version", driverVersion);
        out.put("scenarios", scenOut);
        Gson gson = new GsonBuilder().serializeNulls().disableHtmlEscaping().create();
        PrintStream ps = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        ps.println(gson.toJson(out));
    }
}
