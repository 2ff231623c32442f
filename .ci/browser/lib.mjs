// Shared by the .ci/browser tests: Debian's Chromium under playwright-core, a log of
// everything each page said (console, page errors, WebSocket frames as the browser saw
// them), checks that print one line each, and a screenshot plus that log on failure.
//
// A test is `node X.test.mjs BASE_URL` (BASE_URL like http://127.0.0.1:9100). It prints
// `ok - ...` / `not ok - ...` per check and a last line `RESULT <name> PASS|FAIL <detail>`;
// it exits 0 when every check passed, 1 when one failed, 3 when it could not run.
//
// Environment: BROWSER_CHROMIUM (default /usr/bin/chromium), BROWSER_NODE_DIR (where
// install.sh put node_modules, default .ci/cache/browser/node), BROWSER_ARTIFACTS
// (screenshots and logs of failures, default .ci/cache/browser/artifacts),
// BROWSER_TEST_TIMEOUT (ms for the whole test, default 60000), BROWSER_HEADED=1 (with
// a display, to watch), BROWSER_EXPECT_DEFLATE=1 (the server under test has
// permessage-deflate on: see checkExtensions), BROWSER_TLS=1 (the server speaks only
// https and wss, with a self-signed certificate: Chromium accepts it, and checkScheme
// wants every socket on wss://).
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import fs from "node:fs";
import path from "node:path";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, "../..");
const NODE_DIR = process.env.BROWSER_NODE_DIR || path.join(ROOT, ".ci/cache/browser/node");
const require = createRequire(path.join(NODE_DIR, "package.json"));
let chromium;
try {
    ({ chromium } = require("playwright-core"));
} catch (e) {
    console.error(`cannot load playwright-core from ${NODE_DIR} (run .ci/browser/install.sh): ${e.message}`);
    process.exit(3);
}

export const CHROMIUM = process.env.BROWSER_CHROMIUM || "/usr/bin/chromium";
export const ARTIFACTS = process.env.BROWSER_ARTIFACTS || path.join(ROOT, ".ci/cache/browser/artifacts");
const TEST_TIMEOUT = Number(process.env.BROWSER_TEST_TIMEOUT || 60000);

// The flags these machines need: no network but loopback, no sandbox as root, no GPU.
// Playwright itself adds --headless and a fresh temporary --user-data-dir per launch.
const ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

// The TLS mode: the base URL is https://, the certificate self-signed.
export const TLS = (() => {
    const v = process.env.BROWSER_TLS || "0";
    if (v !== "0" && v !== "1") {
        console.error(`BROWSER_TLS must be 1 or 0, not ${JSON.stringify(v)}`);
        process.exit(3);
    }
    return v === "1";
})();
if (TLS) ARGS.push("--ignore-certificate-errors");

/**
 * Checks that a socket's URL has the scheme the mode wants: wss:// over TLS (the page
 * came over https://), ws:// otherwise.
 */
export function checkScheme(t, what, url) {
    const want = TLS ? "wss:" : "ws:";
    return t.check(`${what}: on ${want}//`, typeof url === "string" && url.startsWith(`${want}//`), `url is ${JSON.stringify(url)}`);
}

// Chromium offers permessage-deflate on every connection; a server either agrees or
// ignores the offer. 1: it must agree (`ws.extensions` names it), 0 or unset: it must
// not (the extensions are empty).
const EXPECT_DEFLATE = (() => {
    const v = process.env.BROWSER_EXPECT_DEFLATE || "0";
    if (v !== "0" && v !== "1") {
        console.error(`BROWSER_EXPECT_DEFLATE must be 1 or 0, not ${JSON.stringify(v)}`);
        process.exit(3);
    }
    return v === "1";
})();

/**
 * Logs a socket's `ws.extensions` and checks it against BROWSER_EXPECT_DEFLATE:
 * permessage-deflate (with its parameters, if the browser reports them) when it is 1,
 * nothing otherwise.
 */
export function checkExtensions(t, what, extensions) {
    t.log(`${what}: ws.extensions ${JSON.stringify(extensions)}`);
    if (EXPECT_DEFLATE) {
        return t.check(
            `${what}: permessage-deflate negotiated (BROWSER_EXPECT_DEFLATE=1)`,
            typeof extensions === "string" && /^permessage-deflate(\s*;|$)/.test(extensions),
            `ws.extensions is ${JSON.stringify(extensions)}`,
        );
    }
    return t.check(
        `${what}: no extension negotiated`,
        extensions === "",
        `ws.extensions is ${JSON.stringify(extensions)} (pass --expect-deflate if the server has permessage-deflate on)`,
    );
}

const t0 = Date.now();
const ms = () => String(Date.now() - t0).padStart(6);

/** Shortens a WebSocket payload (string or Buffer) for the log. */
function preview(payload) {
    if (typeof payload === "string") {
        const s = payload.length > 120 ? `${payload.slice(0, 120)}… (${payload.length} chars)` : payload;
        return JSON.stringify(s);
    }
    const b = Buffer.from(payload);
    return `<binary ${b.length} bytes: ${b.subarray(0, 16).toString("hex")}${b.length > 16 ? "…" : ""}>`;
}

/**
 * Runs `body(t)` with a browser; `t` has `page(label)`, `check(name, cond, detail)`,
 * `eq(name, got, want)`, `log(msg)`, `base` (the server's base URL). Prints the
 * result and exits.
 */
export async function runTest(name, body) {
    const base = (process.argv[2] || process.env.BROWSER_BASE_URL || "").replace(/\/$/, "");
    if (!/^https?:\/\//.test(base) || TLS !== base.startsWith("https:")) {
        console.error(`usage: node ${path.basename(process.argv[1])} http${TLS ? "s" : ""}://HOST:PORT (BROWSER_TLS=1: https)`);
        process.exit(3);
    }
    const checks = [];
    const pages = []; // { label, page, lines: [] }
    let browser;
    let crashed = null;

    const t = {
        base,
        wsBase: base.replace(/^http/, "ws"),
        log: (msg) => console.log(`# ${msg}`),
        check(what, cond, detail = "") {
            checks.push({ what, ok: !!cond, detail });
            console.log(`${cond ? "ok" : "not ok"} - ${what}${!cond && detail ? ` (${detail})` : ""}`);
            return !!cond;
        },
        eq(what, got, want) {
            const g = JSON.stringify(got);
            const w = JSON.stringify(want);
            return t.check(what, g === w, `got ${g}, want ${w}`);
        },
        async page(label, context) {
            context = context || (await browser.newContext({ ignoreHTTPSErrors: TLS }));
            const page = await context.newPage();
            const entry = { label, page, lines: [] };
            const note = (line) => entry.lines.push(`${ms()} ms  ${line}`);
            page.on("console", (m) => note(`console.${m.type()}: ${m.text()}`));
            page.on("pageerror", (e) => note(`pageerror: ${e.stack || e.message}`));
            page.on("requestfailed", (r) => note(`requestfailed: ${r.url()} ${r.failure()?.errorText}`));
            page.on("response", (r) => note(`http ${r.status()} ${r.url()}`));
            page.on("websocket", (ws) => {
                note(`websocket open ${ws.url()}`);
                ws.on("framesent", (f) => note(`ws sent ${ws.url()} ${preview(f.payload)}`));
                ws.on("framereceived", (f) => note(`ws recv ${ws.url()} ${preview(f.payload)}`));
                ws.on("socketerror", (e) => note(`ws error ${ws.url()} ${e}`));
                ws.on("close", () => note(`ws closed ${ws.url()}`));
            });
            page.on("close", () => note("page closed"));
            pages.push(entry);
            return page;
        },
    };

    const timer = setTimeout(() => {
        crashed = `timed out after ${TEST_TIMEOUT} ms`;
        console.log(`not ok - ${crashed}`);
        finish().finally(() => process.exit(1));
    }, TEST_TIMEOUT);

    // Runs once; the timeout and the end of the body share it.
    let finishing = null;
    const finish = () => (finishing ??= report());
    async function report() {
        clearTimeout(timer);
        const failed = checks.filter((c) => !c.ok);
        const ok = !crashed && failed.length === 0 && checks.length > 0;
        if (!ok) {
            fs.mkdirSync(ARTIFACTS, { recursive: true });
            for (const { label, page, lines } of pages) {
                const stem = path.join(ARTIFACTS, `${name}-${label}`);
                if (!page.isClosed()) {
                    try {
                        await page.screenshot({ path: `${stem}.png`, fullPage: true, timeout: 5000 });
                        console.log(`# screenshot: ${path.relative(ROOT, `${stem}.png`)}`);
                    } catch (e) {
                        console.log(`# screenshot of ${label} failed: ${e.message.split("\n")[0]}`);
                    }
                }
                fs.writeFileSync(`${stem}.console.log`, lines.join("\n") + "\n");
                console.log(`# console log: ${path.relative(ROOT, `${stem}.console.log`)}`);
            }
        }
        try {
            await browser?.close();
        } catch {}
        const detail = crashed
            ? crashed
            : failed.length
              ? `${failed.length} of ${checks.length} checks failed: ${failed.map((c) => c.what).join("; ")}`
              : `${checks.length} checks`;
        console.log(`RESULT ${name} ${ok ? "PASS" : "FAIL"} ${detail}`);
        process.exitCode = ok ? 0 : 1;
    }

    try {
        browser = await chromium.launch({
            executablePath: CHROMIUM,
            headless: process.env.BROWSER_HEADED !== "1",
            args: ARGS,
            timeout: 30000,
        });
        t.log(`${CHROMIUM} ${browser.version()}, playwright-core ${require("playwright-core/package.json").version}`);
        await body(t);
    } catch (e) {
        if (!finishing) {
            crashed = `exception: ${(e.stack || String(e)).split("\n").slice(0, 3).join(" | ")}`;
            console.log(`not ok - ${crashed}`);
        }
    }
    await finish();
    process.exit(process.exitCode);
}
