// The real browser SDKs, unmodified, in real headless Chromium, sending to a Leadscore server from a
// page on another origin (as a customer's website would): Segment's analytics.js
// (`@segment/analytics-next`) and RudderStack's JavaScript SDK v3 (`@rudderstack/analytics-js`,
// its XHR transport and its `useBeacon` transport). Each SDK is bundled from node_modules with
// esbuild into an IIFE the page loads, and pointed at the server with its documented settings only:
// analytics.js gets `cdnURL` (it then loads `{base}/v1/projects/{writeKey}/settings`, which names
// where to send), RudderStack gets `dataPlaneUrl` and `configUrl` (it loads `{base}/sourceConfig/`).
// Each run: an anonymous page view of /pricing, then identify (email, title), track "Demo
// Requested", group; then the API must show one lead with the traits, the track event, the
// anonymous page view stitched to it, and the account. Usage:
//   node tests/browser/sdk_clients.mjs --base http://127.0.0.1:8080 --write-key WK --api-key AK [--runs segment,rudderstack,rudderstack-beacon]
// Exit 0 pass, 1 fail, 77 skipped (no Chromium / packages not installed).
import { existsSync } from "node:fs";
import http from "node:http";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const base = (args.base || "").replace(/\/+$/, "");
const writeKey = args["write-key"];
const apiKey = args["api-key"];
if (!base || !writeKey || !apiKey) {
  console.log("usage: node sdk_clients.mjs --base URL --write-key WK --api-key AK [--runs segment,rudderstack,rudderstack-beacon]");
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const here = dirname(fileURLToPath(import.meta.url));
const skip = (why) => {
  console.log(`skipped: ${why}`);
  process.exit(77);
};

let chromium;
let esbuild;
try {
  ({ chromium } = await import("playwright-core"));
  esbuild = await import("esbuild");
} catch (e) {
  skip(`playwright-core / esbuild are not installed (npm ci --prefix tests/browser): ${e.message}`);
}
for (const pkg of ["@segment/analytics-next", "@rudderstack/analytics-js/bundled"]) {
  try {
    import.meta.resolve(pkg);
  } catch (e) {
    skip(`${pkg} is not installed (npm ci --prefix tests/browser): ${e.message}`);
  }
}
if (!existsSync(executablePath)) skip(`no Chromium at ${executablePath} (apt-get install chromium)`);

// The SDKs as a website ships them: one script each, which loads the SDK when the page loads with
// the page's settings (window.LEADSCORE_TEST) and leaves the instance on window.
// RudderStack's default export fetches its plugins (even the one that sends events) from
// cdn.rudderlabs.com at run time; the `bundled` export carries them, so it works offline.
const entries = {
  segment: `import { AnalyticsBrowser } from "@segment/analytics-next";
    const c = window.LEADSCORE_TEST;
    window.analytics = AnalyticsBrowser.load({ writeKey: c.writeKey, cdnURL: c.base });`,
  rudderstack: `import { RudderAnalytics } from "@rudderstack/analytics-js/bundled";
    const c = window.LEADSCORE_TEST;
    const rudderanalytics = new RudderAnalytics();
    rudderanalytics.load(c.writeKey, c.base, { configUrl: c.base, useBeacon: c.useBeacon });
    window.rudderanalytics = rudderanalytics;`,
};
const bundles = {};
for (const [name, contents] of Object.entries(entries)) {
  const out = await esbuild.build({
    stdin: { contents, resolveDir: here, loader: "js", sourcefile: `${name}-entry.js` },
    bundle: true,
    format: "iife",
    platform: "browser",
    write: false,
    define: { "process.env.NODE_ENV": '"production"' },
    logLevel: "error",
  });
  bundles[name] = out.outputFiles[0].text;
}

const suffix = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const allRuns = {
  segment: { sdk: "segment" },
  rudderstack: { sdk: "rudderstack", useBeacon: false },
  "rudderstack-beacon": { sdk: "rudderstack", useBeacon: true },
};
const runNames = (args.runs || Object.keys(allRuns).join(",")).split(",").filter(Boolean);
for (const r of runNames) if (!allRuns[r]) {
  console.log(`unknown run ${r}; known: ${Object.keys(allRuns).join(", ")}`);
  process.exit(2);
}

// The website: its own origin (another port), the way a customer's site embeds the SDK.
const site = http.createServer((req, res) => {
  const url = new URL(req.url, "http://site");
  const bundle = /^\/js\/(\w+)\.js$/.exec(url.pathname);
  if (bundle && bundles[bundle[1]]) {
    res.writeHead(200, { "Content-Type": "text/javascript; charset=utf-8" });
    return res.end(bundles[bundle[1]]);
  }
  const run = allRuns[url.searchParams.get("run")];
  if (url.pathname === "/pricing" && run) {
    const settings = JSON.stringify({ base, writeKey, useBeacon: run.useBeacon ?? false });
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    return res.end(`<!doctype html><html><head><meta charset="utf-8"><title>Pricing</title>
<script>window.LEADSCORE_TEST = ${settings};</script><script src="/js/${run.sdk}.js"></script></head>
<body><h1>Pricing</h1><a href="/thanks">Book a demo</a></body></html>`);
  }
  if (url.pathname === "/thanks") {
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    return res.end("<!doctype html><title>Thanks</title><p>Thanks!</p>");
  }
  res.writeHead(url.pathname === "/favicon.ico" ? 204 : 404).end();
});
await new Promise((resolve) => site.listen(0, "127.0.0.1", resolve));
const siteBase = `http://127.0.0.1:${site.address().port}`;

const api = async (path) => {
  const r = await fetch(base + path, { headers: { Authorization: `Bearer ${apiKey}` } });
  if (r.status === 404) return null;
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status} ${await r.text()}`);
  return r.json();
};

const isAnonymous = (e) => e.userId === undefined || e.userId === null || e.userId === "";
function missing(lead, want) {
  if (!lead) return [`no lead ${want.userId} yet (GET /api/leads/${want.userId} is 404)`];
  const out = [];
  const events = lead.events ?? [];
  if (lead.traits?.email !== want.email) out.push(`traits.email = ${JSON.stringify(lead.traits?.email)}, want ${want.email}`);
  if (lead.traits?.title !== "CTO") out.push(`traits.title = ${JSON.stringify(lead.traits?.title)}, want CTO`);
  if (!events.some((e) => e.type === "track" && e.event === "Demo Requested")) out.push(`no track "Demo Requested" event`);
  const pages = events.filter((e) => e.type === "page" && e.properties?.path === "/pricing");
  if (!pages.length) out.push("no page event with properties.path /pricing");
  else if (!pages.some((e) => isAnonymous(e) && (!want.anonymousId || e.anonymousId === want.anonymousId)))
    out.push(`the /pricing page view is not the anonymous one (anonymousId ${want.anonymousId}): ${JSON.stringify(pages.map((e) => [e.userId, e.anonymousId]))}`);
  if (lead.account?.id !== want.groupId) out.push(`account.id = ${JSON.stringify(lead.account?.id)}, want ${want.groupId}`);
  return out;
}

// What each run does in the page: the SDK is already loading (the page's script started it).
async function inPage({ sdk, userId, email, groupId }) {
  const timeout = (ms, what) => new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms));
  if (sdk === "segment") {
    const a = window.analytics;
    const calls = (async () => {
      await a.page("Pricing");
      await a.identify(userId, { email, title: "CTO" });
      await a.track("Demo Requested", { plan: "enterprise" });
      await a.group(groupId, { employees: 500 });
      const [instance] = await a;
      return instance.user().anonymousId();
    })();
    return Promise.race([calls, timeout(20000, "analytics.js calls")]);
  }
  const r = window.rudderanalytics;
  const anonymousId = r.getAnonymousId();
  r.page("Pricing");
  r.identify(userId, { email, title: "CTO" });
  r.track("Demo Requested", { plan: "enterprise" });
  r.group(groupId, { employees: 500 });
  await Promise.race([new Promise((resolve) => r.ready(resolve)), timeout(15000, "RudderStack SDK ready()")]);
  return r.getAnonymousId() || anonymousId;
}

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const userAgent = `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${browser.version()} Safari/537.36`;
const results = [];
try {
  for (const name of runNames) {
    const run = allRuns[name];
    const want = {
      userId: `sdk-${name}-${suffix}`,
      email: `${name}-${suffix}@acme.example`,
      groupId: `acme-${name}-${suffix}`,
    };
    // A desktop Chrome user agent: Chromium's headless one ("HeadlessChrome") is what bot filters
    // (like examples/models/b2b-default.toml's [events] ignore) drop, and this test is about the SDKs.
    const context = await browser.newContext({ userAgent });
    const requests = [];
    const consoleErrors = [];
    context.on("response", (r) => requests.push({ method: r.request().method(), url: r.url(), status: r.status() }));
    context.on("requestfailed", (r) => requests.push({ method: r.method(), url: r.url(), status: r.failure()?.errorText ?? "failed" }));
    const page = await context.newPage();
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") consoleErrors.push(`${m.type()}: ${m.text().replace(/%c/g, "")}`);
    });
    page.on("pageerror", (e) => consoleErrors.push(`pageerror: ${e.message}`));
    const problems = [];
    await page.goto(`${siteBase}/pricing?run=${name}`);
    try {
      want.anonymousId = await page.evaluate(inPage, { sdk: run.sdk, ...want });
    } catch (e) {
      problems.push(`in the page: ${e.message.split("\n")[0]}`);
    }
    if (run.useBeacon) {
      // The beacon transport batches (10 events or 10 minutes) and sends when the page is left.
      await page.waitForTimeout(300);
      await page.click("a[href='/thanks']");
      await page.waitForURL(/\/thanks$/);
    }
    let lead = null;
    let left = [];
    const deadline = Date.now() + 20000;
    for (;;) {
      try {
        lead = await api(`/api/leads/${encodeURIComponent(want.userId)}`);
        left = missing(lead, want);
      } catch (e) {
        left = [e.message];
      }
      if (!left.length || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 400));
    }
    await context.close();
    const failed = requests.filter((r) => typeof r.status !== "number" || r.status >= 400);
    results.push({ name, want, problems: [...problems, ...left], failed, requests, consoleErrors, lead });
  }
} finally {
  await browser.close();
  site.close();
}

let failures = 0;
for (const r of results) {
  const sent = r.requests.filter((q) => q.url.startsWith(base)).map((q) => `${q.method} ${q.url.slice(base.length)} ${q.status}`);
  if (!r.problems.length) {
    console.log(`PASS ${r.name}: lead ${r.want.userId} has the traits, "Demo Requested", the anonymous /pricing view and account ${r.want.groupId}`);
    continue;
  }
  failures += 1;
  console.log(`FAIL ${r.name} (lead ${r.want.userId}, anonymousId ${r.want.anonymousId ?? "?"}):`);
  for (const p of r.problems) console.log(`  - ${p}`);
  console.log(`  requests that failed (${r.failed.length}):`);
  for (const q of r.failed) console.log(`    ${q.method} ${q.url} -> ${q.status}`);
  console.log(`  requests to the server: ${sent.length ? sent.join(", ") : "none"}` +
    (allRuns[r.name].useBeacon ? " (a beacon sent as the page is left is not listed here; see the server log)" : ""));
  for (const c of r.consoleErrors.slice(0, 15)) console.log(`  console ${c.slice(0, 400)}`);
  if (r.lead) console.log(`  lead: traits ${JSON.stringify(r.lead.traits)}, account ${JSON.stringify(r.lead.account)}, events ${JSON.stringify((r.lead.events ?? []).map((e) => [e.type, e.event ?? e.properties?.path ?? e.groupId, e.userId ?? null]))}`);
}
console.log(`${results.length - failures} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
