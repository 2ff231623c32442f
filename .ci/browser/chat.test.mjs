// The chat page at `/` as people use it, in two tabs (two browser contexts, so two
// separate users), everything read from the DOM:
//   B opens the page and is welcomed ("you are guest-N · K online"); A opens it, is
//   welcomed, and B's list shows "guest-A joined"; A types a message (multi-byte
//   UTF-8, quotes, backslash, markup) and clicks Send, B's list shows it under A's name
//   (and A's own, marked as A's); B types one and presses Enter, A's list shows it under
//   B's name; A's tab closes and B's list shows "guest-A left".
//   Then B's socket (window.chatSocket, which the page exposes for tests) sends a
//   message over the room's limit (room.rs MAX_MESSAGE, 64 KiB; BROWSER_CHAT_LIMIT to
//   change it), 1 MiB: the room fails the connection with 1009, and B's status line
//   says so.
// Each delivery must show within BROWSER_CHAT_WAIT ms (default 5000) of the action
// that causes it; the test prints how long each took.
// Each tab's chat socket reports `ws.extensions` (the server's answer to Chromium's
// permessage-deflate offer): empty, or with BROWSER_EXPECT_DEFLATE=1 (run.sh
// --expect-deflate) permessage-deflate.
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
const show = (log) => JSON.stringify(log.slice(-4));

await runTest("chat", async (t) => {
    const WELCOME = /^you are (guest-\d+) · (\d+) online$/;

    async function openTab(label) {
        const page = await t.page(label);
        const res = await page.goto(`${t.base}/`, { timeout: 15000 });
        t.eq(`${label}: GET / answers 200 with HTML`, [res?.status(), (res?.headers()["content-type"] || "").split(";")[0]], [200, "text/html"]);
        const s = await waitStatus(page, WELCOME);
        const m = WELCOME.exec(s);
        if (!t.check(`${label}: welcomed ("you are guest-N · K online")`, m, `status line is ${JSON.stringify(s)}`)) {
            return { page };
        }
        t.check(`${label}: input enabled once connected`, await page.isEnabled("#text"), "#text is disabled");
        checkExtensions(t, `${label}: /chat`, await page.evaluate(() => window.chatSocket?.extensions ?? null));
        checkScheme(t, `${label}: /chat`, await page.evaluate(() => window.chatSocket?.url ?? null));
        return { page, name: m[1], online: Number(m[2]), welcomed: Date.now() };
    }

    const B = await openTab("tab-B");
    if (!B.name) return;
    const A = await openTab("tab-A");
    if (!A.name) return;
    t.check("A and B have different names", A.name !== B.name, `both are ${A.name}`);
    t.eq("A's welcome counts one more online than B's", A.online, B.online + 1);

    // `what` must show up in `page`'s list within WAIT ms of `since`.
    const expectLog = async (what, label, page, pred, since) => {
        const r = await waitLog(page, (l) => l.some(pred), since);
        // Over loopback a delivery takes a few ms (polling here adds up to 25): say so
        // when one is slow even though it is in time.
        if (r.ok) t.log(`${what}: ${r.ms} ms after the action${r.ms > SLOW ? ` (slow: over ${SLOW} ms)` : ""}`);
        t.check(what, r.ok, `not within ${WAIT} ms; ${label}'s list: ${show(r.log)}`);
        return r.log;
    };

    const joined = `${A.name} joined (${B.online + 1} online)`;
    const isJoined = (e) => e.kind === "notice" && e.text === joined;
    await expectLog(`B sees "${joined}"`, "B", B.page, isJoined, A.welcomed);

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

    // A leaves.
    await A.page.close();
    const closedA = Date.now();
    const left = `${A.name} left (${B.online} online)`;
    const log = await expectLog(`B sees "${left}" after A's tab closed`, "B", B.page, (e) => e.kind === "notice" && e.text === left, closedA);
    t.eq(
        "B's list, in order",
        log.map((e) => (e.kind === "notice" ? e.text : `${e.who}: ${e.text}`)),
        [joined, `${A.name}: ${fromA}`, `${B.name}: ${fromB}`, left],
    );

    // Over the limit: the room closes B with 1009, and B's page shows it.
    const sent = await B.page.evaluate((n) => {
        window.chatSocket.send("x".repeat(n));
        return n;
    }, Math.max(2 * LIMIT, 1 << 20));
    // The page shows "disconnected (CODE REASON)"; the reason is the server's own words.
    const s = await waitStatus(B.page, /^disconnected/);
    t.log(`B's status line after the ${sent}-byte message: ${JSON.stringify(s)}`);
    t.check(
        `a ${sent}-byte message (limit ${LIMIT}) closes B with 1009, shown on B's status line`,
        /^disconnected \(1009[ )]/.test(s),
        `status line is ${JSON.stringify(s)}, want "disconnected (1009 ...)"`,
    );
});
