// The mysql2 driver through rwproxy with the compressed protocol (compress: true).
//
//   RWPROXY_PORT=6033 node integration/node/compress.js
//
// APP_USER / APP_PASSWORD default to app / app_pass. Prints one "ok: ..." line per check
// and "N passed, 0 failed" at the end; exits 1 on the first failure.
'use strict';

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const mysql = require('mysql2/promise');

const port = Number(process.env.RWPROXY_PORT);
if (!port) {
  console.error('set RWPROXY_PORT to rwproxy\'s client port');
  process.exit(2);
}
let passed = 0;
function ok(what) {
  passed += 1;
  console.log(`ok: ${what}`);
}

function connect(compress) {
  return mysql.createConnection({
    host: '127.0.0.1',
    port,
    user: process.env.APP_USER || 'app',
    password: process.env.APP_PASSWORD || 'app_pass',
    database: 'app',
    compress,
    supportBigNumbers: true,
    bigNumberStrings: true,
  });
}

async function main() {
  const z = await connect(true);
  const plain = await connect(false);
  const table = `t_node_${process.pid}_${Date.now() % 100000}`;
  try {
    const [[one]] = await z.query('SELECT 6 * 7 AS v, REPEAT(\'ab\', 200) AS s');
    assert.equal(Number(one.v), 42);
    assert.equal(one.s, 'ab'.repeat(200));
    ok('compressed text query');

    await z.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, s VARCHAR(300), b BLOB)`);
    const rows = [];
    for (let i = 1; i <= 800; i += 1) {
      rows.push([i, 'x'.repeat(i % 300), crypto.createHash('sha256').update(String(i)).digest()]);
    }
    const [res] = await z.query(`INSERT INTO ${table} VALUES ?`, [rows]);
    assert.equal(res.affectedRows, 800);
    ok('compressed multi-row insert (800 rows)');

    // Read in a transaction so the primary answers right after the insert.
    await z.query('START TRANSACTION');
    const [zRows] = await z.query(`SELECT id, s, HEX(b) AS h FROM ${table} ORDER BY id`);
    await z.query('COMMIT');
    await plain.query('START TRANSACTION');
    const [pRows] = await plain.query(`SELECT id, s, HEX(b) AS h FROM ${table} ORDER BY id`);
    await plain.query('COMMIT');
    assert.equal(zRows.length, 800);
    assert.deepEqual(zRows, pRows);
    ok('compressed multi-row result equals the uncompressed one');

    const [[exec]] = await z.execute(`SELECT COUNT(*) AS n, SUM(id) AS total FROM ${table} WHERE id > ?`, [100]);
    assert.equal(Number(exec.n), 700);
    assert.equal(String(exec.total), String((101 + 800) * 700 / 2));
    ok('compressed prepared statement (execute)');

    const big = crypto.randomBytes(3 * 1024 * 1024);
    await z.execute(`UPDATE ${table} SET s = 'big' WHERE id = ?`, [1]);
    const [[echo]] = await z.execute('SELECT ? AS b, LENGTH(?) AS n', [big, big]);
    assert.equal(Number(echo.n), big.length);
    assert.ok(Buffer.compare(echo.b, big) === 0, '3 MiB parameter came back unchanged');
    ok('compressed 3 MiB round trip');

    for (let i = 0; i < 30; i += 1) {
      const [[r]] = await z.query(`SELECT ${i} + 1 AS v`);
      assert.equal(Number(r.v), i + 1);
    }
    ok('30 compressed round trips in a row');
  } finally {
    await plain.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
    await z.end().catch(() => {});
    await plain.end().catch(() => {});
  }
  console.log(`${passed} passed, 0 failed`);
}

main().catch((err) => {
  console.error('FAILED:', err);
  process.exit(1);
});
