// Differential runner for the Node libraries mysql2 and mariadb (MariaDB Connector/Node.js).
//
//   node runner.js --lib mysql2|mariadb --scenarios FILE --port P --admin-port A [--tls-ca CA]
//
// Prints one JSON transcript (see ../common.py for the format) on stdout.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');

const HASH_OVER = 2048;

function parseArgs() {
  const a = { host: '127.0.0.1', user: 'app', password: 'app_pass', database: 'app',
    adminUser: 'admin', adminPassword: 'admin_pass', tlsCa: '', only: '' };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    a[k] = argv[i + 1];
  }
  a.port = Number(a.port);
  a.adminPort = Number(a.adminPort);
  return a;
}

function hashed(kind, buf) {
  return [kind, `len=${buf.length} sha256=${crypto.createHash('sha256').update(buf).digest('hex')}`];
}

// A value as the application received it: [JS type, canonical text].
function enc(v) {
  if (v === null || v === undefined) return v === null ? null : ['undefined', ''];
  if (Buffer.isBuffer(v)) return v.length > HASH_OVER ? hashed('Buffer', v) : ['Buffer', v.toString('hex')];
  if (typeof v === 'string') return v.length > HASH_OVER ? hashed('string', Buffer.from(v, 'utf8')) : ['string', v];
  if (typeof v === 'bigint') return ['bigint', v.toString()];
  if (typeof v === 'number') return ['number', String(v)];
  if (typeof v === 'boolean') return ['boolean', String(v)];
  if (v instanceof Date) return ['Date', isNaN(v) ? 'Invalid Date' : v.toISOString()];
  if (Array.isArray(v) || typeof v === 'object') {
    const name = Array.isArray(v) ? 'array' : (v.constructor && v.constructor.name) || 'object';
    return [name, JSON.stringify(v, (k, x) => (typeof x === 'bigint' ? `${x}n` : x))];
  }
  return [typeof v, String(v)];
}

function bigParam(p) {
  return p && typeof p === 'object' && 'repeat' in p ? p.repeat.repeat(p.times) : p;
}

class Unsupported extends Error {}

// ------------------------------------------------------------------ mysql2

class Mysql2 {
  constructor(args) {
    this.args = args;
    this.lib = require('mysql2/promise');
    this.features = new Set(['multi_statements', 'multi_results', 'local_infile', 'tls', 'compress',
      'change_user', 'reset_connection', 'prepared']);
  }

  async connect(opts) {
    const a = this.args;
    const cfg = { host: a.host, port: a.port, user: a.user, password: a.password, database: a.database,
      multipleStatements: !!opts.multi_statements, compress: !!opts.compress, connectTimeout: 10000 };
    if (opts.tls) cfg.ssl = { rejectUnauthorized: false };
    if (opts.local_infile) cfg.infileStreamFactory = (file) => fs.createReadStream(file);
    this.conn = await this.lib.createConnection(cfg);
    const raw = this.conn.connection;
    return { tls: !!(raw.stream && raw.stream.encrypted), server_version: raw.serverVersion };
  }

  serverError(e) {
    if (e && typeof e.errno === 'number' && e.errno > 0 && e.errno < 2000 && e.sqlState) {
      return { code: e.errno, sqlstate: e.sqlState, message: e.sqlMessage };
    }
    return null;
  }

  record(rows, fields, out) {
    if (Array.isArray(rows)) {
      out.push({
        columns: (fields || []).map((f) => ({ catalog: f.catalog, schema: f.schema, table: f.table,
          orgTable: f.orgTable, name: f.name, orgName: f.orgName, characterSet: f.characterSet,
          columnLength: f.columnLength, columnType: f.columnType, type: f.type, flags: f.flags,
          decimals: f.decimals, typeName: f.typeName, encoding: f.encoding })),
        rows: rows.map((r) => (Array.isArray(r) ? r.map(enc) : Object.values(r).map(enc))),
      });
    } else {
      const { affectedRows, insertId, info, serverStatus, warningStatus, changedRows, fieldCount } = rows;
      out.push({ affectedRows, insertId, info, serverStatus, warningStatus, changedRows, fieldCount });
    }
  }

  async many(res, out) {
    const [rows, fields] = res;
    // Several results: an array of results (rows or ResultSetHeader), with an array of field lists.
    const isHeader = (r) => r && !Array.isArray(r) && r.constructor && r.constructor.name === 'ResultSetHeader';
    const multi = Array.isArray(fields)
      ? fields.length > 0 && (Array.isArray(fields[0]) || fields[0] === undefined)
      : Array.isArray(rows) && rows.some(isHeader);
    if (multi) rows.forEach((r, i) => this.record(r, fields ? fields[i] : undefined, out));
    else this.record(rows, fields, out);
  }

  async text(sql, params, out) {
    const res = await this.conn.query({ sql, values: params.length ? params : undefined, rowsAsArray: true });
    await this.many(res, out);
  }

  async prepared(sql, params, out) {
    const res = await this.conn.execute({ sql, rowsAsArray: true }, params);
    await this.many(res, out);
  }

  async call(sql, params, outs, out) { return this.prepared(sql, params, out); }
  async cursor() { throw new Unsupported('no server-side cursor'); }

  async changeUser(user, password, database) {
    await this.conn.changeUser({ user, password, database });
    return { changed: true };
  }

  async reset() {
    if (typeof this.conn.reset === 'function') { await this.conn.reset(); return { reset: true }; }
    throw new Unsupported('no reset');
  }

  async admin(sql) {
    const c = await this.lib.createConnection({ host: this.args.host, port: this.args.adminPort,
      user: this.args.adminUser, password: this.args.adminPassword });
    try { await c.query(sql); } finally { await c.end(); }
  }

  async close() { if (this.conn) { await this.conn.end().catch(() => this.conn.destroy()); } }
}

// ------------------------------------------------------------------ mariadb

class MariaDB {
  constructor(args) {
    this.args = args;
    this.lib = require('mariadb');
    this.features = new Set(['multi_statements', 'multi_results', 'local_infile', 'tls', 'compress',
      'change_user', 'reset_connection', 'prepared']);
  }

  async connect(opts) {
    const a = this.args;
    const cfg = { host: a.host, port: a.port, user: a.user, password: a.password, database: a.database,
      multipleStatements: !!opts.multi_statements, compress: !!opts.compress, permitLocalInfile: !!opts.local_infile,
      connectTimeout: 10000, queryTimeout: 0, socketTimeout: 60000 };
    if (opts.tls) cfg.ssl = { rejectUnauthorized: false };
    this.conn = await this.lib.createConnection(cfg);
    return { server_version: this.conn.serverVersion(), info: { mariadb: this.conn.info.isMariaDB() } };
  }

  serverError(e) {
    if (e && typeof e.errno === 'number' && e.errno > 0 && e.errno < 2000 && e.sqlState) {
      return { code: e.errno, sqlstate: e.sqlState, message: e.sqlMessage || e.text };
    }
    return null;
  }

  record(r, out) {
    if (Array.isArray(r)) {
      const meta = r.meta || [];
      out.push({
        columns: meta.map((c) => ({ db: c.db(), schema: c.schema(), table: c.table(), orgTable: c.orgTable(),
          name: c.name(), orgName: c.orgName(), collation: c.collation && c.collation.name,
          columnLength: c.columnLength, columnType: c.columnType, type: c.type, flags: c.flags, scale: c.scale,
          dataTypeName: c.dataTypeName, dataTypeFormat: c.dataTypeFormat, signed: c.signed && c.signed(),
          isSet: c.isSet && c.isSet() })),
        rows: r.map((row) => (Array.isArray(row) ? row.map(enc) : Object.values(row).map(enc))),
      });
    } else if (r && typeof r === 'object') {
      out.push({ affectedRows: r.affectedRows, insertId: enc(r.insertId), warningStatus: r.warningStatus });
    } else {
      out.push({ value: enc(r) });
    }
  }

  many(res, out) {
    // Several results: an array whose items are result arrays or OK objects.
    if (Array.isArray(res) && !res.meta) {
      res.forEach((r) => this.record(r, out));
    } else {
      this.record(res, out);
    }
  }

  async text(sql, params, out) {
    this.many(await this.conn.query({ sql, rowsAsArray: true }, params.length ? params : undefined), out);
  }

  async prepared(sql, params, out) {
    this.many(await this.conn.execute({ sql, rowsAsArray: true }, params), out);
  }

  async call(sql, params, outs, out) { return this.prepared(sql, params, out); }
  async cursor() { throw new Unsupported('no server-side cursor'); }

  async changeUser(user, password, database) {
    await this.conn.changeUser({ user, password, database });
    return { changed: true };
  }

  async reset() { await this.conn.reset(); return { reset: true }; }

  async admin(sql) {
    const c = await this.lib.createConnection({ host: this.args.host, port: this.args.adminPort,
      user: this.args.adminUser, password: this.args.adminPassword });
    try { await c.query(sql); } finally { await c.end(); }
  }

  async close() { if (this.conn) { await this.conn.end().catch(() => this.conn.destroy()); } }
}

// ------------------------------------------------------------------ loop

async function main() {
  const args = parseArgs();
  const Driver = { mysql2: Mysql2, mariadb: MariaDB }[args.lib];
  let dir = path.dirname(require.resolve(args.lib));
  while (!(fs.existsSync(path.join(dir, 'package.json'))
    && JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).name === args.lib)) dir = path.dirname(dir);
  const version = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version;
  const scenarios = JSON.parse(fs.readFileSync(args.scenarios, 'utf8')).scenarios
    .filter((s) => !args.only || args.only.split(',').includes(s.name));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rwproxy-diff-'));
  const out = { library: `node-${args.lib}`, version, scenarios: {} };
  for (const scen of scenarios) {
    const drv = new Driver(args);
    const missing = (scen.needs || []).filter((n) => !drv.features.has(n));
    for (const [k, v] of Object.entries(scen.connect || {})) if (v && !drv.features.has(k) && !missing.includes(k)) missing.push(k);
    if (missing.length) { out.scenarios[scen.name] = { unsupported: `library has no ${missing.join(', ')}` }; continue; }
    const steps = [];
    const describe = (e) => drv.serverError(e) || { exception: `${e && e.name}: ${e && (e.code || '')} ${e && e.message}`.slice(0, 500) };
    try {
      const info = await drv.connect(scen.connect || {});
      if (info) steps.push({ connect: info });
    } catch (e) {
      out.scenarios[scen.name] = { connect_error: describe(e) };
      continue;
    }
    for (const step of scen.steps) {
      let mode = step.mode || 'text';
      const rec = { mode };
      if (step.sql) rec.sql = step.sql.slice(0, 80);
      const results = rec.results = [];
      try {
        const params = (step.params || []).map(bigParam);
        let sql = step.sql || '';
        if (mode === 'prepared_or_text') mode = drv.features.has('prepared') ? 'prepared' : 'text';
        if (['prepared', 'call', 'cursor'].includes(mode) && !drv.features.has(mode)) {
          if (mode === 'call' && drv.features.has('prepared')) mode = 'prepared';
          else { rec.skipped = `library has no ${mode}`; steps.push(rec); continue; }
        }
        if (mode === 'text') await drv.text(sql, params, results);
        else if (mode === 'prepared') await drv.prepared(sql, params, results);
        else if (mode === 'call') await drv.call(sql, params, step.out || [], results);
        else if (mode === 'cursor') await drv.cursor(sql, params, step.fetch_size || 2, results);
        else if (mode === 'load_local') {
          const file = path.join(tmp, `${scen.name}-${steps.length}.csv`);
          fs.writeFileSync(file, step.data, 'utf8');
          await drv.text(sql.replace('{file}', file), [], results);
        } else if (mode === 'admin') await drv.admin(sql);
        else if (mode === 'change_user') {
          const user = step.user === '$app' ? args.user : step.user;
          const pw = step.password === '$app' ? args.password : step.password;
          results.push(await drv.changeUser(user, pw, step.database));
        } else if (mode === 'reset_connection') results.push(await drv.reset());
        else throw new Error(`unknown mode ${mode}`);
      } catch (e) {
        if (e instanceof Unsupported) rec.skipped = e.message;
        else {
          rec.error = describe(e);
          if (rec.error.exception) {
            await drv.close().catch(() => {});
            try { await drv.connect(scen.connect || {}); rec.reconnected = true; } catch (e2) {
              rec.reconnect_error = describe(e2); steps.push(rec); break;
            }
          }
        }
      }
      steps.push(rec);
    }
    await drv.close().catch(() => {});
    out.scenarios[scen.name] = { steps };
  }
  const text = JSON.stringify(out, (k, v) => (typeof v === 'bigint' ? `${v}n` : v)) + '\n';
  await new Promise((resolve) => process.stdout.write(text, resolve));
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
