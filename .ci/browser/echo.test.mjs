// The browser's own WebSocket against the server's `/echo` route, from the page the
// server serves at `/` (so the origin is the server's own):
//   connection 1: a text with multi-byte UTF-8, a binary ArrayBuffer of a few KiB
//     (every byte value), an empty text, a burst of 200 small messages (order), then
//     close(4000, "browser bye") and the close event;
//   connection 2: one text of exactly 1 MiB of UTF-8 (multi-byte characters across
//     every frame and read boundary), then close(1000);
//   connection 3: `/nowhere`, a path with no route: the upgrade must fail (error
//     event, then close 1006, never open).
// Every comparison is made in the page, byte for byte, and returned for the checks here.
// Connections 1 and 2 report `ws.extensions` (what the server agreed to of Chromium's
// permessage-deflate offer): it must be empty, or with BROWSER_EXPECT_DEFLATE=1 (run.sh
// --expect-deflate) permessage-deflate.
import { checkExtensions, checkScheme, runTest } from "./lib.mjs";

// Runs in the page. One WebSocket with an inbox; every wait has a timeout and gives up
// early when the socket closes, saying how.
async function inPage({ url, script }) {
    const TIMEOUT = 20000;
    const enc = new TextEncoder();
    const open = (u) => {
        const ws = new WebSocket(u);
        ws.binaryType = "arraybuffer";
        const s = { ws, inbox: [], waiters: [], events: [], close: null };
        ws.onopen = () => {
            s.events.push("open");
            s.waiters.splice(0).forEach((w) => w());
        };
        ws.onerror = () => s.events.push("error");
        ws.onmessage = (e) => {
            s.inbox.push(e.data);
            s.waiters.splice(0).forEach((w) => w());
        };
        s.closed = new Promise((resolve) => {
            ws.onclose = (e) => {
                s.events.push("close");
                s.close = { code: e.code, reason: e.reason, wasClean: e.wasClean };
                s.waiters.splice(0).forEach((w) => w());
                resolve(s.close);
            };
        });
        return s;
    };
    const until = (s, cond, what) =>
        new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`timeout (${TIMEOUT} ms) waiting for ${what}`)), TIMEOUT);
            const poll = () => {
                if (cond()) {
                    clearTimeout(timer);
                    resolve();
                } else if (s.close) {
                    clearTimeout(timer);
                    reject(new Error(`closed (code ${s.close.code}, reason ${JSON.stringify(s.close.reason)}, wasClean ${s.close.wasClean}) while waiting for ${what}`));
                } else s.waiters.push(poll);
            };
            poll();
        });
    const opened = (s) => until(s, () => s.events.includes("open"), "open");
    const next = async (s, what) => {
        await until(s, () => s.inbox.length > 0, what);
        return s.inbox.shift();
    };
    const describe = (v) =>
        typeof v === "string"
            ? { type: "text", bytes: enc.encode(v).length }
            : v instanceof ArrayBuffer
              ? { type: "binary", bytes: v.byteLength }
              : { type: typeof v };
    const bytesOf = (v) => (typeof v === "string" ? enc.encode(v) : new Uint8Array(v));
    const firstDiff = (a, b) => {
        const n = Math.min(a.length, b.length);
        for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
        return a.length === b.length ? -1 : n;
    };
    // One round trip: send, take the next message, compare type and bytes.
    const echo = async (s, what, data) => {
        const want = describe(data);
        s.ws.send(data);
        try {
            const got = await next(s, `the echo of ${what}`);
            const d = describe(got);
            const diff = firstDiff(bytesOf(got), bytesOf(data));
            return {
                what,
                sent: want,
                got: d,
                firstDiff: diff,
                ok: d.type === want.type && diff === -1,
            };
        } catch (e) {
            return { what, sent: want, ok: false, error: e.message };
        }
    };

    const out = {};
    if (script === "main") {
        const s = open(url);
        try {
            await opened(s);
        } catch (e) {
            return { error: e.message, events: s.events };
        }
        out.protocol = s.ws.protocol;
        out.url = s.ws.url;
        out.extensions = s.ws.extensions;
        const rounds = [];
        rounds.push(await echo(s, "text with multi-byte UTF-8", "héllo wörld — ünïcödé ✓ 你好 🎉𝄞 \u{10FFFF} end"));
        const bin = new Uint8Array(5000);
        let x = 0x2545f491;
        for (let i = 0; i < bin.length; i++) {
            // xorshift32, with the byte index mixed in: every byte value, no period.
            x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
            bin[i] = i < 256 ? i : x & 0xff;
        }
        rounds.push(await echo(s, "binary ArrayBuffer of 5000 bytes", bin.buffer));
        rounds.push(await echo(s, "empty text", ""));
        out.rounds = rounds;
        // Burst: 200 messages sent at once, alternating text and binary.
        const burst = [];
        for (let i = 0; i < 200; i++) burst.push(i % 2 ? `burst ${i} ✓` : new Uint8Array([i, 255 - i, 0, i]).buffer);
        burst.forEach((m) => s.ws.send(m));
        const bad = [];
        try {
            for (let i = 0; i < burst.length; i++) {
                const got = await next(s, `burst echo ${i}`);
                if (describe(got).type !== describe(burst[i]).type || firstDiff(bytesOf(got), bytesOf(burst[i])) !== -1) bad.push(i);
            }
            out.burst = { n: burst.length, bad };
        } catch (e) {
            out.burst = { n: burst.length, bad, error: e.message };
        }
        out.unexpected = s.inbox.length;
        if (!s.close) s.ws.close(4000, "browser bye");
        await Promise.race([s.closed, new Promise((r) => setTimeout(r, TIMEOUT))]);
        out.close = s.close;
        out.events = s.events;
    } else if (script === "big") {
        const s = open(url);
        try {
            await opened(s);
        } catch (e) {
            return { error: e.message, events: s.events };
        }
        // Exactly 1 MiB of UTF-8: 1-, 2-, 3- and 4-byte characters in a 19-byte cycle.
        const unit = "ab\u00e9\u20ac\u{1F600}xyz\u00fc\u4e2d";
        const n = 1 << 20;
        let big = unit.repeat(Math.floor(n / 19));
        big += "-".repeat(n - enc.encode(big).length);
        out.extensions = s.ws.extensions;
        out.round = await echo(s, "1 MiB text", big);
        out.sentBytes = enc.encode(big).length;
        if (!s.close) s.ws.close(1000);
        await Promise.race([s.closed, new Promise((r) => setTimeout(r, TIMEOUT))]);
        out.close = s.close;
        out.events = s.events;
    } else if (script === "rejected") {
        const s = open(url);
        await Promise.race([s.closed, new Promise((r) => setTimeout(r, TIMEOUT))]);
        out.close = s.close;
        out.events = s.events;
    }
    return out;
}

await runTest("echo", async (t) => {
    const page = await t.page("echo");
    const socketErrors = [];
    page.on("websocket", (ws) => ws.on("socketerror", (e) => socketErrors.push(`${ws.url()}: ${e}`)));
    const res = await page.goto(`${t.base}/`, { timeout: 15000 });
    t.eq("GET / answers 200", res?.status(), 200);
    t.eq("the page is the chat page", await page.title(), "hybi chat");
    checkScheme(t, "the page's chat socket", await page.evaluate(() => window.chatSocket?.url ?? null));
    // The page joined the chat room (`/chat`); leave it (`window.chat.leave()`: closed,
    // and not reconnected), so that this test's member is gone before the chat test
    // counts who is online.
    await page.evaluate(
        () =>
            new Promise((resolve) => {
                const ws = window.chatSocket;
                if (!ws || ws.readyState === WebSocket.CLOSED) return resolve();
                ws.addEventListener("close", () => resolve());
                if (ws.readyState === WebSocket.OPEN) window.chat.leave();
                else ws.addEventListener("open", () => window.chat.leave());
                setTimeout(resolve, 5000);
            }),
    );

    // 1: round trips and the closing handshake.
    const main = await page.evaluate(inPage, { url: `${t.wsBase}/echo`, script: "main" });
    if (!t.check("/echo opens", !main.error, `${main.error} (events ${JSON.stringify(main.events)})`)) return;
    t.eq("no subprotocol", main.protocol, "");
    checkExtensions(t, "/echo (connection 1)", main.extensions);
    checkScheme(t, "/echo (connection 1)", main.url);
    for (const r of main.rounds) {
        const detail = r.error
            ? r.error
            : `sent ${r.sent.type} of ${r.sent.bytes} bytes, got ${r.got.type} of ${r.got.bytes} bytes, first differing byte ${r.firstDiff}`;
        t.check(`echo of ${r.what} is identical`, r.ok, detail);
    }
    t.check(
        "burst of 200 messages echoed identically, in order",
        main.burst && !main.burst.error && main.burst.bad.length === 0,
        JSON.stringify(main.burst),
    );
    t.eq("nothing unasked-for arrived", main.unexpected, 0);
    // The close event carries the server's Close frame. The server must answer with
    // the code (RFC 6455 5.5.1: "typically echos the status code it received"); its
    // reason is its own: the echo of ours or none (hybi sends none).
    t.log(`close event after close(4000, "browser bye"): ${JSON.stringify(main.close)}`);
    t.eq("close event: code 4000 echoed, clean", main.close && [main.close.code, main.close.wasClean], [4000, true]);
    t.check(
        "close event: reason empty or \"browser bye\"",
        main.close && ["", "browser bye"].includes(main.close.reason),
        JSON.stringify(main.close),
    );
    t.eq("events on connection 1", main.events, ["open", "close"]);

    // 2: one message of 1 MiB.
    const big = await page.evaluate(inPage, { url: `${t.wsBase}/echo`, script: "big" });
    if (t.check("/echo opens (second connection)", !big.error, `${big.error} (events ${JSON.stringify(big.events)})`)) {
        checkExtensions(t, "/echo (connection 2)", big.extensions);
        t.eq("1 MiB text is 1048576 bytes of UTF-8", big.sentBytes, 1 << 20);
        const r = big.round;
        t.check(
            "echo of 1 MiB text is identical",
            r.ok,
            r.error || `got ${r.got.type} of ${r.got.bytes} bytes, first differing byte ${r.firstDiff}`,
        );
        t.eq("clean close 1000 after the 1 MiB echo", big.close, { code: 1000, reason: "", wasClean: true });
    }

    // 3: a path with no route.
    const rej = await page.evaluate(inPage, { url: `${t.wsBase}/nowhere`, script: "rejected" });
    t.eq("/nowhere: error then close, never open", rej.events, ["error", "close"]);
    t.eq("/nowhere: close 1006, not clean", rej.close && [rej.close.code, rej.close.wasClean], [1006, false]);
    await page.waitForTimeout(100);
    t.log(`browser's socket errors: ${socketErrors.length ? socketErrors.join(" | ") : "(none)"}`);
    t.eq(
        "the page's chat socket, left at the start, stayed closed (no reconnection)",
        await page.evaluate(() => [window.chat?.state, window.chat?.opens, window.chatSocket?.readyState]),
        ["left", 1, 3],
    );
});
