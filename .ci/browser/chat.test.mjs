// The chat page at `/` as people use it, in tabs (separate browser contexts, so
// separate users), everything read from the DOM (and the page's `window.chat` state):
//   B opens the page and is welcomed ("you are guest-N · K online"); loading it logs no
//   console error, no failed request and no HTTP error (the favicon is inline). A opens
//   it, is welcomed with K+1 online, and B's list shows "guest-A joined" while B's
//   count (#online) goes K -> K+1; A types a message (multi-byte UTF-8, quotes,
//   backslash, markup) and clicks Send, B's list shows it under A's name (and A's own,
//   marked as A's); B types one and presses Enter, A's list shows it under B's name;
//   every entry has its local time, HH:MM; A's tab closes, B's list shows "guest-A
//   left" and B's count is back to K.
//   The server goes away: tab C loads the page through a TCP proxy run here (with a
//   short backoff, `?backoff=100&backoffmax=400`), which then drops every connection
//   and stops listening: C shows the disconnected banner ("disconnected — reconnecting
//   in Ns"), its input disabled, B sees C leave; C retries with exponential backoff
//   (each delay within 50-100 % of 100, 200, 400, 400 ms); once the proxy listens
//   again C reconnects by itself, the banner goes, B sees C join and C's message.
//   Then C, reloaded with a minute's backoff, loses its connection again and
//   "reconnect now" brings it back at once.
//   Then B's socket (window.chatSocket, which the page exposes for tests) sends a
//   message over the room's limit (room.rs MAX_MESSAGE, 64 KiB; BROWSER_CHAT_LIMIT to
//   change it), 1 MiB: the room fails the connection with 1009, B's status line and
//   list say so, and B reconnects by itself (default backoff, 250 to 500 ms).
// Each delivery must show within BROWSER_CHAT_WAIT ms (default 5000) of the action
// that causes it; the test prints how long each took.
// Each tab's chat socket reports `ws.extensions` (the server's answer to Chromium's
// permessage-deflate offer): empty, or with BROWSER_EXPECT_DEFLATE=1 (run.sh
// --expect-deflate) permessage-deflate.
import net from "node:net";
import { checkExtensions, checkScheme, runTest } from "./lib.mjs";

const WAIT = Number(process.env.BROWSER_CHAT_WAIT || 5000);
const SLOW = 250;
const LIMIT = Number(process.env.BROWSER_CHAT_LIMIT || 64 << 10);

// What a list shows, in the page's own terms: one entry per <li>.
const readLog = (page) =>
    page.$$eval("#log li", (lis) =>
        lis.map((li) => ({
            kind: li.className,
            who: li.querySelector(".who")?.textContent ?? null,
            text: li.lastChild?.nodeType === Node.TEXT_NODE ? li.lastChild.textContent : null,
        })),
    );
const status = (page) => page.textContent("#status");
const online = (page) => page.evaluate(() => document.getElementById("online")?.textContent ?? null);
const state = (page) => page.evaluate(() => (window.chat ? { ...window.chat, reconnectNow: undefined } : null));
const banner = (page) =>
    page.evaluate(() => {
        const b = document.getElementById("banner");
        return b && !b.hidden && b.offsetParent !== null ? b.textContent : null;
    });

// Waits until `pred(log)` holds for the page's list (polling the DOM), at most until
// WAIT ms after `since` (the action that should make it so); returns the last list
// seen either way, and the time since `since`. Every message here crosses loopback
// only: WAIT is far longer than a delivery ever needs.
async function waitLog(page, pred, since) {
    for (;;) {
        const log = await readLog(page);
        const ms = Date.now() - since;
        if (pred(log)) return { ok: true, log, ms };
        if (ms > WAIT) return { ok: false, log, ms };
        await page.waitForTimeout(25);
    }
}
async function waitStatus(page, re, timeout = WAIT) {
    const t0 = Date.now();
    for (;;) {
        const s = await status(page);
        if (re.test(s) || Date.now() - t0 > timeout) return s;
        await page.waitForTimeout(25);
    }
}
// Polls `get()` until `pred` holds of its value or `timeout` ms pass; the last value
// and how long it took.
async function waitFor(page, get, pred, timeout = WAIT) {
    const t0 = Date.now();
    for (;;) {
        const value = await get();
        const ms = Date.now() - t0;
        if (pred(value)) return { ok: true, value, ms };
        if (ms > timeout) return { ok: false, value, ms };
        await page.waitForTimeout(10);
    }
}
const show = (log) => JSON.stringify(log.slice(-4));

// A TCP proxy on 127.0.0.1 in front of the server (TLS passes through as bytes), so
// that the test can make the server go away for one tab, whatever the server:
// `drop()` ends every connection through it (the browser sees its socket end without a
// closing handshake, 1006, and the server sees its client vanish), `stop()` does that
// and stops listening (every reconnection is refused), `start()` listens again, on the
// same port.
function proxy(base) {
    const target = new URL(base);
    const conns = new Set();
    let server = null;
    let port = 0;
    const drop = () => {
        for (const s of conns) s.destroy();
        conns.clear();
    };
    return {
        get base() {
            return `${target.protocol}//127.0.0.1:${port}`;
        },
        start: () =>
            new Promise((resolve, reject) => {
                server = net.createServer((client) => {
                    const upstream = net.connect(Number(target.port), target.hostname);
                    conns.add(client).add(upstream);
                    client.pipe(upstream);
                    upstream.pipe(client);
                    const end = () => {
                        client.destroy();
                        upstream.destroy();
                        conns.delete(client);
                        conns.delete(upstream);
                    };
                    for (const s of [client, upstream]) {
                        s.on("error", end);
                        s.on("close", end);
                    }
                });
                server.once("error", reject);
                server.listen(port, "127.0.0.1", () => {
                    port = server.address().port;
                    resolve();
                });
            }),
        drop,
        stop: () =>
            new Promise((resolve) => {
                server.close(() => resolve());
                drop();
            }),
    };
}

await runTest("chat", async (t) => {
    const WELCOME = /^you are (guest-\d+) · (\d+) online$/;

    // Opens `/` (plus `query`) in a new tab: the page loads without a console error, a
    // failed request or an HTTP error, and its socket is welcomed.
    async function openTab(label, { base = t.base, query = "" } = {}) {
        const page = await t.page(label);
        const trouble = [];
        const onConsole = (m) => m.type() === "error" && trouble.push(`console.error: ${m.text()}`);
        const onError = (e) => trouble.push(`pageerror: ${e.message}`);
        const onFailed = (r) => trouble.push(`requestfailed: ${r.url()} ${r.failure()?.errorText}`);
        const onResponse = (r) => r.status() >= 400 && trouble.push(`http ${r.status()} ${r.url()}`);
        page.on("console", onConsole);
        page.on("pageerror", onError);
        page.on("requestfailed", onFailed);
        page.on("response", onResponse);
        const res = await page.goto(`${base}/${query}`, { timeout: 15000 });
        t.eq(`${label}: GET /${query} answers 200 with HTML`, [res?.status(), (res?.headers()["content-type"] || "").split(";")[0]], [200, "text/html"]);
        const s = await waitStatus(page, WELCOME);
        const m = WELCOME.exec(s);
        // A moment for a late favicon request or error to show.
        await page.waitForTimeout(100);
        page.off("console", onConsole);
        page.off("pageerror", onError);
        page.off("requestfailed", onFailed);
        page.off("response", onResponse);
        t.check(`${label}: loading logs no console error, failed request or HTTP error (favicon included)`, trouble.length === 0, trouble.join("; "));
        if (!t.check(`${label}: welcomed ("you are guest-N · K online")`, m, `status line is ${JSON.stringify(s)}`)) {
            return { page };
        }
        t.check(`${label}: input enabled once connected`, await page.isEnabled("#text"), "#text is disabled");
        t.eq(`${label}: no disconnected banner while connected`, await banner(page), null);
        checkExtensions(t, `${label}: /chat`, await page.evaluate(() => window.chatSocket?.extensions ?? null));
        checkScheme(t, `${label}: /chat`, await page.evaluate(() => window.chatSocket?.url ?? null));
        return { page, name: m[1], online: Number(m[2]), welcomed: Date.now() };
    }

    // `what` must show up in `page`'s list within WAIT ms of `since`.
    const expectLog = async (what, label, page, pred, since) => {
        const r = await waitLog(page, (l) => l.some(pred), since);
        // Over loopback a delivery takes a few ms (polling here adds up to 25): say so
        // when one is slow even though it is in time.
        if (r.ok) t.log(`${what}: ${r.ms} ms after the action${r.ms > SLOW ? ` (slow: over ${SLOW} ms)` : ""}`);
        t.check(what, r.ok, `not within ${WAIT} ms; ${label}'s list: ${show(r.log)}`);
        return r.log;
    };
    // `page`'s live count must read `n online` (within WAIT ms).
    const expectOnline = async (what, page, n) => {
        const r = await waitFor(page, () => online(page), (v) => v === `${n} online`);
        t.check(`${what}: "${n} online"`, r.ok, `#online reads ${JSON.stringify(r.value)}`);
    };

    const B = await openTab("tab-B");
    if (!B.name) return;
    const K = B.online;
    t.log(`B is ${B.name}, ${K} online (1 on a server of its own)`);
    await expectOnline("B's count once welcomed", B.page, K);
    const A = await openTab("tab-A");
    if (!A.name) return;
    t.check("A and B have different names", A.name !== B.name, `both are ${A.name}`);
    t.eq("A's welcome counts one more online than B's", A.online, K + 1);

    const joined = `${A.name} joined (${K + 1} online)`;
    const isJoined = (e) => e.kind === "notice" && e.text === joined;
    await expectLog(`B sees "${joined}"`, "B", B.page, isJoined, A.welcomed);
    await expectOnline("B's count once A joined", B.page, K + 1);
    await expectOnline("A's count", A.page, K + 1);

    // A types and clicks Send.
    const fromA = `hello from A: ünïcödé ✓ 你好 🎉 say "hi" \\o/ <b>not bold</b>`;
    await A.page.locator("#text").pressSequentially(fromA);
    await A.page.click("#send");
    const sentA = Date.now();
    const isFromA = (e) => e.kind.split(" ")[0] === "message" && e.who === A.name && e.text === fromA;
    await expectLog("B sees A's message under A's name", "B", B.page, isFromA, sentA);
    t.check("B's list shows markup as text", (await B.page.$$("#log b")).length === 0, "a <b> element was created");
    await expectLog("A sees its own message, marked as its own", "A", A.page, (e) => isFromA(e) && e.kind === "message mine", sentA);
    t.eq("A's input is empty after sending", await A.page.inputValue("#text"), "");

    // B types and presses Enter.
    const fromB = "and hello from B — ça va? 👋";
    await B.page.locator("#text").pressSequentially(fromB);
    await B.page.press("#text", "Enter");
    const sentB = Date.now();
    const isFromB = (e) => e.kind.split(" ")[0] === "message" && e.who === B.name && e.text === fromB;
    await expectLog("A sees B's message under B's name", "A", A.page, isFromB, sentB);
    await expectLog("B sees its own message, marked as its own", "B", B.page, (e) => isFromB(e) && e.kind === "message mine", sentB);

    // Every entry carries its local time, HH:MM, as the page's clock reads it now (or
    // a minute before, the minute having turned meanwhile).
    const times = await B.page.evaluate(() => {
        const hhmm = (d) => String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
        const now = Date.now();
        return {
            shown: [...document.querySelectorAll("#log li")].map((li) => li.querySelector("time.ts")?.textContent ?? null),
            first: [...document.querySelectorAll("#log li")].map((li) => li.firstChild?.nodeName ?? null),
            ok: [hhmm(new Date(now)), hhmm(new Date(now - 60000))],
        };
    });
    t.log(`B's timestamps: ${JSON.stringify(times.shown)}`);
    t.check(
        "every entry of B's list starts with its local time (HH:MM, now)",
        times.shown.length === 3 && times.shown.every((s) => times.ok.includes(s)) && times.first.every((n) => n === "TIME"),
        `timestamps ${JSON.stringify(times.shown)}, first nodes ${JSON.stringify(times.first)}, want one of ${JSON.stringify(times.ok)} on each of 3`,
    );

    // A leaves.
    await A.page.close();
    const closedA = Date.now();
    const left = `${A.name} left (${K} online)`;
    const log = await expectLog(`B sees "${left}" after A's tab closed`, "B", B.page, (e) => e.kind === "notice" && e.text === left, closedA);
    await expectOnline("B's count once A left", B.page, K);
    t.eq(
        "B's list, in order",
        log.map((e) => (e.kind === "notice" ? e.text : `${e.who}: ${e.text}`)),
        [joined, `${A.name}: ${fromA}`, `${B.name}: ${fromB}`, left],
    );

    // The server goes away for C (through the proxy), and comes back.
    const BASE_MS = 100, MAX_MS = 400;
    const px = proxy(t.base);
    await px.start();
    const C = await openTab("tab-C", { base: px.base, query: `?backoff=${BASE_MS}&backoffmax=${MAX_MS}` });
    if (!C.name) return;
    await expectLog(`B sees C (${C.name}) join`, "B", B.page, (e) => e.kind === "notice" && e.text === `${C.name} joined (${K + 1} online)`, C.welcomed);

    await px.stop();
    const down = Date.now();
    const BANNER = /^disconnected — reconnecting(…| in \d+(\.\d)?s)reconnect now$/;
    const shown = await waitFor(C.page, () => banner(C.page), (b) => b !== null && BANNER.test(b));
    t.check(`C shows the disconnected banner once the server is gone ("disconnected — reconnecting in Ns", "reconnect now")`, shown.ok, `banner: ${JSON.stringify(shown.value)}`);
    t.log(`C's banner ${shown.ms} ms after the drop: ${JSON.stringify(shown.value)}`);
    t.check("C's input is disabled while disconnected", !(await C.page.isEnabled("#text")), "#text is enabled");
    await expectLog(`B sees C (${C.name}) leave`, "B", B.page, (e) => e.kind === "notice" && e.text === `${C.name} left (${K} online)`, down);
    // Three refused reconnections, then the proxy listens again.
    const retried = await waitFor(C.page, () => state(C.page), (s) => s.delays.length >= 4, 4 * MAX_MS + WAIT);
    const delays = retried.value.delays;
    t.log(`C's delays before each attempt: ${JSON.stringify(delays)} ms`);
    const want = delays.map((_, i) => Math.min(MAX_MS, BASE_MS * 2 ** i));
    t.check(
        `C retries with exponential backoff (${BASE_MS} ms doubling to ${MAX_MS}, each jittered to 50-100 %)`,
        retried.ok && delays.every((d, i) => d >= want[i] / 2 && d <= want[i]),
        `delays ${JSON.stringify(delays)}, want within half of ${JSON.stringify(want)} and those`,
    );
    t.eq("C's last close while the server is gone is 1006", retried.value.lastClose?.code, 1006);
    await px.start();
    const again = await waitFor(C.page, () => state(C.page), (s) => s.state === "open" && s.me !== C.name && WELCOME.test(`you are ${s.me} · ${s.online} online`), MAX_MS + WAIT);
    t.check("C reconnects by itself once the server is back, as a new guest", again.ok, `C's state ${JSON.stringify(again.value)}`);
    const reopened = Date.now();
    t.log(`C reconnected ${again.ms} ms after the server came back, as ${again.value.me}`);
    const C2 = again.value.me;
    t.eq("C's banner is gone once reconnected", await banner(C.page), null);
    t.eq("C's attempt count is reset by the open", again.value.attempt, 0);
    t.check("C's status line welcomes it again", WELCOME.test(await waitStatus(C.page, WELCOME)), `status line is ${JSON.stringify(await status(C.page))}`);
    await expectOnline("C's count once back", C.page, K + 1);
    await expectLog(`B sees C (${C2}) join again`, "B", B.page, (e) => e.kind === "notice" && e.text === `${C2} joined (${K + 1} online)`, reopened);
    await expectOnline("B's count once C is back", B.page, K + 1);
    const fromC = "back again ↻";
    await C.page.locator("#text").pressSequentially(fromC);
    await C.page.press("#text", "Enter");
    const sentC = Date.now();
    await expectLog("B sees C's message after C reconnected", "B", B.page, (e) => e.kind === "message" && e.who === C2 && e.text === fromC, sentC);

    // "reconnect now": C reloaded with a minute's backoff, the connection dropped.
    await C.page.goto(`${px.base}/?backoff=60000`, { timeout: 15000 });
    const C3 = WELCOME.exec(await waitStatus(C.page, WELCOME))?.[1];
    t.check("C reloaded with ?backoff=60000 is welcomed", C3, `status line is ${JSON.stringify(await status(C.page))}`);
    px.drop();
    const waiting = await waitFor(C.page, () => banner(C.page), (b) => b !== null && /reconnecting in \d+s/.test(b));
    const secs = Number(/in (\d+)s/.exec(waiting.value ?? "")?.[1]);
    t.check("C's banner counts down from 30 to 60 s (the first delay, jittered)", waiting.ok && secs >= 29 && secs <= 60, `banner: ${JSON.stringify(waiting.value)}`);
    await C.page.click("#reconnect");
    const clicked = Date.now();
    const now = await waitFor(C.page, () => state(C.page), (s) => s.state === "open" && s.me !== C3 && s.me !== null);
    t.check(`"reconnect now" reconnects C at once`, now.ok, `C's state ${JSON.stringify(now.value)}`);
    t.log(`C reconnected ${now.ms} ms after "reconnect now"`);
    t.eq("C's banner is gone after reconnect now", await banner(C.page), null);
    await C.page.close();
    await px.stop();
    await expectOnline("B's count once C left", B.page, K);

    // Over the limit: the room closes B with 1009, and B's page shows it, then B
    // reconnects by itself (the default backoff).
    const sent = await B.page.evaluate((n) => {
        window.chatSocket.send("x".repeat(n));
        return n;
    }, Math.max(2 * LIMIT, 1 << 20));
    const overAt = Date.now();
    // The page shows "disconnected (CODE REASON)"; the reason is the server's own words.
    const tooBig = await expectLog("B's list notes the disconnection", "B", B.page, (e) => e.kind === "notice" && /^disconnected \(/.test(e.text), overAt);
    const note = tooBig.find((e) => e.kind === "notice" && /^disconnected \(/.test(e.text))?.text ?? null;
    t.log(`B's notice after the ${sent}-byte message: ${JSON.stringify(note)}`);
    t.check(
        `a ${sent}-byte message (limit ${LIMIT}) closes B with 1009, noted in B's list`,
        /^disconnected \(1009[ )]/.test(note ?? ""),
        `notice is ${JSON.stringify(note)}, want "disconnected (1009 ...)"`,
    );
    t.eq("B's last close code is 1009", (await state(B.page))?.lastClose?.code, 1009);
    const rejoined = await waitFor(B.page, () => state(B.page), (s) => s.state === "open" && s.opens === 2, 500 + WAIT);
    t.check("B reconnects by itself after the 1009 (default backoff)", rejoined.ok, `B's state ${JSON.stringify(rejoined.value)}`);
    const reopenedB = Date.now();
    t.log(`B reconnected ${rejoined.ms} ms after the notice, as ${rejoined.value?.me}; delays ${JSON.stringify(rejoined.value?.delays)}`);
    t.check(
        "B's reconnection delay is within 250-500 ms (default 500 ms, jittered)",
        rejoined.value?.delays?.length === 1 && rejoined.value.delays[0] >= 250 && rejoined.value.delays[0] <= 500,
        `delays ${JSON.stringify(rejoined.value?.delays)}`,
    );
    await expectOnline("B's count once reconnected", B.page, K);
    await expectLog("B's list notes the reconnection", "B", B.page, (e) => e.kind === "notice" && /^reconnected as guest-\d+ \(\d+ online\)$/.test(e.text), reopenedB);
});
