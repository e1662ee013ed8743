#!/usr/bin/env node
// The approvals console (issue 20, docs/console.md) end to end, in a real browser: writd in enforce mode
// with --console on loopback, Debian's chromium driven headless by playwright-core (pinned in
// package.json, `npm ci` into node_modules), real tasks started with `writ run` as an unprivileged user
// whose execs need approval, a webhook receiver and a hostile site of the test's own on loopback.
// Each scenario asserts what happened, not what a page says alone: `writ run`'s exit status, the files
// the gated exec would have made, `writ approvals`, the JSONL events (action, self, task_end), the
// webhook's payloads, writd's /metrics.
//
//   node console_e2e.mjs --writd BIN --writ BIN [--chromium BIN] [--screenshots DIR]
//
// --screenshots DIR: PNGs of the login, approvals, tasks and violations pages (docs/console/*.png were
// made with --screenshots docs/console); without it, none are written into the source tree.
// Exit 0 = all passed, 1 = a failure (each printed), 77 = skipped (printed reason: not root, no
// chromium -- scripts/setup.sh installs it --, npm cannot reach the registry). Every wait is bounded.
//
// The scenarios share one writd and one signed-in browser and run in order:
//   unauthenticated    GET /approvals and POST /decide without a session: 401, nothing decided
//   sign-in            `writ console-login` (refused to a non-admin), the link in Chromium, Sign in: the
//                      pending approval of a real task, its agent, rule and exact command, and an agent-
//                      chosen `<script>` shown as text (no dialog, no script element); the link used twice
//   cross-site         auto-submitting forms on another origin (same site: 127.0.0.1:other port; cross
//                      site: localhost) and a stolen cookie without the CSRF token: 403, still pending
//   approve            button.approve: the exec runs, `writ run` exits 0, the action event says who and
//                      from where
//   replay             the same form posted again in the browser: 409, what became of it
//   deny               a denial without a reason (400) then with one: the exec never ran, the task is
//                      killed (its intent's on_violation), the reason recorded; a right-to-left
//                      override in the path shown as \u202e; the tasks page shows the task frozen
//   not-utf8           a path ending in byte 0xff: shown as \xff, listed by `writ approvals`, denied
//   tasks-kill         the tasks page's kill button ends a running task, as the signed-in admin
//   from-a-task        curl inside a task (its intent allows the console's port): GET /approvals and a
//                      POST /decide with the admin's own cookie and token: 403, self findings, killed;
//                      the violations page shows them without a reload and filters them
//   webhook            Slack-compatible JSON for each approval request, with the console's link
//   expired-link       a login link older than console.login_ttl (10 s): 401
//   metrics            writ_console_*_total on writd's /metrics count what the scenarios did
//   sign-out           Sign out ends the session on the server, not only in the browser
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SRC = path.resolve(HERE, '../../..');
const argv = process.argv.slice(2);
const opt = (k) => { const i = argv.indexOf(`--${k}`); return i >= 0 ? argv[i + 1] : undefined; };
const WRITD = path.resolve(opt('writd') ?? `${SRC}/build/bin/writd`);
const WRIT = path.resolve(opt('writ') ?? `${SRC}/build/bin/writ`);
const CHROMIUM = opt('chromium') ?? '/usr/bin/chromium';
const SHOTS = opt('screenshots') ? path.resolve(opt('screenshots')) : '';
const SKIP = 77;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function skip(why) { console.log(`SKIP: ${why}`); process.exit(SKIP); }

// ---- prerequisites ---------------------------------------------------------------------------------
if (process.getuid() !== 0) skip('needs root (writd loads BPF programs and creates cgroups)');
for (const b of [WRITD, WRIT]) if (!fs.existsSync(b)) skip(`${b} is not built`);
if (!fs.existsSync(CHROMIUM)) skip(`${CHROMIUM} is absent (Debian's chromium: scripts/setup.sh installs it)`);

function ensureNodeModules() {
  const stamp = path.join(HERE, 'node_modules/.package-lock.json');
  const lock = path.join(HERE, 'package-lock.json');
  if (fs.existsSync(stamp) && fs.statSync(stamp).mtimeMs >= fs.statSync(lock).mtimeMs) return;
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: HERE, encoding: 'utf8', timeout: 240000 });
  if (r.status !== 0) {
    const ping = spawnSync('npm', ['ping'], { encoding: 'utf8', timeout: 20000 });
    if (ping.status !== 0) skip(`npm cannot reach the registry to install playwright-core: ${ping.stderr.trim()}`);
    throw new Error(`npm ci failed:\n${r.stdout}\n${r.stderr}`);
  }
}
ensureNodeModules();
const { chromium } = await import('playwright-core');

// ---- fixture: loopback servers, one writd of our own ---------------------------------------------
const AGENT_USER = 'writ-agent';
for (const c of ['getent group writ >/dev/null || groupadd --system writ',
                 `getent passwd ${AGENT_USER} >/dev/null || useradd --system --no-create-home ` +
                 `--home-dir /nonexistent --shell /usr/sbin/nologin --groups writ ${AGENT_USER}`]) {
  execFileSync('sh', ['-c', c]);
}
const TMP = fs.mkdtempSync('/tmp/writ-console-');
fs.chmodSync(TMP, 0o755);
const RUN = `${TMP}/run`;
const EVENTS = `${TMP}/events.jsonl`;
const SUBTREE = `writ-e2e-console-${process.pid}`;
const WORK = `${TMP}/work`;  // where the gated execs write: the agent user's
const XSS = '<script>alert(1)</script>';
fs.mkdirSync(`${WORK}/${XSS.slice(0, XSS.indexOf('/'))}`, { recursive: true });  // "<script>alert(1)<"
execFileSync('chown', ['-R', `${AGENT_USER}:`, WORK]);

// Ports the kernel says are free now (bound to 0, then released).
const freePort = () => new Promise((resolve, reject) => {
  const probe = net.createServer();
  probe.once('error', reject);
  probe.listen(0, '127.0.0.1', () => { const { port } = probe.address(); probe.close(() => resolve(port)); });
});
const CONSOLE_PORT = await freePort();
const HTTP_PORT = await freePort();
const CONSOLE = `http://127.0.0.1:${CONSOLE_PORT}`;

// The webhook receiver: what a Slack incoming webhook would get.
const hooks = [];
const hookServer = http.createServer((req, res) => {
  let body = '';
  req.on('data', (d) => { body += d; });
  req.on('end', () => {
    let json = null;
    try { json = JSON.parse(body); } catch {}
    hooks.push({ method: req.method, url: req.url, type: req.headers['content-type'], body, json });
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  });
});
await new Promise((r) => hookServer.listen(0, '127.0.0.1', r));
const HOOK = `http://127.0.0.1:${hookServer.address().port}/services/T000/B000/XXXX`;

// The hostile site: a page that posts a decision to the console as soon as it loads (its own inline
// script; the console's CSP does not apply to it). Reachable as 127.0.0.1:PORT (another origin of the
// same site) and as localhost:PORT (another site).
let evilForm = {};
const evilServer = http.createServer((req, res) => {
  const inputs = Object.entries(evilForm)
    .map(([k, v]) => `<input type="hidden" name="${k}" value="${String(v).replaceAll('"', '&quot;')}">`).join('');
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><title>free prizes</title><form id="f" method="post" action="${CONSOLE}/decide">` +
          `${inputs}</form><script>document.getElementById('f').submit()</script>`);
});
await new Promise((r) => evilServer.listen(0, '127.0.0.1', r));
const EVIL_PORT = evilServer.address().port;

// The intent: touch needs a human; bash, curl and sleep run; the only destination is the console's port
// (so, from inside a task, only writd's own check stands between curl and the console). No files:
// category: opens are not judged.
const INTENT = 'console-e2e';
fs.mkdirSync(`${TMP}/policies`);
fs.writeFileSync(`${TMP}/policies/console-e2e.yaml`, `apiVersion: writ.dev/v1
kind: Intent
name: ${INTENT}
description: Console e2e; touch needs an approval.
exec:
  allow: [/usr/bin/bash, /usr/bin/dash, /usr/bin/curl, /usr/bin/sleep, /usr/bin/touch]
network:
  connect:
    allow: [{cidr: 127.0.0.1/32, ports: [${CONSOLE_PORT}]}]
approval:
  - {exec: /usr/bin/touch, timeout: 3m}
on_violation: [alert, kill]
`);
fs.writeFileSync(`${TMP}/writd.yaml`, [
  'mode: enforce', `policies: ${TMP}/policies`, `state_dir: ${TMP}/state`, `run_dir: ${RUN}`,
  `events: ${EVENTS}`, 'trust_domain: example.org', `cgroup_subtree: ${SUBTREE}`,
  'control: {group: writ}',
  'console:', `  listen: 127.0.0.1:${CONSOLE_PORT}`, '  login_ttl: 10s',
  `  notify: {webhook: "${HOOK}", violations: true}`, ''].join('\n'));
const writdLog = fs.openSync(`${TMP}/writd.log`, 'w');
const writd = spawn(WRITD, ['--config', `${TMP}/writd.yaml`, '--http', `127.0.0.1:${HTTP_PORT}`,
                            '--console', `127.0.0.1:${CONSOLE_PORT}`],
                    { stdio: ['ignore', writdLog, writdLog] });
let cgroupRoot = '';
for (let i = 0; i < 150 && !cgroupRoot; i++) {
  await sleep(100);
  const log = fs.readFileSync(`${TMP}/writd.log`, 'utf8');
  const m = /cgroups under (\S+),/.exec(log);
  if (m && fs.existsSync(`${RUN}/writd.sock`) && log.includes('approvals console at')) cgroupRoot = m[1];
  if (writd.exitCode !== null) break;
}
if (!cgroupRoot) {
  console.log(fs.readFileSync(`${TMP}/writd.log`, 'utf8'));
  evilServer.close(); hookServer.close();
  throw new Error('writd did not start within 15 s');
}
const ENV = { ...process.env, WRIT_SOCKET: `${RUN}/writd.sock` };
const AGENT = 'spiffe://example.org/agent/console-e2e';
const PRINCIPAL = 'user:alice@example.org';

// ---- helpers ---------------------------------------------------------------------------------------
function events() {
  if (!fs.existsSync(EVENTS)) return [];
  return fs.readFileSync(EVENTS, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}
const ofTask = (id) => events().filter((e) => e.agent?.task_id === id);
async function waitFor(what, pred, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}
function writ(...a) {
  return spawnSync(WRIT, a, { env: ENV, encoding: 'utf8', timeout: 20000 });
}
const pendingIds = () => writ('approvals').stdout.split('\n').map((l) => l.split(' ')[0]).filter(Boolean);
const taskEnd = (id) => waitFor(`task_end of ${id}`, () => ofTask(id).find((e) => e.kind === 'task_end'), 15000);
const actions = (id, type) => ofTask(id).filter((e) => e.kind === 'action' && e.action?.type === type);

// `writ run` of CMD as the agent user under the test's intent. Resolves .task (the id writ run prints)
// and .done ({exit, signal, stdout, stderr}).
const children = new Set();  // `writ run`s still running when the test ends are killed
function startTask(cmd) {
  const child = spawn(WRIT, ['run', '--user', AGENT_USER, '--agent', AGENT, '--principal', PRINCIPAL,
                             '--intent', INTENT, '--', ...cmd], { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  let gotTask;
  const task = new Promise((r) => { gotTask = r; });
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => {
    err += d;
    const m = /writ: task (t-[0-9a-f]+)/.exec(err);
    if (m) gotTask(m[1]);
  });
  const done = new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 120000);
    children.add(child);
    child.on('exit', (exit, signal) => { clearTimeout(timer); children.delete(child); gotTask(null); resolve({ exit, signal, stdout: out, stderr: err }); });
  });
  return {
    done,
    task: Promise.race([task, sleep(15000).then(() => null)]).then((t) => {
      if (!t) throw new Error(`writ run printed no task id; stderr:\n${err}`);
      return t;
    }),
  };
}
// The approval a task's gated exec is waiting on: its approval_request event, and `writ approvals`.
async function pendingOf(task) {
  const ev = await waitFor(`an approval request of ${task}`,
                           () => ofTask(task).find((e) => e.kind === 'approval_request'), 15000);
  await waitFor(`approval ${ev.approval.id} in writ approvals`, () => pendingIds().includes(ev.approval.id));
  return ev;
}
async function metrics() {
  const r = await fetch(`http://127.0.0.1:${HTTP_PORT}/metrics`, { signal: AbortSignal.timeout(5000) });
  const m = {};
  for (const l of (await r.text()).split('\n')) {
    const x = /^(writ_console_\w+) (\d+)$/.exec(l);
    if (x) m[x[1]] = Number(x[2]);
  }
  return m;
}
// A request to the console from outside the browser (and outside every task).
function plain(pathname, { method = 'GET', body, headers = {} } = {}) {
  return fetch(`${CONSOLE}${pathname}`, { method, body, headers, redirect: 'manual', signal: AbortSignal.timeout(5000) })
    .then(async (r) => ({ status: r.status, headers: r.headers, body: await r.text() }));
}
const form = (o) => new URLSearchParams(o).toString();
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

class Check {
  constructor(name) { this.name = name; this.failures = []; }
  ok(cond, msg) { if (!cond) this.failures.push(msg); return cond; }
  eq(a, b, msg) { return this.ok(JSON.stringify(a) === JSON.stringify(b), `${msg}: got ${JSON.stringify(a)}, want ${JSON.stringify(b)}`); }
}
const excerpt = (s) => JSON.stringify(String(s).replace(/\s+/g, ' ').slice(0, 300));

// Submits in `page` and returns the response to that POST (the page has navigated to it).
async function submit(page, pathname, act) {
  const [resp] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === pathname && r.request().method() === 'POST', { timeout: 10000 }),
    act(),
  ]);
  await page.waitForLoadState('domcontentloaded');
  return resp;
}
const messageOf = (page) => page.locator('#message').textContent({ timeout: 5000 }).catch(() => null);
async function shot(page, name) {
  if (!SHOTS) return;
  fs.mkdirSync(SHOTS, { recursive: true });
  // The page as tall as its content (at least 320 px), 1280 wide.
  const height = await page.evaluate(() => Math.ceil(document.querySelector('main').getBoundingClientRect().bottom));
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true,
                          clip: { x: 0, y: 0, width: 1280, height: Math.max(320, Math.min(height + 16, 1600)) } });
}

// ---- the browser -----------------------------------------------------------------------------------
// Root needs --no-sandbox; nothing else is changed from a stock Chromium.
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light' });
ctx.setDefaultTimeout(10000);
const dialogs = [];  // any alert/confirm/prompt a page opened: none may
ctx.on('page', (p) => p.on('dialog', (d) => { dialogs.push(`${d.type()}: ${d.message()}`); d.dismiss().catch(() => {}); }));
const page = await ctx.newPage();

// Shared state, in scenario order.
const S = {};
// A login link taken now, to be tried after console.login_ttl (10 s) has passed.
const early = writ('console-login');
S.earlyLink = early.stdout.trim();

// Task A: touches a path holding `<script>alert(1)</script>`; waits for a human.
const taskA = startTask(['bash', '-c', 'touch "$1"', '_', `${WORK}/${XSS}`]);

// ---- scenarios -----------------------------------------------------------------------------------
const scenarios = {
  async unauthenticated(c) {
    S.A = await taskA.task;
    S.reqA = await pendingOf(S.A);
    const id = S.reqA.approval.id;
    const g = await plain('/approvals');
    c.eq(g.status, 401, `GET /approvals without a session (body ${excerpt(g.body)})`);
    c.ok(g.body.includes('writ console-login'), `401 page does not say how to sign in: ${excerpt(g.body)}`);
    c.ok(!g.body.includes(id), 'the 401 page shows the pending approval');
    for (const p of ['/approval?id=' + id, '/violations', '/tasks']) {
      const r = await plain(p);
      c.eq(r.status, 401, `GET ${p} without a session`);
    }
    const decide = form({ id, decision: 'approve', scope: 'task', action_hash: S.reqA.approval.action_hash ?? '', csrf: 'x' });
    const p1 = await plain('/decide', { method: 'POST', body: decide, headers: FORM });
    c.ok([401, 403].includes(p1.status), `POST /decide without a cookie: ${p1.status} ${excerpt(p1.body)}`);
    const p2 = await plain('/decide', { method: 'POST', body: decide, headers: { ...FORM, cookie: `writ_console=${'0'.repeat(64)}` } });
    c.ok([401, 403].includes(p2.status), `POST /decide with a forged cookie: ${p2.status} ${excerpt(p2.body)}`);
    const p3 = await plain('/decide', { method: 'POST', body: JSON.stringify({ id, decision: 'approve' }), headers: { 'content-type': 'application/json' } });
    c.eq(p3.status, 403, `POST /decide as JSON: ${excerpt(p3.body)}`);
    c.ok(g.headers.get('content-security-policy')?.includes("script-src 'self'"), `CSP: ${g.headers.get('content-security-policy')}`);
    c.eq(g.headers.get('x-frame-options'), 'DENY', 'X-Frame-Options');
    await sleep(300);
    c.ok(pendingIds().includes(id), 'the approval is no longer pending');
    c.eq(actions(S.A, 'approve').length + actions(S.A, 'deny').length, 0, 'decisions recorded');
    c.ok(!fs.existsSync(`${WORK}/${XSS}`), 'the gated exec ran');
  },

  async 'sign-in'(c) {
    // Only an admin gets a link: writ-agent is in the control group `writ`, not an admin.
    const na = spawnSync('runuser', ['-u', AGENT_USER, '--', WRIT, 'console-login'], { env: ENV, encoding: 'utf8', timeout: 20000 });
    c.ok(na.status !== 0 && !na.stdout.includes('token='), `writ console-login as ${AGENT_USER}: exit ${na.status}, ${excerpt(na.stdout + na.stderr)}`);
    const l = writ('console-login');
    c.eq(l.status, 0, `writ console-login: ${l.stderr}`);
    S.link = l.stdout.trim();
    if (!c.ok(new RegExp(`^http://127\\.0\\.0\\.1:${CONSOLE_PORT}/login\\?token=[0-9a-f]{64}$`).test(S.link), `link ${S.link}`)) return;
    c.ok(/root/.test(l.stderr), `console-login's note does not name the admin: ${l.stderr}`);
    const resp = await page.goto(S.link);
    c.eq(resp.status(), 200, 'GET /login');
    await shot(page, 'login');
    const r = await submit(page, '/login', () => page.click('#signin'));
    if (!c.eq(r.status(), 303, 'POST /login')) {
      const h = await r.request().allHeaders();
      c.ok(false, `POST /login sent origin ${h.origin}, sec-fetch-site ${h['sec-fetch-site']}, content-type ${h['content-type']}; answer ${excerpt(await r.text())}`);
    }
    await page.waitForURL(`${CONSOLE}/approvals`, { timeout: 5000 });
    const cookie = (await ctx.cookies(CONSOLE)).find((k) => k.name === 'writ_console');
    if (c.ok(cookie, 'no writ_console cookie')) {
      c.ok(cookie.httpOnly, 'cookie not HttpOnly');
      c.eq(cookie.sameSite, 'Strict', 'cookie SameSite');
      S.cookie = cookie.value;
    }
    S.csrf = await page.locator('nav input[name=csrf]').getAttribute('value').catch(() => null);
    const id = S.reqA.approval.id;
    const art = page.locator(`article.approval[data-id="${id}"]`);
    c.eq(await art.count(), 1, `approval ${id} on the page`);
    const text = await art.textContent();
    c.eq((await art.locator('.agent').textContent()).trim(), AGENT, 'agent');
    const chain = await art.locator('.chain').textContent();
    c.ok(chain.includes(PRINCIPAL), `principal chain: ${chain}`);
    c.ok((await art.locator('.rule').textContent()).includes(`${INTENT}/approval[0]`), 'rule');
    c.ok(/^\d+ s$/.test((await art.locator('time.left').textContent()).trim()), 'time left');
    c.ok(text.includes(INTENT) && text.includes('enforce mode'), 'intent and mode');
    const exact = (await art.locator('.exact code').textContent()).trim();
    c.eq(exact, S.reqA.approval.action, 'the exact request');
    c.ok(exact.includes('/usr/bin/touch') || exact.includes('touch'), `exact: ${exact}`);
    c.ok(exact.includes(`${WORK}/${XSS}`), `the command's path is not shown whole: ${exact}`);
    const args = await art.locator('ol.args li').allTextContents();
    c.eq(args.at(-1), `${WORK}/${XSS}`, 'argv shown');
    // The agent's <script> is text: in textContent as written, escaped in the markup, never an element.
    c.ok(text.includes(XSS), 'the <script> text is not shown as text');
    c.ok((await art.innerHTML()).includes('&lt;script&gt;alert(1)&lt;/script&gt;'), 'markup not escaped');
    const scripts = await page.evaluate(() => [...document.scripts].map((s) => s.src || s.textContent));
    c.eq(scripts, [`${CONSOLE}/console.js`], 'script elements on the page');
    const history = await art.locator('table.history').textContent();
    // The last 12 events of the task, the stopped exec among them.
    const rowsH = await art.locator('table.history tr').count();
    c.ok(rowsH >= 1 && rowsH <= 12 && history.includes(`exec /usr/bin/touch ${WORK}/${XSS}`), `the task's last events: ${rowsH} rows, ${excerpt(history)}`);
    c.eq((await page.locator('#pending').textContent()).trim(), String(pendingIds().length), 'pending count');
    await sleep(2500);  // a refresh of the list (console.js, every 2 s) renders it as text too
    c.eq(await page.locator(`article.approval[data-id="${id}"] script`).count(), 0, 'script element after a refresh');
    c.eq(dialogs, [], 'dialogs opened');
    await shot(page, 'approvals');
    // The link signed in once: used again (another browser profile), refused.
    const other = await browser.newContext();
    const p2 = await other.newPage();
    await p2.goto(S.link);
    const again = await submit(p2, '/login', () => p2.click('#signin'));
    c.eq(again.status(), 401, 'the link used a second time');
    c.ok(String(await messageOf(p2)).includes('used already'), `second use: ${await messageOf(p2)}`);
    c.eq((await other.cookies()).length, 0, 'a cookie from the second use');
    await other.close();
  },

  async 'cross-site'(c) {
    const id = S.reqA.approval.id;
    const fields = await page.$eval(`article[data-id="${id}"] form.decide`, (f) => Object.fromEntries(new FormData(f)));
    S.fieldsA = { ...fields, decision: 'approve' };
    // The attacker knows the id and the action's hash, not the session's token.
    evilForm = { id, decision: 'approve', scope: 'task', action_hash: fields.action_hash, csrf: 'f'.repeat(64) };
    S.csrfCookieSent = {};
    for (const host of ['127.0.0.1', 'localhost']) {
      const evil = await ctx.newPage();
      const resp = await submit(evil, '/decide', () => evil.goto(`http://${host}:${EVIL_PORT}/`));
      const sent = await resp.request().allHeaders();
      S.csrfCookieSent[host] = String(sent.cookie ?? '').includes('writ_console=');
      c.eq(resp.status(), 403, `auto-submitted form from http://${host}:${EVIL_PORT} (origin ${sent.origin}, cookie ${S.csrfCookieSent[host] ? 'sent' : 'not sent'})`);
      await evil.close();
    }
    console.log(`     (cross-site: the browser sent the session cookie from 127.0.0.1:${EVIL_PORT}: ${S.csrfCookieSent['127.0.0.1']}, from localhost:${EVIL_PORT}: ${S.csrfCookieSent.localhost})`);
    // localhost is another site: SameSite=Strict keeps the cookie off.
    c.eq(S.csrfCookieSent.localhost, false, 'cookie sent on a cross-site post');
    // The stolen cookie itself, without the page's token (no Origin: not a browser): refused.
    const stolen = await plain('/decide', { method: 'POST', body: form({ ...S.fieldsA, csrf: 'f'.repeat(64) }),
                                            headers: { ...FORM, cookie: `writ_console=${S.cookie}` } });
    c.eq(stolen.status, 403, `the session's cookie without its token: ${excerpt(stolen.body)}`);
    c.ok(stolen.body.includes('token'), `403 page: ${excerpt(stolen.body)}`);
    // Nothing was decided.
    await sleep(300);
    c.ok(pendingIds().includes(id), 'the approval is no longer pending after the cross-site posts');
    c.eq(actions(S.A, 'approve').length, 0, 'approve actions');
    c.ok(!fs.existsSync(`${WORK}/${XSS}`), 'the gated exec ran');
    c.eq(dialogs, [], 'dialogs opened');
  },

  async approve(c) {
    const id = S.reqA.approval.id;
    await page.goto(`${CONSOLE}/approvals`);
    const r = await submit(page, '/decide', () => page.click(`article.approval[data-id="${id}"] button.approve`));
    c.eq(r.status(), 200, 'POST /decide (approve)');
    const msg = String(await messageOf(page));
    c.ok(msg.startsWith('Approved') && msg.includes(S.A), `message: ${msg}`);
    const res = await taskA.done;
    c.eq(res.exit, 0, `writ run exit status (stderr ${excerpt(res.stderr)})`);
    c.ok(fs.existsSync(`${WORK}/${XSS}`), 'the approved exec did not run (no file)');
    const end = await taskEnd(S.A);
    c.eq(end.task?.reason, 'exited', 'task_end reason');
    const a = actions(S.A, 'approve');
    if (c.eq(a.length, 1, 'approve actions')) {
      c.eq(a[0].approval?.id, id, 'approval id');
      c.eq(a[0].approval?.decided_by, 'root (uid 0)', 'decided_by');
      c.ok(/^console from 127\.0\.0\.1:\d+$/.test(a[0].approval?.decided_via ?? ''), `decided_via: ${a[0].approval?.decided_via}`);
      c.eq(a[0].approval?.scope, 'once', 'scope');
    }
    c.eq(ofTask(S.A).filter((e) => e.verdict === 'violation').map((e) => e.finding?.rule), [], 'violations');
  },

  async replay(c) {
    const id = S.reqA.approval.id;
    await page.goto(`${CONSOLE}/approvals`);
    c.eq(await page.locator(`article.approval[data-id="${id}"]`).count(), 0, 'the decided approval still listed');
    // The browser posts the very form it had, with its session.
    const r = await submit(page, '/decide', () => page.evaluate((fields) => {
      const f = document.createElement('form');
      f.method = 'post';
      f.action = '/decide';
      for (const [k, v] of Object.entries(fields)) {
        const i = document.createElement('input');
        i.type = 'hidden'; i.name = k; i.value = v;
        f.appendChild(i);
      }
      document.body.appendChild(f);
      f.submit();
    }, S.fieldsA));
    c.eq(r.status(), 409, 'replayed decision');
    const msg = String(await messageOf(page));
    c.ok(msg.includes('not pending') && msg.includes('approved by root (uid 0)') && msg.includes('console from 127.0.0.1:'),
         `409 message: ${msg}`);
    c.eq(actions(S.A, 'approve').length, 1, 'approve actions after the replay');
    const p = await page.goto(`${CONSOLE}/approval?id=${id}`);
    c.eq(p.status(), 404, '/approval?id= of a decided approval');
    c.ok(String(await messageOf(page)).includes('approved by'), `approval page: ${await messageOf(page)}`);
  },

  async deny(c) {
    // The path holds a right-to-left override (U+202E: "denied-<RLO>txt.exe" would read
    // "denied-exe.txt"): the console shows it escaped, \u202e, as `writ tail` prints it.
    const d = startTask(['bash', '-c', 'touch "$1"', '_', `${WORK}/denied-\u202etxt.exe`]);
    S.D = await d.task;
    S.reqD = await pendingOf(S.D);
    const id = S.reqD.approval.id;
    await page.goto(`${CONSOLE}/tasks`);
    const row = page.locator(`tr#task-${S.D}`);
    c.ok((await row.textContent().catch(() => '')).includes('frozen'), `tasks page row of ${S.D}: ${excerpt(await row.textContent().catch(() => ''))}`);
    await shot(page, 'tasks');
    await page.goto(`${CONSOLE}/approvals`);
    const art = page.locator(`article.approval[data-id="${id}"]`);
    const exact = (await art.locator('.exact code').textContent()).trim();
    c.ok(exact.includes(`${WORK}/denied-\\u202etxt.exe`) && !exact.includes('\u202e'),
         `the right-to-left override is not shown as \\u202e: ${exact}`);
    // A denial needs a reason.
    const r0 = await submit(page, '/decide', () => art.locator('button.deny').click());
    c.eq(r0.status(), 400, 'deny without a reason');
    c.ok(pendingIds().includes(id), 'denied without a reason');
    await page.goto(`${CONSOLE}/approvals`);
    const reason = 'not in the plan <b>for today</b>';
    await art.locator('input[name=reason]').fill(reason);
    const r = await submit(page, '/decide', () => art.locator('button.deny').click());
    c.eq(r.status(), 200, 'POST /decide (deny)');
    c.ok(String(await messageOf(page)).startsWith('Denied'), `message: ${await messageOf(page)}`);
    const res = await d.done;
    c.eq(res.exit, 137, `writ run exit status (the intent kills on a denial; stderr ${excerpt(res.stderr)})`);
    c.ok(!fs.existsSync(`${WORK}/denied-\u202etxt.exe`), 'the denied exec ran (its file exists)');
    c.eq(fs.readdirSync(WORK).filter((n) => n.startsWith('denied')), [], 'files the denied exec made');
    const end = await taskEnd(S.D);
    c.eq(end.task?.reason, 'killed', 'task_end reason');
    const a = actions(S.D, 'deny');
    if (c.eq(a.length, 1, 'deny actions')) {
      c.eq(a[0].approval?.reason, reason, 'the reason recorded');
      c.eq(a[0].approval?.decided_by, 'root (uid 0)', 'decided_by');
      c.ok(/^console from 127\.0\.0\.1:\d+$/.test(a[0].approval?.decided_via ?? ''), `decided_via: ${a[0].approval?.decided_via}`);
    }
    c.ok(actions(S.D, 'kill').length > 0, 'no kill action after the denial');
    c.ok(!ofTask(S.D).some((e) => e.kind === 'exec' && e.process?.exe === '/usr/bin/touch' && e.verdict === 'allow'), 'an allowed touch exec');
    c.eq(dialogs, [], 'dialogs opened');
  },

  // A path ending in a byte that is not UTF-8 (0xff): the console shows \xff, `writ approvals` lists it.
  async 'not-utf8'(c) {
    const t = startTask(['bash', '-c', `touch "$1"$'\\xff'`, '_', `${WORK}/bytes-`]);
    const task = await t.task;
    const file = Buffer.concat([Buffer.from(`${WORK}/bytes-`), Buffer.from([0xff])]);
    try {
      const ev = await waitFor(`an approval request of ${task}`, () => ofTask(task).find((e) => e.kind === 'approval_request'), 15000);
      const id = ev.approval.id;
      const l = writ('approvals');
      c.ok(l.status === 0 && l.stdout.split('\n').some((x) => x.startsWith(`${id} `)),
           `writ approvals does not list ${id}: exit ${l.status}, stdout ${excerpt(l.stdout)}, stderr ${excerpt(l.stderr)}`);
      await page.goto(`${CONSOLE}/approvals`);
      const art = page.locator(`article.approval[data-id="${id}"]`);
      if (c.eq(await art.count(), 1, `approval ${id} on the page`)) {
        const exact = (await art.locator('.exact code').textContent()).trim();
        c.ok(exact.includes(`${WORK}/bytes-\\xff`), `0xff not shown as \\xff: ${exact}`);
        await art.locator('input[name=reason]').fill('not text');
        const r = await submit(page, '/decide', () => art.locator('button.deny').click());
        c.eq(r.status(), 200, 'POST /decide (deny)');
        const res = await Promise.race([t.done, sleep(15000).then(() => ({ exit: 'still running' }))]);
        c.eq(res.exit, 137, 'writ run exit status');
        c.ok(!fs.existsSync(file), 'the denied exec ran');
        c.eq(actions(task, 'deny').map((a) => a.approval?.reason), ['not text'], 'deny actions');
      }
    } finally {
      if (!ofTask(task).some((e) => e.kind === 'task_end')) writ('kill', task);
      await Promise.race([t.done, sleep(10000)]);
    }
  },

  async 'tasks-kill'(c) {
    const k = startTask(['sleep', '120']);
    const id = await k.task;
    await waitFor('sleep running', () => ofTask(id).some((e) => e.kind === 'exec' && e.process?.exe === '/usr/bin/sleep'));
    await page.goto(`${CONSOLE}/tasks`);
    const row = page.locator(`tr#task-${id}`);
    await row.locator('input[name=reason]').fill('runaway');
    const r = await submit(page, '/task', () => row.locator('button.kill').click());
    c.eq(r.status(), 200, 'POST /task (kill)');
    c.ok(String(await messageOf(page)).includes(`kill task ${id}`), `message: ${await messageOf(page)}`);
    const res = await k.done;
    c.eq(res.exit, 137, 'writ run exit status');
    const end = await taskEnd(id);
    c.eq(end.task?.reason, 'killed', 'task_end reason');
    const kill = actions(id, 'kill')[0];
    c.ok(kill && JSON.stringify(kill).includes('runaway (by root (uid 0) via console from 127.0.0.1:'), `kill action: ${JSON.stringify(kill?.action)}`);
  },

  async 'from-a-task'(c) {
    // The violations page is open before: its list refreshes itself.
    const vpage = await ctx.newPage();
    await vpage.goto(`${CONSOLE}/violations`);
    // A pending approval the task will try to decide with the admin's own cookie and token.
    const p = startTask(['bash', '-c', 'touch "$1"', '_', `${WORK}/pending`]);
    const P = await p.task;
    const reqP = await pendingOf(P);
    // The admin's own cookie and token, as if the task had stolen them (forged ones if sign-in failed).
    if (!S.cookie || !S.csrf) console.log('     (from-a-task: no signed-in session to steal from; a forged cookie and token)');
    const fieldsP = { csrf: S.csrf ?? 'c'.repeat(64), id: reqP.approval.id, action_hash: reqP.approval.action_hash, scope: 'once' };
    const curl = ['curl', '-sS', '-m', '5', '-o', '-', '-w', '\nHTTP %{http_code}\n'];
    const read = startTask([...curl, `${CONSOLE}/approvals`]);
    const decide = startTask([...curl, '-X', 'POST', '-H', `Cookie: writ_console=${S.cookie ?? 'c'.repeat(64)}`, '-H', `Origin: ${CONSOLE}`,
                              '--data', form({ ...fieldsP, decision: 'approve' }), `${CONSOLE}/decide`]);
    for (const [t, request] of [[read, 'read'], [decide, 'decide']]) {
      const id = await t.task;
      const res = await t.done;
      c.eq(res.exit, 137, `writ run of curl (${request}) exit status; stdout ${excerpt(res.stdout)}`);
      const code = /HTTP (\d+)/.exec(res.stdout)?.[1];
      c.ok(code === undefined || code === '403', `curl (${request}) got HTTP ${code}: ${excerpt(res.stdout)}`);
      c.ok(!res.stdout.includes('article'), `curl (${request}) got a console page: ${excerpt(res.stdout)}`);
      const self = await waitFor(`self finding of ${id}`, () => ofTask(id).find((e) => e.kind === 'self'), 10000).catch(() => null);
      if (c.ok(self, `no self event for the ${request} from task ${id}`)) {
        c.eq(self.finding?.rule, `writ/self.console.${request}`, 'finding rule');
        c.eq(self.verdict, 'violation', 'verdict');
      }
      c.ok(ofTask(id).some((e) => e.kind === 'connect' && e.network?.dst_port === CONSOLE_PORT && e.verdict === 'allow'),
           `the intent did not allow the connect to the console (task ${id})`);
      c.ok(actions(id, 'kill').length > 0, `task ${id} not killed`);
      const end = await taskEnd(id);
      c.eq(end.task?.reason, 'killed', 'task_end reason');
      S[`self_${request}`] = id;
    }
    c.ok(pendingIds().includes(reqP.approval.id), 'a task decided an approval');
    c.eq(actions(P, 'approve').length, 0, 'approve actions of the targeted approval');
    const dn = writ('deny', reqP.approval.id, '--reason', 'test cleanup');
    c.eq(dn.status, 0, `writ deny: ${dn.stderr}`);
    await p.done;
    c.ok(!fs.existsSync(`${WORK}/pending`), 'the approval the task targeted ran');
    // The open violations page shows the findings without a reload.
    if (!S.cookie) return;
    const shown = await vpage.waitForFunction(() => document.querySelector('tbody#violations')?.textContent.includes('writ/self.console.decide'),
                                              null, { timeout: 8000 }).then(() => true, () => false);
    c.ok(shown, `violations page not refreshed: ${excerpt(await vpage.locator('tbody#violations').textContent())}`);
    await vpage.goto(`${CONSOLE}/violations?rule=self.console.read`);
    const rows = await vpage.locator('tbody#violations tr').allTextContents();
    c.ok(rows.length >= 1 && rows.every((r) => r.includes('writ/self.console.read')), `filtered rows: ${JSON.stringify(rows)}`);
    await vpage.goto(`${CONSOLE}/violations`);
    await shot(vpage, 'violations');
    await vpage.close();
  },

  async webhook(c) {
    for (const [task, req] of [[S.A, S.reqA], [S.D, S.reqD]]) {
      if (!req) { c.ok(false, `no approval request of ${task} (an earlier scenario failed)`); continue; }
      const id = req.approval.id;
      const h = await waitFor(`webhook for ${id}`, () => hooks.find((x) => x.json?.writ?.approval_id === id), 10000).catch(() => null);
      if (!c.ok(h, `no webhook payload for ${id}; got ${hooks.length}: ${excerpt(hooks.map((x) => x.body).join(' | '))}`)) continue;
      const url = `${CONSOLE}/approval?id=${id}`;
      c.eq(h.method, 'POST', 'method');
      c.ok(String(h.type).startsWith('application/json'), `content-type ${h.type}`);
      c.eq(h.url, '/services/T000/B000/XXXX', 'path');
      const w = h.json.writ;
      c.eq([w.kind, w.task_id, w.agent, w.rule, w.url], ['approval_request', task, AGENT, `${INTENT}/approval[0]`, url], 'writ fields');
      c.ok(!Number.isNaN(Date.parse(w.expires)), `expires ${w.expires}`);
      c.ok(typeof h.json.text === 'string' && h.json.text.includes(url), `text: ${h.json.text}`);
      const blocks = h.json.blocks ?? [];
      c.eq(blocks.map((b) => b.type), ['section', 'context', 'actions'], 'block types');
      const button = blocks[2]?.elements?.[0];
      c.eq([button?.type, button?.url], ['button', url], 'actions button');
      c.eq(blocks[0]?.text?.type, 'mrkdwn', 'section text type');
      // What the agent chose is never Slack markup: & < > escaped in every mrkdwn field (the top-level
      // text is mrkdwn too: Slack renders it in notifications and where blocks are not shown).
      if (task === S.A) {
        const sec = blocks[0]?.text?.text ?? '';
        c.ok(sec.includes('&lt;script&gt;alert(1)&lt;/script&gt;') && !sec.includes(XSS), `section text: ${sec}`);
        c.ok(!h.json.text.includes(XSS), `top-level text holds the agent's <...> unescaped: ${h.json.text}`);
      }
    }
    // violations: true: the self findings were posted too.
    const v = await waitFor('a violation webhook', () => hooks.find((x) => x.json?.writ?.kind === 'self' && x.json.writ.task_id === S.self_read), 10000).catch(() => null);
    if (c.ok(v, 'no webhook payload for the self finding')) {
      c.eq(v.json.writ.rule, 'writ/self.console.read', 'violation payload rule');
      c.ok(String(v.json.writ.url).startsWith(`${CONSOLE}/violations?task=`), `violation link ${v.json.writ.url}`);
    }
  },

  async 'expired-link'(c) {
    c.ok(/token=[0-9a-f]{64}$/.test(S.earlyLink), `early link ${S.earlyLink} (${early.stderr})`);
    const wait = S.t0 + 11000 - Date.now();
    if (wait > 0) await sleep(wait);
    const other = await browser.newContext();
    const p = await other.newPage();
    await p.goto(S.earlyLink);
    const r = await submit(p, '/login', () => p.click('#signin'));
    c.eq(r.status(), 401, 'a link older than login_ttl');
    c.ok(String(await messageOf(p)).includes('expired'), `message: ${await messageOf(p)}`);
    c.eq((await other.cookies()).length, 0, 'a cookie from an expired link');
    const unknown = await plain('/login', { method: 'POST', body: form({ token: 'a'.repeat(64) }), headers: FORM });
    c.eq(unknown.status, 401, 'an unknown login token');
    await other.close();
  },

  async metrics(c) {
    const m = await metrics();
    const want = {
      writ_console_logins_total: 1, writ_console_logins_refused_total: 3, writ_console_unauthenticated_total: 5,
      writ_console_csrf_refused_total: 4, writ_console_task_refused_total: 2, writ_console_decisions_total: 2,
      writ_console_decisions_refused_total: 2, writ_console_task_actions_total: 1, writ_console_notify_sent_total: 3,
    };
    for (const [k, v] of Object.entries(want)) c.ok((m[k] ?? -1) >= v, `${k} = ${m[k]}, want >= ${v}`);
    c.eq(m.writ_console_notify_failed_total, 0, 'notify_failed');
  },

  async 'sign-out'(c) {
    await page.goto(`${CONSOLE}/approvals`);
    const r = await submit(page, '/logout', () => page.click('nav button[type=submit]'));
    c.eq(r.status(), 200, 'POST /logout');
    const again = await page.goto(`${CONSOLE}/approvals`);
    c.eq(again.status(), 401, '/approvals after signing out');
    const old = await plain('/approvals', { headers: { cookie: `writ_console=${S.cookie}` } });
    c.eq(old.status, 401, 'the old session cookie after signing out');
  },
};

// ---- run -------------------------------------------------------------------------------------------
let failed = 0;
const t0 = Date.now();
S.t0 = t0;
try {
  for (const [name, fn] of Object.entries(scenarios)) {
    const c = new Check(name);
    const t = Date.now();
    try {
      await fn(c);
    } catch (e) {
      c.failures.push(`threw: ${e.stack ?? e}`);
    }
    const ms = Date.now() - t;
    if (c.failures.length) {
      failed++;
      console.log(`FAIL ${name} (${ms} ms)\n  - ${c.failures.join('\n  - ')}`);
    } else {
      console.log(`ok   ${name} (${ms} ms)`);
    }
  }
} finally {
  // Tasks a failed scenario left (frozen on an approval, say) end before writd does.
  for (const m of writ('status').stdout.matchAll(/^ {2}(t-[0-9a-f]+) /gm)) writ('kill', m[1]);
  for (const ch of children) ch.kill('SIGKILL');
  await browser.close().catch(() => {});
  evilServer.close();
  hookServer.close();
  writd.kill('SIGTERM');
  await Promise.race([new Promise((r) => writd.on('exit', r)), sleep(10000)]);
  if (writd.exitCode === null) writd.kill('SIGKILL');
  try { fs.rmdirSync(cgroupRoot); } catch {}
  try { fs.rmSync(`/sys/fs/bpf/${SUBTREE}`, { recursive: true, force: true }); } catch {}
  if (failed) {
    console.log(`--- writd log (${TMP}/writd.log), last lines:`);
    console.log(fs.readFileSync(`${TMP}/writd.log`, 'utf8').split('\n').slice(-30).join('\n'));
    console.log(`events kept in ${EVENTS}`);
  } else {
    fs.rmSync(TMP, { recursive: true, force: true });
  }
}
console.log(`${failed ? 'FAILED' : 'PASSED'}: ${failed} failed, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
process.exit(failed ? 1 : 0);
