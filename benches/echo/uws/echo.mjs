// uWebSockets.js echo server for benches/echo/run.py, written as uWebSockets.js's
// own echo example is: one App (one thread: uWS runs an App on the thread that
// made it), every message sent back as it came, no compression.
//
//   node echo.mjs HOST:PORT
//
// uWebSockets.js comes from the npm package @trufflesuite/uws-js-unofficial
// (package.json; benches/run-echo.sh installs it). Its binary is loaded directly:
// the package's own entry point falls back to a JavaScript implementation on top
// of `ws` when the binary does not load, and that must never be what is measured.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const PKG = "@trufflesuite/uws-js-unofficial";
const binary = `${PKG}/binaries/uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
let uWS;
try {
    uWS = require(binary);
} catch (e) {
    console.error(`uWebSockets.js: cannot load ${binary} with node ${process.version}: ${e.message}`);
    process.exit(2);
}

const addr = process.argv[2];
const m = /^(.*):(\d+)$/.exec(addr || "");
if (!m) {
    console.error("usage: node echo.mjs HOST:PORT");
    process.exit(2);
}
const host = m[1].replace(/^\[(.*)\]$/, "$1");
const port = Number(m[2]);

uWS.App()
    .ws("/*", {
        compression: uWS.DISABLED,
        maxPayloadLength: 16 * 1024 * 1024,
        idleTimeout: 0,
        // uWS drops a send (returns 2) once this much is buffered for a socket
        // (default 64 KiB): 16 echoes of 64 KiB in flight need more than that.
        maxBackpressure: 64 * 1024 * 1024,
        message: (ws, message, isBinary) => {
            ws.send(message, isBinary);
        },
    })
    .listen(host, port, (listenSocket) => {
        if (listenSocket) {
            console.log(`uWebSockets.js (${PKG} ${require(`${PKG}/package.json`).version}) listening on ${addr}`);
        } else {
            console.error(`uWebSockets.js: cannot listen on ${addr}`);
            process.exit(1);
        }
    });
