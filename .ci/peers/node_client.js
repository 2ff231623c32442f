// The .ci/peers client scenarios, run with Node `ws`.
//
// Usage: node node_client.js [BASE_URL [SCENARIO,...]]   (default ws://127.0.0.1:9010;
// NODE_PATH must reach the `ws` package, as run.sh arranges)
//
// Prints `RESULT <scenario> PASS` or `RESULT <scenario> FAIL <why>` per scenario and
// exits with 1 if any failed. The scenario names and order match the other clients.
//
// PEERS_DEFLATE=1 is the deflate mode: every connection offers permessage-deflate
// (`perMessageDeflate: { threshold: 0 }`, ws's defaults otherwise; with context
// takeover ws compresses every message anyway), and `deflate_negotiated` asserts the
// server agreed. PEERS_DEFLATE=0 or unset: plain, `perMessageDeflate: false`, except on
// `deflate_negotiated`'s connection, which offers it all the same: the server
// (compression off) must decline.
//
// A wss:// BASE_URL (the TLS mode, PEERS_TLS=1) checks the server's certificate against
// the CA certificate in the PEM file PEERS_TLS_CA.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const WebSocket = require('ws');

const MAX_SIZE = 64 << 20;
const TIMEOUT = 60000; // per scenario, ms
const UTF8_TEXT = 'Hello, κόσμε! 🚀 👩‍💻 ∑ — ok';

const DEFLATE_ENV = process.env.PEERS_DEFLATE || '';
if (!['', '0', '1'].includes(DEFLATE_ENV)) {
  console.error(`node_client: PEERS_DEFLATE must be 1 or 0, not ${JSON.stringify(DEFLATE_ENV)}`);
  process.exit(2);
}
const DEFLATE = DEFLATE_ENV === '1';
const DEFLATE_OFFER = { threshold: 0 };

class Fail extends Error {}

function check(cond, why) {
  if (!cond) throw new Fail(why);
}

function describe(ev) {
  if (ev.type === 'close') return `close ${ev.code} ${JSON.stringify(ev.reason)}`;
  if (ev.type === 'error') return `error ${ev.error.message}`;
  return `${ev.type} of ${ev.data.length} bytes`;
}

// One connection with its events queued, so a scenario reads them in order.
class Conn {
  constructor(ws) {
    this.ws = ws;
    this.events = [];
    this.waiter = null;
    const push = (ev) => {
      this.events.push(ev);
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = null;
        w();
      }
    };
    ws.on('message', (data, isBinary) =>
      push(isBinary ? { type: 'binary', data } : { type: 'text', data: data.toString('utf8'), raw: data })
    );
    ws.on('pong', (data) => push({ type: 'pong', data }));
    ws.on('close', (code, reason) => push({ type: 'close', code, reason: reason.toString() }));
    ws.on('error', (error) => push({ type: 'error', error }));
    this.extensionsHeader = undefined;
    ws.once('upgrade', (res) => {
      this.extensionsHeader = res.headers['sec-websocket-extensions'];
    });
  }

  // The next event (skipping pings), within ms.
  async next(ms = 30000) {
    for (;;) {
      if (this.events.length) {
        const ev = this.events.shift();
        if (ev.type === 'ping') continue;
        return ev;
      }
      let timer;
      const got = await new Promise((resolve) => {
        this.waiter = () => resolve(true);
        timer = setTimeout(() => resolve(false), ms);
      });
      clearTimeout(timer);
      if (!got) throw new Fail(`nothing arrived within ${ms} ms`);
    }
  }

  async expect(want) {
    const ev = await this.next();
    if (typeof want === 'string') {
      check(ev.type === 'text', `echo ${describe(ev)}, expected text`);
      check(ev.data === want, `echo ${JSON.stringify(ev.data)}, expected ${JSON.stringify(want)}`);
    } else {
      check(ev.type === 'binary', `echo ${describe(ev)}, expected binary`);
      if (!ev.data.equals(want)) {
        let i = 0;
        while (i < Math.min(ev.data.length, want.length) && ev.data[i] === want[i]) i++;
        throw new Fail(`echo of ${ev.data.length} bytes differs from the ${want.length} sent (first difference at ${i})`);
      }
    }
  }

  // Closes with code/reason; returns the server's close (code, reason).
  async close(code, reason) {
    this.ws.close(code, reason);
    for (;;) {
      const ev = await this.next(15000);
      if (ev.type === 'close') return ev;
      if (ev.type === 'error') throw new Fail(`error while closing: ${ev.error.message}`);
    }
  }

  async finish() {
    const ev = await this.close(1000, 'done');
    check(ev.code === 1000, `close answer ${ev.code} ${JSON.stringify(ev.reason)}, expected 1000`);
  }
}

function makeOpen(base) {
  const tls = base.startsWith('wss://') ? { ca: fs.readFileSync(process.env.PEERS_TLS_CA) } : {};
  return (path, protocols = [], opts = {}) =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(base + path, protocols, {
        maxPayload: MAX_SIZE,
        handshakeTimeout: 10000,
        perMessageDeflate: DEFLATE ? DEFLATE_OFFER : false,
        ...tls,
        ...opts,
      });
      const conn = new Conn(ws);
      ws.once('open', () => resolve(conn));
      ws.once('unexpected-response', (req, res) => {
        const err = new Fail(`unexpected response: HTTP ${res.statusCode}`);
        err.status = res.statusCode;
        res.resume();
        ws.terminate();
        reject(err);
      });
      ws.once('error', (e) => reject(new Fail(`connect ${path}: ${e.message}`)));
    });
}

const scenarios = [];
const scenario = (name, fn) => scenarios.push([name, fn]);

// 64 KiB of text that compresses well: 2048 lines of 32 bytes, each with its number,
// Greek and an emoji.
const compressibleText = () =>
  Array.from({ length: 2048 }, (_, i) => `${i.toString(16).padStart(4, '0')}:κόσμε🚀 compressible`).join('');

// 1 MiB, mostly zeros: 16 random bytes at the start of every 4 KiB.
function mostlyZeros() {
  const data = Buffer.alloc(1 << 20);
  for (let i = 0; i < data.length; i += 4096) crypto.randomFillSync(data, i, 16);
  return data;
}

// Deflate mode: /echo agreed permessage-deflate, and compressible messages echo
// exactly, then an empty message and a message with an empty last fragment, each
// followed by another. Plain mode: offered all the same, the server declines it, and
// the same messages echo uncompressed.
scenario('deflate_negotiated', async (open) => {
  const c = await open('/echo', [], { perMessageDeflate: DEFLATE_OFFER });
  const answer = c.extensionsHeader;
  console.log(`INFO deflate_negotiated Sec-WebSocket-Extensions: ${answer === undefined ? '(none)' : JSON.stringify(answer)}`);
  if (DEFLATE) {
    check(c.ws.extensions === 'permessage-deflate', `permessage-deflate offered but not agreed (ws.extensions ${JSON.stringify(c.ws.extensions)}, Sec-WebSocket-Extensions: ${JSON.stringify(answer)})`);
  } else {
    check(c.ws.extensions === '' && answer === undefined, `the server agreed ${JSON.stringify(answer)} though it has compression off (plain mode)`);
  }
  const text = compressibleText();
  check(Buffer.byteLength(text) === 64 << 10, 'the test text is not 64 KiB');
  c.ws.send(text);
  const ev = await c.next();
  check(ev.type === 'text' && ev.data === text, `echo ${describe(ev)}, expected the 64 KiB of text sent`);
  const data = mostlyZeros();
  c.ws.send(data, { binary: true });
  await c.expect(data);
  // Nothing to compress after a flush: an empty message, and a message whose last
  // fragment is empty, each followed by one more (the stream must stay in step).
  for (const t of ['', 'after an empty message']) {
    c.ws.send(t);
    await c.expect(t);
  }
  const parts = ['two fragments, ', 'then an empty one', ''];
  parts.forEach((p, i) => c.ws.send(p, { fin: i === parts.length - 1 }));
  await c.expect(parts.join(''));
  c.ws.send('after an empty last fragment');
  await c.expect('after an empty last fragment');
  await c.finish();
});

scenario('text_utf8', async (open) => {
  const c = await open('/echo');
  for (const text of [UTF8_TEXT, 'plain ascii', 'κόσμε', '🎉🎉🎉']) {
    c.ws.send(text);
    await c.expect(text);
  }
  await c.finish();
});

scenario('text_empty', async (open) => {
  const c = await open('/echo');
  c.ws.send('');
  await c.expect('');
  await c.finish();
});

scenario('text_1MiB_utf8', async (open) => {
  const c = await open('/echo');
  const text = 'κόσμε🚀a'.repeat(70000);
  c.ws.send(text);
  const ev = await c.next();
  check(ev.type === 'text' && ev.data === text, `echo ${describe(ev)}, expected the ${Buffer.byteLength(text)} bytes sent`);
  await c.finish();
});

for (const n of [0, 125, 126, 65535, 65536, 16 << 20]) {
  const name = n === 16 << 20 ? 'binary_16MiB' : `binary_${n}`;
  scenario(name, async (open) => {
    const c = await open('/echo');
    const data = crypto.randomBytes(n);
    c.ws.send(data, { binary: true });
    await c.expect(data);
    await c.finish();
  });
}

scenario('burst_1000', async (open) => {
  const c = await open('/echo');
  for (let i = 0; i < 1000; i++) c.ws.send(`message ${i} κόσμε`);
  for (let i = 0; i < 1000; i++) await c.expect(`message ${i} κόσμε`);
  await c.finish();
});

scenario('fragmented_text', async (open) => {
  const c = await open('/echo');
  const data = Buffer.from(UTF8_TEXT, 'utf8');
  const cuts = [0, 8, 22, 30, data.length]; // inside 'κ' and inside '🚀'
  for (let i = 0; i + 1 < cuts.length; i++) {
    c.ws.send(data.subarray(cuts[i], cuts[i + 1]), { binary: false, fin: i + 2 === cuts.length });
  }
  await c.expect(UTF8_TEXT);
  await c.finish();
});

scenario('fragmented_binary', async (open) => {
  const c = await open('/echo');
  const data = crypto.randomBytes(70000);
  const cuts = [0, 1, 1000, 1000, 66000, data.length];
  for (let i = 0; i + 1 < cuts.length; i++) {
    c.ws.send(data.subarray(cuts[i], cuts[i + 1]), { binary: true, fin: i + 2 === cuts.length });
  }
  await c.expect(data);
  await c.finish();
});

scenario('fragmented_with_ping', async (open) => {
  const c = await open('/echo');
  const parts = ['first κό', 'σμε second', ' third'];
  c.ws.send(parts[0], { fin: false });
  c.ws.ping(Buffer.from('between fragments'));
  c.ws.send(parts[1], { fin: false });
  c.ws.send(parts[2], { fin: true });
  let pong = false;
  let text = false;
  while (!(pong && text)) {
    const ev = await c.next(10000);
    if (ev.type === 'pong' && ev.data.toString() === 'between fragments' && !pong) pong = true;
    else if (ev.type === 'text' && ev.data === parts.join('') && !text) text = true;
    else throw new Fail(`got ${describe(ev)}, expected the pong and ${JSON.stringify(parts.join(''))}`);
  }
  await c.finish();
});

scenario('ping_pong', async (open) => {
  const c = await open('/echo');
  const payload = Buffer.from('ping κόσμε 123', 'utf8');
  c.ws.ping(payload);
  const ev = await c.next(10000);
  check(ev.type === 'pong', `got ${describe(ev)}, expected a pong`);
  check(ev.data.equals(payload), `pong payload ${JSON.stringify(ev.data.toString())}, expected ${JSON.stringify(payload.toString())}`);
  c.ws.send('after ping');
  await c.expect('after ping');
  await c.finish();
});

scenario('server_ping', async (open) => {
  const c = await open('/ping');
  c.ws.send('ping me');
  await c.expect('pong: server ping κόσμε');
  await c.finish();
});

async function closeAndReport(open, code, reason) {
  const id = `node-${process.pid}-${process.hrtime.bigint()}`;
  const c = await open(`/report-close?id=${id}`);
  c.ws.send('hello');
  await c.expect('hello');
  const ev = await c.close(code, reason);
  check(ev.code === code, `server answered close with ${ev.code} ${JSON.stringify(ev.reason)}, expected the code ${code} echoed`);
  const r = await open(`/last-close?id=${id}`);
  const report = await r.next(10000);
  const want = `${code} ${reason}`;
  check(report.type === 'text' && report.data === want, `server saw ${report.type === 'text' ? JSON.stringify(report.data) : describe(report)}, expected ${JSON.stringify(want)}`);
  await r.next(10000); // its close
}

scenario('close_from_client', (open) => closeAndReport(open, 4001, 'client bye'));

// The longest close reason (123 bytes), in two-byte characters.
scenario('close_reason_utf8_123B', (open) => closeAndReport(open, 4003, 'é'.repeat(61) + '!'));

scenario('close_from_server', async (open) => {
  const c = await open('/close');
  c.ws.send('close please');
  const ev = await c.next(10000);
  check(ev.type === 'close', `got ${describe(ev)}, expected close 4002 "server bye"`);
  check(ev.code === 4002 && ev.reason === 'server bye', `server closed with ${ev.code} ${JSON.stringify(ev.reason)}, expected 4002 "server bye"`);
});

scenario('subprotocol', async (open) => {
  const c = await open('/subprotocol', ['nope', 'chat.v2']);
  check(c.ws.protocol === 'chat.v2', `subprotocol ${JSON.stringify(c.ws.protocol)}, expected "chat.v2"`);
  c.ws.send('v2');
  await c.expect('v2');
  await c.finish();
});

scenario('subprotocol_none', async (open) => {
  const c = await open('/subprotocol');
  check(c.ws.protocol === '', `subprotocol ${JSON.stringify(c.ws.protocol)} though none was offered`);
  c.ws.send('none');
  await c.expect('none');
  await c.finish();
});

scenario('forbidden_403', async (open) => {
  let conn;
  try {
    conn = await open('/forbidden');
  } catch (e) {
    check(e.status === 403, `${e.message}, expected status 403`);
    return;
  }
  conn.ws.terminate();
  throw new Fail('the upgrade was accepted');
});

scenario('concurrent_20', async (open) => {
  const one = async (n) => {
    const c = await open('/echo');
    for (let i = 0; i < 50; i++) {
      c.ws.send(`connection ${n} message ${i}`);
      await c.expect(`connection ${n} message ${i}`);
    }
    await c.finish();
  };
  const results = await Promise.allSettled(Array.from({ length: 20 }, (_, n) => one(n)));
  const errors = results.map((r, n) => (r.status === 'rejected' ? `connection ${n}: ${r.reason.message}` : null)).filter(Boolean);
  check(errors.length === 0, errors.join('; '));
});

async function main() {
  const base = (process.argv[2] || 'ws://127.0.0.1:9010').replace(/\/+$/, '');
  const only = process.argv[3] ? process.argv[3].split(',') : null;
  const open = makeOpen(base);
  let failed = 0;
  for (const [name, run] of scenarios) {
    if (only && !only.includes(name)) continue;
    const t0 = Date.now();
    let outcome;
    let timer;
    try {
      await Promise.race([
        run(open),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Fail(`timed out after ${TIMEOUT / 1000} s`)), TIMEOUT);
        }),
      ]);
      outcome = 'PASS';
    } catch (e) {
      outcome = `FAIL ${e instanceof Fail ? e.message : `${e.name}: ${e.message}`}`;
    } finally {
      clearTimeout(timer);
    }
    if (outcome !== 'PASS') failed++;
    console.log(`RESULT ${name} ${outcome} (${Date.now() - t0} ms)`);
  }
  process.exit(failed ? 1 : 0);
}

main();
