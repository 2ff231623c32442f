// A control for the browser tests: the chat example's contract (crates/hybi-mio/
// examples/mio-chat) served by Node's `ws` instead of hybi: the same page at `/`, the
// chat room at `/chat` (same JSON protocol, same 64 KiB message limit), an echo at
// `/echo` (no tight limit), 404 for any other upgrade. The tests passing against it
// shows that they test the contract (README.md, "The chat contract"), not hybi's
// quirks:
//
//   .ci/browser/run.sh --server 'node .ci/browser/reference_server.mjs {addr}'
//   .ci/browser/run.sh --expect-deflate --server 'node .ci/browser/reference_server.mjs {addr} --deflate'
//   .ci/browser/run.sh --tls --server 'node .ci/browser/reference_server.mjs {addr} --tls-cert {cert} --tls-key {key}'
//
// Usage: node reference_server.mjs HOST:PORT [--deflate] [--tls-cert FILE --tls-key FILE]
// (--deflate: permessage-deflate on for /chat and /echo, ws's defaults; off without it;
// --tls-cert/--tls-key: https and wss only, with that PEM certificate chain and key)
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import path from "node:path";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "../..");
const NODE_DIR = process.env.BROWSER_NODE_DIR || path.join(ROOT, ".ci/cache/browser/node");
const { WebSocketServer, WebSocket } = createRequire(path.join(NODE_DIR, "package.json"))("ws");

const PAGE = fs.readFileSync(path.join(ROOT, "crates/hybi-mio/examples/mio-chat/index.html"));
const MAX_MESSAGE = 64 << 10;
const [host, port] = (process.argv[2] || "127.0.0.1:9001").split(/:(?=\d+$)/);
const extra = process.argv.slice(3);
let DEFLATE = false;
const tls = {};
for (let i = 0; i < extra.length; i++) {
    if (extra[i] === "--deflate") DEFLATE = true;
    else if (extra[i] === "--tls-cert" && i + 1 < extra.length) tls.cert = fs.readFileSync(extra[++i]);
    else if (extra[i] === "--tls-key" && i + 1 < extra.length) tls.key = fs.readFileSync(extra[++i]);
    else {
        console.error(`usage: node reference_server.mjs HOST:PORT [--deflate] [--tls-cert FILE --tls-key FILE] (got ${extra.join(" ")})`);
        process.exit(3);
    }
}
const TLS = tls.cert !== undefined || tls.key !== undefined;
if (TLS && !(tls.cert && tls.key)) {
    console.error("--tls-cert and --tls-key go together");
    process.exit(3);
}

const page = (req, res) => {
    if (req.method === "GET" && req.url.split("?")[0] === "/") {
        res.writeHead(200, { "content-type": "text/html; charset=utf-8", connection: "close" });
        res.end(PAGE);
    } else {
        res.writeHead(404, { "content-type": "text/plain", connection: "close" });
        res.end("not found\n");
    }
};
const server = TLS ? https.createServer(tls, page) : http.createServer(page);

const chat = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE, perMessageDeflate: DEFLATE });
const echo = new WebSocketServer({ noServer: true, maxPayload: 64 << 20, perMessageDeflate: DEFLATE });
let guests = 0;
const members = new Set();
const broadcast = (msg, except) => {
    for (const m of members) if (m !== except && m.readyState === WebSocket.OPEN) m.send(msg);
};

chat.on("connection", (ws) => {
    const name = `guest-${++guests}`;
    members.add(ws);
    ws.send(JSON.stringify({ type: "welcome", you: name, online: members.size }));
    broadcast(JSON.stringify({ type: "join", who: name, online: members.size }), ws);
    ws.on("message", (data, isBinary) => {
        if (isBinary) ws.close(1003, "text only");
        else broadcast(JSON.stringify({ type: "message", who: name, text: data.toString("utf8") }));
    });
    ws.on("error", () => {});
    ws.on("close", () => {
        members.delete(ws);
        broadcast(JSON.stringify({ type: "leave", who: name, online: members.size }));
    });
});
echo.on("connection", (ws) => {
    ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on("error", () => {});
});

server.on("upgrade", (req, socket, head) => {
    const route = { "/chat": chat, "/echo": echo }[req.url.split("?")[0]];
    if (!route) {
        socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        return;
    }
    route.handleUpgrade(req, socket, head, (ws) => route.emit("connection", ws, req));
});
server.listen(Number(port), host, () =>
    console.error(`reference chat (ws) on ${TLS ? "https" : "http"}://${host}:${port}/, permessage-deflate ${DEFLATE ? "on" : "off"}`),
);
