<?php
// Differential runner for PHP's mysqli and PDO_mysql (both on mysqlnd).
//
//   php -d mysqli.allow_local_infile=1 runner.php --lib mysqli|pdo_mysql --scenarios FILE --port P --admin-port A
//
// Prints one JSON transcript (see ../common.py for the format) on stdout.

const HASH_OVER = 2048;

class Unsupported extends Exception {}

function args(): array {
    $a = ['host' => '127.0.0.1', 'user' => 'app', 'password' => 'app_pass', 'database' => 'app',
          'admin-user' => 'admin', 'admin-password' => 'admin_pass', 'tls-ca' => '', 'only' => ''];
    $argv = array_slice($_SERVER['argv'], 1);
    for ($i = 0; $i + 1 < count($argv); $i += 2) {
        $a[substr($argv[$i], 2)] = $argv[$i + 1];
    }
    return $a;
}

function enc($v) {
    if ($v === null) return null;
    $t = gettype($v);
    if ($t === 'string') {
        if (strlen($v) > HASH_OVER) return ['string', 'len=' . strlen($v) . ' sha256=' . hash('sha256', $v)];
        return preg_match('//u', $v) ? ['string', $v] : ['string-bytes', bin2hex($v)];
    }
    if ($t === 'double') return ['double', var_export($v, true)];
    if ($t === 'boolean') return ['boolean', $v ? 'true' : 'false'];
    return [$t, (string)$v];
}

function big_param($p) {
    return is_array($p) && isset($p['repeat']) ? str_repeat($p['repeat'], $p['times']) : $p;
}

// ------------------------------------------------------------------ mysqli

class MysqliDriver {
    public array $features = ['multi_statements', 'multi_results', 'local_infile', 'tls', 'compress',
                              'change_user', 'prepared', 'cursor'];
    private ?mysqli $c = null;

    function __construct(private array $a) {
        mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
    }

    function connect(array $o) {
        $c = mysqli_init();
        $c->options(MYSQLI_OPT_CONNECT_TIMEOUT, 10);
        $c->options(MYSQLI_OPT_READ_TIMEOUT, 60);
        $flags = 0;
        if (!empty($o['local_infile'])) $c->options(MYSQLI_OPT_LOCAL_INFILE, true);
        if (!empty($o['compress'])) $flags |= MYSQLI_CLIENT_COMPRESS;
        if (!empty($o['tls'])) {
            $c->ssl_set(null, null, $this->a['tls-ca'] ?: null, null, null);
            $flags |= MYSQLI_CLIENT_SSL | MYSQLI_CLIENT_SSL_DONT_VERIFY_SERVER_CERT;
        }
        $c->real_connect($this->a['host'], $this->a['user'], $this->a['password'], $this->a['database'],
                         (int)$this->a['port'], null, $flags);
        $this->c = $c;
        return ['server_info' => $c->server_info, 'server_version' => $c->server_version,
                'protocol' => $c->protocol_version, 'charset' => $c->character_set_name()];
    }

    function server_error(Throwable $e) {
        if ($e instanceof mysqli_sql_exception && $e->getCode() > 0 && $e->getCode() < 2000) {
            return ['code' => $e->getCode(), 'sqlstate' => $e->getSqlState(), 'message' => $e->getMessage()];
        }
        return null;
    }

    private function fields($fs): array {
        return array_map(fn($f) => ['name' => $f->name, 'orgname' => $f->orgname, 'table' => $f->table,
            'orgtable' => $f->orgtable, 'db' => $f->db, 'catalog' => $f->catalog, 'max_length' => $f->max_length,
            'length' => $f->length, 'charsetnr' => $f->charsetnr, 'flags' => $f->flags, 'type' => $f->type,
            'decimals' => $f->decimals], $fs);
    }

    private function ok(): array {
        return ['affected_rows' => $this->c->affected_rows, 'insert_id' => $this->c->insert_id,
                'warning_count' => $this->c->warning_count, 'info' => $this->c->info,
                'field_count' => $this->c->field_count];
    }

    private function result($r, array &$out) {
        if ($r instanceof mysqli_result) {
            $rows = [];
            while ($row = $r->fetch_row()) $rows[] = array_map('enc', $row);
            $out[] = ['columns' => $this->fields($r->fetch_fields()), 'rows' => $rows,
                      'warning_count' => $this->c->warning_count];
            $r->free();
        } else {
            $out[] = $this->ok();
        }
    }

    function text(string $sql, array $params, array &$out) {
        foreach ($params as $p) {
            $pos = strpos($sql, '?');
            $lit = $p === null ? 'NULL' : (is_int($p) ? (string)$p : "'" . $this->c->real_escape_string((string)$p) . "'");
            $sql = substr($sql, 0, $pos) . $lit . substr($sql, $pos + 1);
        }
        $this->c->multi_query($sql);
        do {
            $this->result($this->c->store_result() ?: null, $out);
        } while ($this->c->more_results() && $this->c->next_result());
    }

    private function bind(mysqli_stmt $st, array $params) {
        if (!$params) return;
        $types = '';
        foreach ($params as $p) $types .= is_int($p) ? 'i' : (is_float($p) ? 'd' : 's');
        $st->bind_param($types, ...$params);
    }

    function prepared(string $sql, array $params, array &$out) {
        $st = $this->c->prepare($sql);
        $this->bind($st, $params);
        $st->execute();
        do {
            $r = $st->get_result();
            if ($r) $this->result($r, $out);
            else $out[] = ['affected_rows' => $st->affected_rows, 'insert_id' => $st->insert_id,
                           'warning_count' => $this->c->warning_count, 'field_count' => $st->field_count];
        } while ($st->more_results() && $st->next_result());
        $st->close();
    }

    function call(string $sql, array $params, array $outs, array &$out) { $this->prepared($sql, $params, $out); }

    function cursor(string $sql, array $params, int $n, array &$out) {
        $st = $this->c->prepare($sql);
        $st->attr_set(MYSQLI_STMT_ATTR_CURSOR_TYPE, MYSQLI_CURSOR_TYPE_READ_ONLY);
        $this->bind($st, $params);
        $st->execute();
        $meta = $st->result_metadata();
        $cols = $this->fields($meta->fetch_fields());
        $vals = array_fill(0, count($cols), null);
        $refs = [];
        foreach ($vals as $i => &$v) $refs[$i] = &$v;
        $st->bind_result(...$refs);
        $rows = [];
        while ($st->fetch()) $rows[] = array_map('enc', array_map(fn($x) => $x, $vals));
        $out[] = ['columns' => $cols, 'rows' => $rows, 'warning_count' => $this->c->warning_count];
        $st->close();
    }

    function change_user($u, $p, $db) {
        $this->c->change_user($u, $p, $db);
        return ['changed' => true];
    }

    function reset() {
        if (!method_exists($this->c, 'reset_connection')) throw new Unsupported('no reset');
        return ['reset' => $this->c->reset_connection()];
    }

    function admin(string $sql) {
        $c = new mysqli($this->a['host'], $this->a['admin-user'], $this->a['admin-password'], '', (int)$this->a['admin-port']);
        $c->query($sql);
        $c->close();
    }

    function close() { if ($this->c) { try { $this->c->close(); } catch (Throwable $e) {} $this->c = null; } }
}

// ------------------------------------------------------------------ PDO_mysql

class PdoDriver {
    public array $features = ['multi_statements', 'multi_results', 'local_infile', 'tls', 'compress', 'prepared'];
    private ?PDO $c = null;

    function __construct(private array $a) {}

    function connect(array $o) {
        $opts = [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION, PDO::ATTR_TIMEOUT => 10,
                 PDO::MYSQL_ATTR_MULTI_STATEMENTS => !empty($o['multi_statements']),
                 PDO::ATTR_EMULATE_PREPARES => true];
        if (!empty($o['local_infile'])) $opts[PDO::MYSQL_ATTR_LOCAL_INFILE] = true;
        if (!empty($o['compress'])) $opts[PDO::MYSQL_ATTR_COMPRESS] = true;
        if (!empty($o['tls'])) {
            $opts[PDO::MYSQL_ATTR_SSL_CA] = $this->a['tls-ca'];
            $opts[PDO::MYSQL_ATTR_SSL_VERIFY_SERVER_CERT] = false;
        }
        $dsn = "mysql:host={$this->a['host']};port={$this->a['port']};dbname={$this->a['database']};charset=utf8mb4";
        $this->c = new PDO($dsn, $this->a['user'], $this->a['password'], $opts);
        return ['server_version' => $this->c->getAttribute(PDO::ATTR_SERVER_VERSION)];
    }

    function server_error(Throwable $e) {
        if ($e instanceof PDOException && is_array($e->errorInfo) && isset($e->errorInfo[1]) && $e->errorInfo[1] > 0 && $e->errorInfo[1] < 2000) {
            return ['code' => $e->errorInfo[1], 'sqlstate' => $e->errorInfo[0], 'message' => $e->errorInfo[2]];
        }
        return null;
    }

    private function drain(PDOStatement $st, array &$out) {
        do {
            $n = $st->columnCount();
            if ($n > 0) {
                $cols = [];
                for ($i = 0; $i < $n; $i++) $cols[] = $st->getColumnMeta($i);
                $rows = array_map(fn($r) => array_map('enc', $r), $st->fetchAll(PDO::FETCH_NUM));
                $out[] = ['columns' => $cols, 'rows' => $rows];
            } else {
                $out[] = ['row_count' => $st->rowCount(), 'last_insert_id' => $this->c->lastInsertId()];
            }
        } while ($st->nextRowset());
    }

    function text(string $sql, array $params, array &$out) {
        $this->c->setAttribute(PDO::ATTR_EMULATE_PREPARES, true);
        if ($params) { $st = $this->c->prepare($sql); $st->execute($params); }
        else $st = $this->c->query($sql);
        $this->drain($st, $out);
    }

    function prepared(string $sql, array $params, array &$out) {
        $this->c->setAttribute(PDO::ATTR_EMULATE_PREPARES, false);
        try {
            $st = $this->c->prepare($sql);
            foreach ($params as $i => $p) {
                $st->bindValue($i + 1, $p, $p === null ? PDO::PARAM_NULL : (is_int($p) ? PDO::PARAM_INT : PDO::PARAM_STR));
            }
            $st->execute();
            $this->drain($st, $out);
        } finally {
            $this->c->setAttribute(PDO::ATTR_EMULATE_PREPARES, true);
        }
    }

    function call(string $sql, array $params, array $outs, array &$out) { $this->prepared($sql, $params, $out); }
    function cursor(string $sql, array $params, int $n, array &$out) { throw new Unsupported('no cursor'); }
    function change_user($u, $p, $db) { throw new Unsupported('no change user'); }
    function reset() { throw new Unsupported('no reset'); }

    function admin(string $sql) {
        $c = new PDO("mysql:host={$this->a['host']};port={$this->a['admin-port']}", $this->a['admin-user'], $this->a['admin-password']);
        $c->exec($sql);
    }

    function close() { $this->c = null; }
}

// ------------------------------------------------------------------ loop

$a = args();
$lib = $a['lib'];
$only = array_filter(explode(',', $a['only']));
$scenarios = json_decode(file_get_contents($a['scenarios']), true)['scenarios'];
$tmp = sys_get_temp_dir() . '/rwproxy-diff-' . getmypid();
@mkdir($tmp);
$version = $lib === 'mysqli' ? 'PHP ' . PHP_VERSION . ', mysqlnd ' . mysqli_get_client_info()
                             : 'PHP ' . PHP_VERSION . ', mysqlnd ' . phpversion('mysqlnd');
$result = ['library' => "php-$lib", 'version' => $version, 'scenarios' => new stdClass()];
foreach ($scenarios as $scen) {
    if ($only && !in_array($scen['name'], $only)) continue;
    $drv = $lib === 'mysqli' ? new MysqliDriver($a) : new PdoDriver($a);
    $missing = array_values(array_diff($scen['needs'] ?? [], $drv->features));
    foreach ($scen['connect'] ?? [] as $k => $v) if ($v && !in_array($k, $drv->features) && !in_array($k, $missing)) $missing[] = $k;
    if ($missing) { $result['scenarios']->{$scen['name']} = ['unsupported' => 'library has no ' . implode(', ', $missing)]; continue; }
    $describe = fn(Throwable $e) => $drv->server_error($e) ?? ['exception' => substr(get_class($e) . ': ' . $e->getCode() . ' ' . $e->getMessage(), 0, 500)];
    $steps = [];
    try {
        $info = $drv->connect($scen['connect'] ?? []);
        if ($info) $steps[] = ['connect' => $info];
    } catch (Throwable $e) {
        $result['scenarios']->{$scen['name']} = ['connect_error' => $describe($e)];
        continue;
    }
    foreach ($scen['steps'] as $step) {
        $mode = $step['mode'] ?? 'text';
        $rec = ['mode' => $mode];
        if (isset($step['sql'])) { preg_match('/^.{0,80}/us', $step['sql'], $m); $rec['sql'] = $m[0]; }
        $results = [];
        try {
            $params = array_map('big_param', $step['params'] ?? []);
            $sql = $step['sql'] ?? '';
            if ($mode === 'prepared_or_text') $mode = in_array('prepared', $drv->features) ? 'prepared' : 'text';
            if (in_array($mode, ['prepared', 'call', 'cursor']) && !in_array($mode, $drv->features)) {
                if ($mode === 'call' && in_array('prepared', $drv->features)) $mode = 'prepared';
                else throw new Unsupported("library has no $mode");
            }
            switch ($mode) {
                case 'text': $drv->text($sql, $params, $results); break;
                case 'prepared': $drv->prepared($sql, $params, $results); break;
                case 'call': $drv->call($sql, $params, $step['out'] ?? [], $results); break;
                case 'cursor': $drv->cursor($sql, $params, $step['fetch_size'] ?? 2, $results); break;
                case 'load_local':
                    $file = "$tmp/{$scen['name']}-" . count($steps) . '.csv';
                    file_put_contents($file, $step['data']);
                    $drv->text(str_replace('{file}', $file, $sql), [], $results);
                    break;
                case 'admin': $drv->admin($sql); break;
                case 'change_user':
                    $u = $step['user'] === '$app' ? $a['user'] : $step['user'];
                    $p = $step['password'] === '$app' ? $a['password'] : $step['password'];
                    $results[] = $drv->change_user($u, $p, $step['database'] ?? null);
                    break;
                case 'reset_connection': $results[] = $drv->reset(); break;
                default: throw new Exception("unknown mode $mode");
            }
        } catch (Unsupported $e) {
            $rec['skipped'] = $e->getMessage();
        } catch (Throwable $e) {
            $rec['error'] = $describe($e);
            if (isset($rec['error']['exception'])) {
                $drv->close();
                try { $drv->connect($scen['connect'] ?? []); $rec['reconnected'] = true; }
                catch (Throwable $e2) { $rec['results'] = $results; $rec['reconnect_error'] = $describe($e2); $steps[] = $rec; break; }
            }
        }
        $rec['results'] = $results;
        $steps[] = $rec;
    }
    $drv->close();
    $result['scenarios']->{$scen['name']} = ['steps' => $steps];
}
echo json_encode($result, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE), "\n";
