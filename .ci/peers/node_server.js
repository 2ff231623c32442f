// The .ci/peers server contract, implemented with Node `ws`.
//
// Usage: node node_server.js [HOST:PORT]   (default 127.0.0.1:9012; NODE_PATH must
// reach the `ws` package, as run.sh arranges)
//
// /echo                echo every text and binary message as is
// /subprotocol         accept with "chat.v2" if offered (else no subprotocol), echo
// /forbidden           reject the upgrade with HTTP 403
// /ping                on the first message, ping with "server ping κόσμε"; answer the
//                      pong with the text "pong: <its payload>"
// /close               on the first message, close with 4002 "server bye"
// /report-close?id=ID  echo; remember the close code and reason the client sent under
//                      ID (ws answers a close by echoing the client's code and reason)
// /last-close?id=ID    send "<code> <reason>" seen on /report-close?id=ID as one text
//                      message (waits up to 5 s for it), then close with 1000
//
// PEERS_DEFLATE=1: permessage-deflate on (`perMessageDeflate: { threshold: 0 }`, ws's
// defaults otherwise); 0 or unset: off (`perMessageDeflate: false`, ws's default for a
// server), offers are declined.
//
// PEERS_TLS=1: serve wss:// only (https), with the certificate chain in the PEM file
// PEERS_TLS_CERT and the key in PEERS_TLS_KEY; 0 or unset: plain ws://.
'use strict';

const fs = require('fs');
const http = require('http');
const https = require('https');
const { WebSocketServer } = require('ws');

const MAX_SIZE = 64 << 20; // as hybi's default message limit
const DEFLATE_ENV = process.env.PEERS_DEFLATE || '';
if (!['', '0', '1'].includes(DEFLATE_ENV)) {
  console.error(`node_server: PEERS_DEFLATE must be 1 or 0, not ${JSON.stringify(DEFLATE_ENV)}`);
  process.exit(2);
}
const DEFLATE = DEFLATE_ENV === '1';
const TLS_ENV = process.env.PEERS_TLS || '';
if (!['', '0', '1'].includes(TLS_ENV)) {
  console.error(`node_server: PEERS_TLS must be 1 or 0, not ${JSON.stringify(TLS_ENV)}`);
  process.exit(2);
}
const TLS = TLS_ENV === '1';
const ROUTES = new Set(['/echo', '/subprotocol', '/ping', '/close', '/report-close', '/last-close']);

const seen = new Map(); // id -> [code, reason]
const waiting = new Map(); // id -> [resolve]

function record(id, code, reason) {
  seen.set(id, [code, reason]);
  for (const resolve of waiting.get(id) || []) resolve();
  waiting.delete(id);
}

function waitFor(id, ms) {
  if (seen.has(id)) return Promise.resolve(seen.get(id));
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    const list = waiting.get(id) || [];
    list.push(() => {
      clearTimeout(timer);
      resolve(seen.get(id));
    });
    waiting.set(id, list);
  });
}

function reject(socket, status, text, body) {
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\n` +
      `Content-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

const wss = new WebSocketServer({
  noServer: true,
  maxPayload: MAX_SIZE,
  perMessageDeflate: DEFLATE ? { threshold: 0 } : false,
  handleProtocols(protocols, request) {
    const url = new URL(request.url, 'http://localhost');
    return url.pathname === '/subprotocol' && protocols.has('chat.v2') ? 'chat.v2' : false;
  },
});

function echo(ws) {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
}

function onConnection(ws, url) {
  const id = url.searchParams.get('id') || '';
  ws.on('error', (e) => console.error(`${url.pathname}: ${e.message}`));
  switch (url.pathname) {
    case '/echo':
    case '/subprotocol':
      echo(ws);
      break;
    case '/ping':
      ws.once('message', () => {
        ws.once('pong', (data) => ws.send(`pong: ${data.toString('utf8')}`));
        ws.ping(Buffer.from('server ping κόσμε', 'utf8'));
      });
      break;
    case '/close':
      ws.once('message', () => ws.close(4002, 'server bye'));
      break;
    case '/report-close':
      echo(ws);
      ws.on('close', (code, reason) => record(id, code, reason.toString()));
      break;
    case '/last-close':
      waitFor(id, 5000).then((s) => {
        ws.send(s ? `${s[0]} ${s[1]}` : 'none');
        ws.close(1000);
      });
      break;
  }
}

function onRequest(req, res) {
  res.writeHead(426, { 'Content-Type': 'text/plain' });
  res.end('WebSocket only\n');
}
const server = TLS
  ? https.createServer(
      { cert: fs.readFileSync(process.env.PEERS_TLS_CERT), key: fs.readFileSync(process.env.PEERS_TLS_KEY) },
      onRequest,
    )
  : http.createServer(onRequest);

server.on('upgrade', (req, socket, head) => {
  socket.on('error', () => {});
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname === '/forbidden') return reject(socket, 403, 'Forbidden', 'forbidden\n');
  if (!ROUTES.has(url.pathname)) return reject(socket, 404, 'Not Found', 'no WebSocket here\n');
  wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, url));
});

const addr = process.argv[2] || '127.0.0.1:9012';
const colon = addr.lastIndexOf(':');
server.listen(Number(addr.slice(colon + 1)), addr.slice(0, colon), () => {
  console.error(`node_server (ws ${require('ws/package.json').version}) on ${TLS ? 'wss' : 'ws'}://${addr}, permessage-deflate ${DEFLATE ? 'on' : 'off'}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
