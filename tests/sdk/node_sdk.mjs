#!/usr/bin/env node
// Round-trip test of Leadscore's Segment-compatible ingest with the REAL Segment Node SDK,
// @segment/analytics-node 3.1.0, unmodified.
//
//   npm install --prefix tests/sdk
//   node tests/sdk/node_sdk.mjs --host http://127.0.0.1:18181 --write-key wk_test --api-key ak_test
//
// The server must run with tests/sdk/sdk-model.toml. Same scenario as python_sdks.py, with a fresh
// random user id:
//   phase 1  page (anonymousId only, /pricing), identify (title), group (employees), page
//            (/pricing), track "Demo Requested", alias(previousId = the anonymousId), flushAt: 1 so
//            every call is its own request (in flight concurrently, so arrival order is not call
//            order) -> closeAndFlush -> poll GET /api/leads/{id}: total 70, stage sql, fit 30,
//            engagement 40, the four rules with exact points/matched, the account, the title, and
//            the stitched anonymous page view among the lead's events;
//   phase 2  a new client resends the track and the anonymous page view with the SAME messageIds
//            (what a retry does) plus a new /pricing/enterprise page view as a marker ->
//            closeAndFlush -> poll until the marker is visible: total 75 (only the marker counted);
//   phase 3  a client with a wrong write key gets a 401 (delivery failure, not retried).
// Exit status: 0 pass, 1 fail, 77 skipped (SDK not installed).

import { parseArgs } from 'node:util'
import { randomUUID } from 'node:crypto'

const SKIP = 77
const POLL_MS = 10_000
const WANT_VERSION = '3.1.0'

const EXPECTED_RULES = {
  // rule: [dimension, points, matched]
  'Title: VP': ['fit', 20, 1],
  'Account: 100+ employees': ['fit', 10, 1],
  'Demo requested': ['engagement', 30, 1],
  'Pricing page': ['engagement', 10, 2], // 1 identified + 1 anonymous view stitched by alias
}
const EXPECTED_PHASE1 = { total: 70, stage: 'sql', scores: { fit: 30, engagement: 40 } }
const EXPECTED_RULES_PHASE2 = { ...EXPECTED_RULES, 'Pricing page': ['engagement', 15, 3] }
const EXPECTED_PHASE2 = { total: 75, stage: 'sql', scores: { fit: 30, engagement: 45 } }

class Failure extends Error {}

const { values: args } = parseArgs({
  options: {
    host: { type: 'string' },
    'write-key': { type: 'string' },
    'api-key': { type: 'string' },
  },
})
for (const k of ['host', 'write-key', 'api-key']) {
  if (!args[k]) {
    console.error(`usage: node tests/sdk/node_sdk.mjs --host http://127.0.0.1:PORT --write-key K --api-key A (missing --${k})`)
    process.exit(2)
  }
}
const HOST = args.host.replace(/\/+$/, '')
const WRITE_KEY = args['write-key']
const API_KEY = args['api-key']
const LABEL = `@segment/analytics-node ${WANT_VERSION}`

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const dump = (x) => JSON.stringify(x, null, 2)
const num = (x) => (typeof x === 'number' ? Math.round(x * 100) / 100 : x)

async function getLead(id) {
  const res = await fetch(`${HOST}/api/leads/${encodeURIComponent(id)}`, {
    headers: { Authorization: `Bearer ${API_KEY}` },
  })
  const text = await res.text()
  let body
  try {
    body = JSON.parse(text)
  } catch {
    body = text
  }
  return { status: res.status, body }
}

async function pollLead(id, done) {
  const deadline = Date.now() + POLL_MS
  for (;;) {
    const r = await getLead(id)
    if (done(r) || Date.now() >= deadline) return r
    await sleep(200)
  }
}

function summarize(body) {
  if (!body || typeof body !== 'object') return body
  const out = {}
  for (const k of ['id', 'total', 'stage', 'scores', 'traits', 'account', 'contributions', 'history']) out[k] = body[k]
  out.events = (body.events || []).map((e) => {
    const o = {}
    for (const k of ['type', 'messageId', 'userId', 'anonymousId', 'event', 'properties']) if (k in e) o[k] = e[k]
    return o
  })
  return out
}

function checkLead({ status, body }, expected, expectedRules, ctx) {
  if (status !== 200 || !body || typeof body !== 'object') {
    return [`GET /api/leads/${ctx.userId} answered ${status}, expected 200`]
  }
  const problems = []
  if (num(body.total) !== expected.total) problems.push(`total: expected ${expected.total}, got ${JSON.stringify(body.total)}`)
  if (body.stage !== expected.stage) problems.push(`stage: expected ${expected.stage}, got ${JSON.stringify(body.stage)}`)
  const scores = Object.fromEntries(Object.entries(body.scores || {}).map(([k, v]) => [k, num(v)]))
  const sameScores =
    Object.keys(scores).length === Object.keys(expected.scores).length &&
    Object.entries(expected.scores).every(([k, v]) => scores[k] === v)
  if (!sameScores) problems.push(`scores: expected ${JSON.stringify(expected.scores)}, got ${JSON.stringify(body.scores)}`)

  const traits = body.traits || {}
  if (traits.title !== ctx.title) problems.push(`traits.title: expected ${ctx.title}, got ${JSON.stringify(traits.title)}`)
  const account = body.account
  if (!account || account.id !== ctx.groupId) {
    problems.push(`account.id: expected ${ctx.groupId}, got account ${JSON.stringify(account)}`)
  } else if (num((account.traits || {}).employees) !== ctx.employees) {
    problems.push(`account.traits.employees: expected ${ctx.employees}, got ${JSON.stringify(account.traits)}`)
  }

  const got = {}
  for (const c of body.contributions || []) {
    if (c.rule in got) problems.push(`rule ${c.rule} reported twice in contributions`)
    got[c.rule] = [c.dimension, num(c.points), c.matched]
  }
  const gotNames = Object.keys(got).sort()
  const wantNames = Object.keys(expectedRules).sort()
  if (JSON.stringify(gotNames) !== JSON.stringify(wantNames)) {
    problems.push(`contribution rules: expected ${JSON.stringify(wantNames)}, got ${JSON.stringify(gotNames)}`)
  }
  for (const [name, want] of Object.entries(expectedRules)) {
    if (name in got && JSON.stringify(got[name]) !== JSON.stringify(want)) {
      problems.push(`contribution ${name} [dimension, points, matched]: expected ${JSON.stringify(want)}, got ${JSON.stringify(got[name])}`)
    }
  }

  const ids = (body.events || []).map((e) => e.messageId)
  for (const [mid, what] of [
    [ctx.anonPageMid, 'the stitched anonymous page view'],
    [ctx.trackMid, 'the track'],
  ]) {
    const n = ids.filter((x) => x === mid).length
    if (n !== 1) problems.push(`${what} (messageId ${mid}) appears ${n} times in the lead's events, expected once`)
  }
  const dups = [...new Set(ids.filter((m, i) => m != null && ids.indexOf(m) !== i))]
  if (dups.length) problems.push(`duplicate messageIds in events: ${JSON.stringify(dups)}`)

  const history = body.history || []
  if (!history.length) {
    problems.push(`history is empty, expected at least the change to ${expected.stage}`)
  } else {
    // by time, not by string: the fraction has a variable number of digits (.43Z vs .435Z)
    const latest = [...history].sort((a, b) => Date.parse(a.at) - Date.parse(b.at)).at(-1)
    if (latest.stage !== expected.stage) problems.push(`latest history entry: expected stage ${expected.stage}, got ${JSON.stringify(latest)}`)
  }
  return problems
}

// One SDK client that records every delivery failure and every HTTP status it saw.
function makeClient(Analytics, writeKey) {
  const analytics = new Analytics({
    writeKey,
    host: HOST,
    path: '/v1/batch',
    flushAt: 1,
    maxRetries: 2, // a broken server fails in seconds, not minutes
  })
  const errors = []
  const statuses = []
  analytics.on('error', (e) => errors.push({ code: e.code, reason: String(e.reason?.message ?? e.reason), type: e.ctx?.event?.type }))
  analytics.on('http_response', (r) => statuses.push(r.status))
  // Every call goes through here: the SDK callback tells whether that message was delivered.
  const pending = []
  const call = (method, params) =>
    pending.push(
      new Promise((resolve) => {
        analytics[method](params, (err) => {
          if (err) errors.push({ method, messageId: params.messageId, reason: String(err?.message ?? err) })
          resolve()
        })
      }),
    )
  const close = async (what) => {
    let timer
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Failure(`${what}: closeAndFlush() did not finish within 60 s`)), 60_000)
    })
    try {
      await Promise.race([analytics.closeAndFlush({ timeout: 55_000 }).then(() => Promise.all(pending)), timeout])
    } finally {
      clearTimeout(timer)
    }
  }
  return { analytics, errors, statuses, call, close }
}

async function checkServer() {
  let res
  try {
    res = await fetch(`${HOST}/healthz`)
  } catch (e) {
    throw new Failure(`server not reachable at ${HOST}: ${e.cause?.message ?? e.message}`)
  }
  if (res.status !== 200) throw new Failure(`GET /healthz answered ${res.status}`)
  const r = await getLead(`sdk-test-no-such-lead-${randomUUID()}`)
  if (r.status === 401) throw new Failure(`the API key is rejected (401): ${dump(r.body)}`)
  if (r.status !== 404) throw new Failure(`GET /api/leads/<unknown> answered ${r.status}, expected 404: ${dump(r.body)}`)
}

async function run(Analytics) {
  const suffix = randomUUID().replace(/-/g, '').slice(0, 10)
  const ctx = {
    userId: `sdk-node-segment-${suffix}`,
    anonId: `anon-node-segment-${suffix}`,
    groupId: `acct-node-segment-${suffix}`,
    title: 'VP Sales',
    employees: 250,
    anonPageMid: randomUUID(),
    trackMid: randomUUID(),
    markerMid: randomUUID(),
  }
  const { userId, anonId } = ctx

  const before = await getLead(userId)
  if (before.status !== 404) throw new Failure(`before sending, GET /api/leads/${userId} answered ${before.status} (expected 404)`)

  // ---- phase 1: the scenario
  const c1 = makeClient(Analytics, WRITE_KEY)
  if (c1.analytics.VERSION !== WANT_VERSION) {
    throw new Failure(`installed version is ${c1.analytics.VERSION}, the test is written for ${WANT_VERSION} (npm install --prefix tests/sdk)`)
  }
  c1.call('page', { anonymousId: anonId, name: 'Pricing', properties: { path: '/pricing', url: 'https://example.com/pricing' }, messageId: ctx.anonPageMid })
  await sleep(50) // the stitched view must be older than the alias by the SDK's own timestamps
  c1.call('identify', { userId, traits: { title: ctx.title, email: `${userId}@example.com`, first_name: 'Sam' } })
  c1.call('group', { userId, groupId: ctx.groupId, traits: { name: `Acme ${suffix}`, employees: ctx.employees } })
  c1.call('page', { userId, name: 'Pricing', properties: { path: '/pricing', url: 'https://example.com/pricing' } })
  c1.call('track', { userId, event: 'Demo Requested', properties: { plan: 'enterprise' }, messageId: ctx.trackMid })
  c1.call('alias', { userId, previousId: anonId })
  await c1.close('phase 1')
  if (c1.errors.length) throw new Failure(`the SDK reported delivery failures: ${dump(c1.errors)} (HTTP statuses seen: ${c1.statuses})`)
  if (!c1.statuses.length || c1.statuses.some((s) => s !== 200)) {
    throw new Failure(`expected only 200 answers to the SDK's requests, saw ${JSON.stringify(c1.statuses)}`)
  }

  let r = await pollLead(userId, (x) => checkLead(x, EXPECTED_PHASE1, EXPECTED_RULES, ctx).length === 0)
  let problems = checkLead(r, EXPECTED_PHASE1, EXPECTED_RULES, ctx)
  if (problems.length) {
    throw new Failure(
      `phase 1 (scenario) after ${POLL_MS / 1000}s of polling:\n  - ${problems.join('\n  - ')}\n` +
        `expected: ${dump({ ...EXPECTED_PHASE1, rules: EXPECTED_RULES })}\nactual: ${dump(summarize(r.body))}`,
    )
  }

  // ---- phase 2: a retry resends messages with the same messageId; they must count once
  const c2 = makeClient(Analytics, WRITE_KEY)
  c2.call('track', { userId, event: 'Demo Requested', properties: { plan: 'enterprise' }, messageId: ctx.trackMid })
  c2.call('page', { anonymousId: anonId, name: 'Pricing', properties: { path: '/pricing', url: 'https://example.com/pricing' }, messageId: ctx.anonPageMid })
  c2.call('page', { userId, name: 'Enterprise pricing', properties: { path: '/pricing/enterprise' }, messageId: ctx.markerMid })
  await c2.close('phase 2')
  if (c2.errors.length) throw new Failure(`the SDK reported delivery failures on the resend: ${dump(c2.errors)} (HTTP statuses: ${c2.statuses})`)
  if (c2.statuses.some((s) => s !== 200)) throw new Failure(`resend: expected only 200 answers, saw ${JSON.stringify(c2.statuses)}`)

  const markerSeen = (x) => x.status === 200 && (x.body.events || []).some((e) => e.messageId === ctx.markerMid)
  r = await pollLead(userId, markerSeen)
  if (!markerSeen(r)) {
    throw new Failure(`phase 2: the marker page view (messageId ${ctx.markerMid}) never showed up in the lead's events within ${POLL_MS / 1000}s: ${dump(summarize(r.body))}`)
  }
  problems = checkLead(r, EXPECTED_PHASE2, EXPECTED_RULES_PHASE2, ctx)
  if (problems.length) {
    throw new Failure(
      `phase 2 (same messageIds resent: must count once):\n  - ${problems.join('\n  - ')}\n` +
        `expected: ${dump({ ...EXPECTED_PHASE2, rules: EXPECTED_RULES_PHASE2 })}\nactual: ${dump(summarize(r.body))}`,
    )
  }

  // ---- phase 3: a wrong write key -> 401, a delivery failure the SDK does not retry
  const badUser = `sdk-node-segment-badkey-${suffix}`
  const c3 = makeClient(Analytics, `wk_wrong_${suffix}`)
  const started = Date.now()
  c3.call('track', { userId: badUser, event: 'Demo Requested' })
  await c3.close('phase 3')
  const took = (Date.now() - started) / 1000
  if (JSON.stringify(c3.statuses) !== '[401]') {
    throw new Failure(`wrong write key: expected exactly one HTTP 401 (not retried), saw statuses ${JSON.stringify(c3.statuses)}`)
  }
  if (!c3.errors.length) throw new Failure('wrong write key: the SDK reported no delivery failure')
  if (took > 5) throw new Failure(`wrong write key: took ${took.toFixed(1)} s, i.e. it retried; 401 must not be retried`)
  const bad = await getLead(badUser)
  if (bad.status !== 404) throw new Failure(`wrong write key: the event was stored anyway: GET /api/leads/${badUser} -> ${bad.status}`)

  return ctx
}

async function main() {
  let Analytics
  try {
    ;({ Analytics } = await import('@segment/analytics-node'))
  } catch (e) {
    console.log(`skipped: ${LABEL} not installed (npm install --prefix tests/sdk): ${e.code ?? e.message}`)
    return SKIP
  }
  try {
    await checkServer()
    const ctx = await run(Analytics)
    console.log(
      `PASS ${LABEL}: lead ${ctx.userId} total 70 -> 75 stage sql; VP title, account employees, demo, 2 pricing views ` +
        '(1 stitched by alias); resent messageIds counted once; wrong write key -> 401',
    )
    return 0
  } catch (e) {
    if (e instanceof Failure) console.log(`FAIL ${LABEL}: ${e.message}`)
    else console.log(`FAIL ${LABEL}: unexpected ${e?.stack ?? e}`)
    return 1
  }
}

process.exit(await main())
