#!/usr/bin/env node
// Real agents end to end: real MCP tool servers from npm (server-filesystem, mcp-server-commands)
// driven by the SDK's stdio client (agent.mjs) through `writ run`, under a real writd in enforce mode.
// Each scenario asserts the agent's tool results, `writ run`'s exit status, and the JSONL events
// (verdicts, outcomes, findings, actions, task_end reasons); credentials through /introspect.
//
//   node agents_e2e.mjs --writd BIN --writ BIN [--only NAME] [--sanitized]
//
// --sanitized (CTest passes it in a tree built with WRIT_SANITIZE): writ carries a sanitizer runtime.
// Where the scenarios start writ inside a task it runs with leak detection off (LeakSanitizer's exit
// check PTRACE_ATTACHes the process, which the task's seccomp filter refuses: a self-protection finding
// that kills the task; ASan and UBSan still check it), and writd loads the intents with the runtime's
// two start-up reads added (sanitizer_policies.mjs), a last check making sure only writ used them.
// Exit 0 = all passed, 1 = a failure (each printed), 77 = skipped (printed reason: not root, or npm
// cannot reach the registry for the pinned tool servers). Every wait is bounded.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { foreignSanitizerReads, writeSanitizerPolicies } from './sanitizer_policies.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SRC = path.resolve(HERE, '../../..');
const argv = process.argv.slice(2);
const opt = (k) => { const i = argv.indexOf(`--${k}`); return i >= 0 ? argv[i + 1] : undefined; };
const WRITD = path.resolve(opt('writd') ?? `${SRC}/build/bin/writd`);
const WRIT = path.resolve(opt('writ') ?? `${SRC}/build/bin/writ`);
const ONLY = opt('only');
const SANITIZED = argv.includes('--sanitized');
const SKIP = 77;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function skip(why) { console.log(`SKIP: ${why}`); process.exit(SKIP); }

// ---- prerequisites ---------------------------------------------------------------------------------
if (process.getuid() !== 0) skip('needs root (writd loads BPF programs and creates cgroups)');
for (const b of [WRITD, WRIT]) if (!fs.existsSync(b)) skip(`${b} is not built`);

function ensureNodeModules() {
  const stamp = path.join(HERE, 'node_modules/.package-lock.json');
  const lock = path.join(HERE, 'package-lock.json');
  if (fs.existsSync(stamp) && fs.statSync(stamp).mtimeMs >= fs.statSync(lock).mtimeMs) return;
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: HERE, encoding: 'utf8', timeout: 240000 });
  if (r.status !== 0) {
    const ping = spawnSync('npm', ['ping'], { encoding: 'utf8', timeout: 20000 });
    if (ping.status !== 0) skip(`npm cannot reach the registry to install the pinned MCP servers: ${ping.stderr.trim()}`);
    throw new Error(`npm ci failed:\n${r.stdout}\n${r.stderr}`);
  }
}
ensureNodeModules();

// ---- fixture: one writd of our own -------------------------------------------------------------
// Agents run unprivileged, as users run them: as AGENT_USER, a member of the control group `writ`
// (an operator launching agents as themselves; tests/testlib/writd_fixture's EnsureTestUsers).
const AGENT_USER = 'writ-agent';
for (const c of ['getent group writ >/dev/null || groupadd --system writ',
                 `getent passwd ${AGENT_USER} >/dev/null || useradd --system --no-create-home ` +
                 `--home-dir /nonexistent --shell /usr/sbin/nologin --groups writ ${AGENT_USER}`]) {
  execFileSync('sh', ['-c', c]);
}
const TMP = fs.mkdtempSync('/tmp/writ-agents-');
fs.chmodSync(TMP, 0o755);
const RUN = `${TMP}/run`;
const EVENTS = `${TMP}/events.jsonl`;
const SUBTREE = `writ-e2e-agents-${process.pid}`;
// The shipped intents, or (sanitizer builds) their copy with the runtime's start-up reads.
let POLICIES = `${SRC}/policies`;
if (SANITIZED) {
  POLICIES = `${TMP}/policies`;
  writeSanitizerPolicies(`${SRC}/policies`, POLICIES);
}
// A port the kernel says is free now (bound to 0, then released), not one derived from the pid, which
// collides with whatever else happens to listen there.
const HTTP_PORT = await new Promise((resolve, reject) => {
  const probe = net.createServer();
  probe.once('error', reject);
  probe.listen(0, '127.0.0.1', () => { const { port } = probe.address(); probe.close(() => resolve(port)); });
});
fs.writeFileSync(`${TMP}/writd.yaml`, [
  'mode: enforce', `policies: ${POLICIES}`, `state_dir: ${TMP}/state`, `run_dir: ${RUN}`,
  `events: ${EVENTS}`, 'trust_domain: example.org', `cgroup_subtree: ${SUBTREE}`,
  'control: {group: writ}',
  `sinks:\n  - {type: file, path: ${TMP}/ocsf.jsonl, format: ocsf}`, ''].join('\n'));
const writdLog = fs.openSync(`${TMP}/writd.log`, 'w');
const writd = spawn(WRITD, ['--config', `${TMP}/writd.yaml`, '--http', `127.0.0.1:${HTTP_PORT}`],
                    { stdio: ['ignore', writdLog, writdLog] });
let cgroupRoot = '';
for (let i = 0; i < 100 && !cgroupRoot; i++) {
  await sleep(100);
  const m = /cgroups under (\S+),/.exec(fs.readFileSync(`${TMP}/writd.log`, 'utf8'));
  if (m && fs.existsSync(`${RUN}/writd.sock`)) cgroupRoot = m[1];
  if (writd.exitCode !== null) break;
}
if (!cgroupRoot) {
  console.log(fs.readFileSync(`${TMP}/writd.log`, 'utf8'));
  throw new Error('writd did not start within 10 s');
}
const ENV = { ...process.env, WRIT_SOCKET: `${RUN}/writd.sock` };

// Scenario data: a git repository with a Makefile and a local bare remote, a fake HOME with an SSH
// key, a .env outside the repo, a directory for the filesystem server.
const REPO = `${TMP}/repo`, HOME = `${TMP}/home`, OTHER = `${TMP}/other`, DOCS = `${TMP}/docs`;
for (const d of [REPO, `${HOME}/.ssh`, OTHER, DOCS]) fs.mkdirSync(d, { recursive: true });
fs.writeFileSync(`${HOME}/.ssh/id_ed25519`, '-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n');
fs.writeFileSync(`${OTHER}/.env`, 'API_KEY=sk-fake\n');
fs.writeFileSync(`${DOCS}/a.txt`, 'hello from docs\n');
fs.writeFileSync(`${REPO}/Makefile`, 'out.txt: in.txt\n\tcat in.txt > out.txt\n');
fs.writeFileSync(`${REPO}/in.txt`, 'data\n');
const git = (...a) => execFileSync('git', a, { cwd: REPO, encoding: 'utf8', env: { ...process.env, HOME } });
git('init', '-q', '-b', 'main');
git('add', '.');
git('-c', 'user.email=a@example.org', '-c', 'user.name=a', 'commit', '-qm', 'init');
execFileSync('git', ['init', '-q', '--bare', `${TMP}/remote.git`]);
git('remote', 'add', 'origin', `${TMP}/remote.git`);
// The scenario data is the agent user's, as a user's repository and home are.
execFileSync('chown', ['-R', `${AGENT_USER}:`, REPO, HOME, OTHER, DOCS, `${TMP}/remote.git`]);

const NM = `${HERE}/node_modules`;
const FS_SERVER = `${NM}/@modelcontextprotocol/server-filesystem/dist/index.js`;
const CMD_SERVER = `${NM}/mcp-server-commands/build/index.js`;
const AGENT = 'spiffe://example.org/agent/coder';
// writ as a tool call's shell starts it inside the task: in a sanitizer build without LeakSanitizer,
// as tests/testlib/writd_fixture's WritInTaskArgv does (a prefix assignment: no extra exec to judge).
const shq = (s) => `'${s.replaceAll("'", "'\\''")}'`;
const WRIT_IN_TASK = SANITIZED
  ? `ASAN_OPTIONS=${shq([process.env.ASAN_OPTIONS, 'detect_leaks=0'].filter(Boolean).join(':'))} ${WRIT}`
  : WRIT;

// ---- helpers ---------------------------------------------------------------------------------------
function events() {
  if (!fs.existsSync(EVENTS)) return [];
  return fs.readFileSync(EVENTS, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}
const ofTask = (id) => events().filter((e) => e.agent?.task_id === id);
async function waitFor(what, pred, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = pred();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}
function writ(...a) {
  return spawnSync(WRIT, a, { env: ENV, encoding: 'utf8', timeout: 20000 });
}

// Runs agent.mjs: `writ run <runArgs> -- <server...>` with `steps`; onLine sees each result line as it
// arrives (to act while the agent waits). Resolves {steps: [...], exit, signal, task}.
function runAgent({ intent, params = {}, ttl, server, steps, onLine, env = {}, agentId = AGENT }) {
  const runArgs = ['run', '--user', AGENT_USER, '--agent', agentId, '--principal', 'user:alice@example.org',
                   '--intent', intent];
  for (const [k, v] of Object.entries(params)) runArgs.push('--param', `${k}=${v}`);
  if (ttl) runArgs.push('--ttl', ttl);
  const child = spawn('node', [`${HERE}/agent.mjs`, JSON.stringify(steps), '--', WRIT, ...runArgs, '--', ...server],
                      { env: { ...ENV, HOME, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let buf = '', err = '';
  const lines = [];
  child.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const l = JSON.parse(buf.slice(0, i));
      buf = buf.slice(i + 1);
      lines.push(l);
      if (onLine) Promise.resolve(onLine(l)).catch((e) => { child.onLineError = e; });
    }
  });
  child.stderr.on('data', (d) => { err += d; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`agent timed out; stderr:\n${err}`)); }, 90000);
    child.on('exit', () => {
      clearTimeout(timer);
      if (child.onLineError) return reject(child.onLineError);
      const last = lines.at(-1) ?? {};
      resolve({ steps: lines.filter((l) => l.step !== undefined), exit: last.exit, signal: last.signal,
                task: last.task, stderr: err });
    });
  });
}
const fsServer = (...dirs) => ['node', FS_SERVER, ...dirs];
const cmdServer = () => ['node', CMD_SERVER];
const fsParams = (root) => ({ root, server: NM });
const cmdParams = () => ({ repo: REPO, remote: `${TMP}/remote.git`, server: NM, writ: WRIT });
const svidStep = { call: 'run_command', args: { command: `${WRIT_IN_TASK} svid --audience x` } };

async function introspect(token) {
  const r = await fetch(`http://127.0.0.1:${HTTP_PORT}/introspect`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `token=${encodeURIComponent(token)}`, signal: AbortSignal.timeout(5000),
  });
  return r.json();
}

class Check {
  constructor(name) { this.name = name; this.failures = []; }
  ok(cond, msg) { if (!cond) this.failures.push(msg); return cond; }
  eq(a, b, msg) { return this.ok(JSON.stringify(a) === JSON.stringify(b), `${msg}: got ${JSON.stringify(a)}, want ${JSON.stringify(b)}`); }
}
const taskEnd = (id) => waitFor(`task_end of ${id}`, () => ofTask(id).find((e) => e.kind === 'task_end'), 15000);
const violations = (id) => ofTask(id).filter((e) => e.verdict === 'violation');
const actions = (id, type) => ofTask(id).filter((e) => e.kind === 'action' && e.action?.type === type);

// A killed-for-reading scenario: the violating open, its finding, the kill and the revocation.
// enforcement, when given: who stopped the read ('kernel-signal' = killed at open exit by the kernel's
// file table, before the process could use the fd).
async function expectKilledRead(c, r, file, rule, enforcement) {
  c.eq(r.exit, 137, 'writ run exit status (SIGKILL)');
  const end = await taskEnd(r.task);
  const v = violations(r.task).find((e) => e.kind === 'open' && e.file?.path === file);
  if (c.ok(v, `no violation event for open ${file}; violations: ${JSON.stringify(violations(r.task).map((e) => e.file?.path))}`)) {
    c.eq(v.finding?.rule, rule, 'finding rule');
    c.ok(['killed_after', 'prevented', 'killed'].includes(v.outcome), `outcome ${v.outcome}`);
    if (enforcement) c.eq(v.enforcement, enforcement, 'enforcement');
    c.ok(v.finding?.frameworks?.includes('OWASP-ASI02'), `finding not tagged: ${JSON.stringify(v.finding)}`);
  }
  c.ok(actions(r.task, 'kill').length > 0, 'no kill action');
  c.ok(actions(r.task, 'revoke').length > 0, 'no revoke action');
  c.eq(end.task?.reason, 'killed', 'task_end reason');
}

// ---- scenarios -----------------------------------------------------------------------------------
const scenarios = {
  async 'filesystem-in-scope'(c) {
    const r = await runAgent({ intent: 'mcp-filesystem', params: fsParams(DOCS), server: fsServer(DOCS), steps: [
      { call: 'list_directory', args: { path: DOCS } },
      { call: 'read_text_file', args: { path: `${DOCS}/a.txt` } },
      { call: 'write_file', args: { path: `${DOCS}/b.txt`, content: 'written by the agent\n' } },
    ] });
    c.ok(r.steps[0]?.ok && r.steps[0].text.includes('a.txt'), `list: ${JSON.stringify(r.steps[0])}`);
    c.eq(r.steps[1]?.text, 'hello from docs\n', 'read');
    c.ok(r.steps[2]?.ok, `write: ${JSON.stringify(r.steps[2])}`);
    c.eq(fs.existsSync(`${DOCS}/b.txt`) && fs.readFileSync(`${DOCS}/b.txt`, 'utf8'), 'written by the agent\n', 'file content');
    c.eq(r.exit, 0, 'writ run exit status');
    const end = await taskEnd(r.task);
    c.eq(end.task?.reason, 'exited', 'task_end reason');
    c.eq(violations(r.task).map((e) => e.finding?.rule), [], 'violations');
    const ev = ofTask(r.task);
    c.ok(ev.some((e) => e.kind === 'exec' && e.process?.exe === '/usr/bin/node' && e.verdict === 'allow'), 'no allowed exec of node');
    c.ok(ev.some((e) => e.kind === 'open' && e.file?.path === `${DOCS}/a.txt` && e.verdict === 'allow'), 'no allowed read of a.txt');
    c.ok(ev.some((e) => e.kind === 'open' && e.file?.path === `${DOCS}/b.txt` && e.file.flags.includes('write') && e.verdict === 'allow'), 'no allowed write of b.txt');
  },

  async 'commands-in-scope'(c) {
    const r = await runAgent({ intent: 'mcp-coding-agent', params: cmdParams(), server: cmdServer(), steps: [
      { call: 'run_command', args: { command: 'git status --porcelain', workdir: REPO } },
      { call: 'run_command', args: { command: 'make', workdir: REPO } },
    ] });
    c.ok(r.steps[0]?.ok, `git status: ${JSON.stringify(r.steps[0])}`);
    c.ok(r.steps[1]?.ok && r.steps[1].text.includes('cat in.txt > out.txt'), `make: ${JSON.stringify(r.steps[1])}`);
    c.eq(fs.existsSync(`${REPO}/out.txt`) && fs.readFileSync(`${REPO}/out.txt`, 'utf8'), 'data\n', 'make output');
    c.eq(r.exit, 0, 'writ run exit status');
    await taskEnd(r.task);
    c.eq(violations(r.task).map((e) => `${e.finding?.rule} ${e.file?.path ?? e.process?.exe}`), [], 'violations');
    const ev = ofTask(r.task);
    for (const exe of ['/usr/bin/git', '/usr/bin/make', '/usr/bin/dash']) {
      c.ok(ev.some((e) => e.kind === 'exec' && e.process?.exe === exe && e.verdict === 'allow'), `no allowed exec of ${exe}`);
    }
  },

  // The command server fetches the task's SVID, then reads /etc/shadow: killed, revoked, tagged.
  async 'shadow-read-revokes-credentials'(c) {
    let token = '', activeBefore = null;
    const r = await runAgent({ intent: 'mcp-coding-agent', params: cmdParams(), server: cmdServer(),
      env: { SPIFFE_ENDPOINT_SOCKET: `unix:${RUN}/workload.sock` },
      // The kernel kills `cat` at once; writd then kills the whole task. The agent keeps talking (as a
      // real one would), so the follow-up call shows the server is gone and `writ run` reports it.
      steps: [svidStep, { sleep_ms: 1500 }, { call: 'run_command', args: { command: 'cat /etc/shadow' } },
              { sleep_ms: 2000 }, { call: 'run_command', args: { command: 'echo still-here' } }],
      onLine: async (l) => {
        if (l.step === 0 && l.ok) {
          token = l.text.trim();
          activeBefore = (await introspect(token)).active;
        }
      } });
    c.ok(token.split('.').length === 3, `no JWT-SVID from inside the task: ${JSON.stringify(r.steps[0])}`);
    c.eq(activeBefore, true, 'token active while the task runs');
    c.ok(!r.steps[2]?.ok && !String(r.steps[2]?.text ?? '').includes('root:'), `shadow read returned data: ${JSON.stringify(r.steps[2])}`);
    c.ok(!r.steps[4]?.ok, `server survived the violation: ${JSON.stringify(r.steps[4])}`);
    await expectKilledRead(c, r, '/etc/shadow', 'mcp-coding-agent/files.deny[0]');
    if (token) c.eq((await introspect(token)).active, false, 'token active after the violation');
  },

  // The filesystem server is (mis)configured with wider directories than the task's intent: writ,
  // not the tool, is what stops the read.
  async 'ssh-key-read-killed'(c) {
    const r = await runAgent({ intent: 'mcp-filesystem', params: fsParams(DOCS), server: fsServer(DOCS, HOME),
      steps: [{ call: 'read_text_file', args: { path: `${HOME}/.ssh/id_ed25519` } }] });
    c.ok(!r.steps[0]?.ok, `key read succeeded: ${JSON.stringify(r.steps[0])}`);
    // "**/.ssh/**" is a kernel component rule: the server is killed at open exit, before it reads.
    await expectKilledRead(c, r, `${HOME}/.ssh/id_ed25519`, 'mcp-filesystem/files.deny[2]', 'kernel-signal');
  },

  async 'dotenv-outside-root-killed'(c) {
    const r = await runAgent({ intent: 'mcp-filesystem', params: fsParams(DOCS), server: fsServer(DOCS, OTHER),
      steps: [{ call: 'read_text_file', args: { path: `${OTHER}/.env` } }] });
    c.ok(!r.steps[0]?.ok, `.env read succeeded: ${JSON.stringify(r.steps[0])}`);
    await expectKilledRead(c, r, `${OTHER}/.env`, 'mcp-filesystem/files.deny[3]', 'kernel-signal');
  },

  async 'exfiltration-connect-refused'(c) {
    let accepted = 0;
    const srv = net.createServer((s) => { accepted++; s.destroy(); });
    await new Promise((r) => srv.listen(0, '127.0.0.1', r));
    const port = srv.address().port;
    const js = `require('net').connect(${port},'127.0.0.1').on('error',e=>{console.log(e.code);process.exit(3)}).on('connect',()=>console.log('connected'))`;
    const r = await runAgent({ intent: 'mcp-coding-agent', params: cmdParams(), server: cmdServer(),
      steps: [{ call: 'run_command', args: { command: `node -e "${js}"` } }] });
    srv.close();
    c.eq(accepted, 0, 'connections the listener accepted');
    c.ok(!String(r.steps[0]?.text ?? '').includes('connected'), `connect succeeded: ${JSON.stringify(r.steps[0])}`);
    await taskEnd(r.task);
    const v = violations(r.task).find((e) => e.kind === 'connect' && e.network?.dst_port === port);
    if (c.ok(v, `no connect violation to port ${port}`)) {
      c.eq(v.outcome, 'prevented', 'connect outcome');
      c.eq(v.finding?.rule, 'mcp-coding-agent/network.connect.default', 'finding rule');
      c.eq(v.network?.result, -1, 'connect result (-EPERM)');
    }
  },

  // A tool call's shell double-forks a background process that reads a secret a second later: its
  // events carry the task id and its violation kills the task.
  async 'double-fork-still-governed'(c) {
    const r = await runAgent({ intent: 'mcp-coding-agent', params: cmdParams(), server: cmdServer(), steps: [
      { call: 'run_command', args: { command: "sh -c '(sleep 1; cat /etc/shadow) >/dev/null 2>&1 &'" } },
      { sleep_ms: 3000 },
      { call: 'run_command', args: { command: 'echo still-here' } },
    ] });
    c.ok(r.steps[0]?.ok, `background spawn: ${JSON.stringify(r.steps[0])}`);
    c.ok(!r.steps[2]?.ok, `server survived the grandchild's violation: ${JSON.stringify(r.steps[2])}`);
    await expectKilledRead(c, r, '/etc/shadow', 'mcp-coding-agent/files.deny[0]');
    const ev = ofTask(r.task);
    const catExec = ev.find((e) => e.kind === 'exec' && e.process?.exe === '/usr/bin/cat');
    const nodeExec = ev.find((e) => e.kind === 'exec' && e.process?.exe === '/usr/bin/node');
    c.ok(catExec && nodeExec && catExec.process.pid !== nodeExec.process.pid, 'grandchild exec not attributed to the task');
    c.ok(catExec && catExec.process.ppid !== nodeExec?.process.pid, 'cat was not a grandchild of the server');
  },

  async 'deadline-mid-conversation'(c) {
    let token = '';
    const r = await runAgent({ intent: 'mcp-coding-agent', params: cmdParams(), server: cmdServer(), ttl: '3s',
      env: { SPIFFE_ENDPOINT_SOCKET: `unix:${RUN}/workload.sock` },
      steps: [svidStep, { sleep_ms: 5000 }, { call: 'run_command', args: { command: 'git status', workdir: REPO } }],
      onLine: (l) => { if (l.step === 0 && l.ok) token = l.text.trim(); } });
    c.ok(!r.steps[2]?.ok, `call after the deadline succeeded: ${JSON.stringify(r.steps[2])}`);
    c.eq(r.exit, 137, 'writ run exit status');
    const end = await taskEnd(r.task);
    c.eq(end.task?.reason, 'deadline', 'task_end reason');
    c.ok(actions(r.task, 'kill').some((a) => a.action.reason === 'deadline' || JSON.stringify(a).includes('deadline')), 'no deadline kill action');
    if (c.ok(token.split('.').length === 3, 'no SVID')) c.eq((await introspect(token)).active, false, 'token active after the deadline');
  },

  async 'sub-agents'(c) {
    let parentId = '';
    const sub = `${WRIT_IN_TASK} run --parent \${TASK} --agent spiffe://example.org/agent/reader --intent mcp-repo-reader --param repo=${REPO}`;
    const r = await runAgent({ intent: 'mcp-coding-agent', params: cmdParams(), server: cmdServer(), steps: [
      { call: 'run_command', args: { command: `${sub} -- cat ${REPO}/in.txt` } },
      { call: 'run_command', args: { command: `${sub} -- sleep 60 >/dev/null 2>&1 &` } },
      { sleep_ms: 8000 },
    ], onLine: async (l) => {
      if (l.step !== 1) return;
      // The long-running sub-agent has started: kill the parent from outside; the child must end.
      parentId = await waitFor('parent task id', () => events().find((e) => e.kind === 'task_start' && e.agent?.spiffe_id === AGENT && !ofTask(e.agent.task_id).some((x) => x.kind === 'task_end'))?.agent.task_id);
      await waitFor('sub-agent start', () => events().some((e) => e.kind === 'exec' && e.agent?.parent_task === parentId && e.process?.exe === '/usr/bin/sleep'));
      const k = writ('kill', parentId);
      if (k.status !== 0) throw new Error(`writ kill: ${k.stderr}`);
    } });
    c.ok(r.steps[0]?.ok && r.steps[0].text.includes('data'), `sub-agent read: ${JSON.stringify(r.steps[0])}`);
    const children = events().filter((e) => e.kind === 'task_start' && e.agent?.parent_task === r.task);
    c.eq(children.length, 2, 'sub-agent tasks started');
    for (const s of children) {
      c.eq(s.agent.chain, ['user:alice@example.org', AGENT, 'spiffe://example.org/agent/reader'], 'sub-agent chain');
    }
    const execs = events().filter((e) => e.kind === 'exec' && e.agent?.parent_task === r.task);
    c.ok(execs.some((e) => e.process?.exe === '/usr/bin/cat') && execs.every((e) => e.agent.chain?.length === 3), 'sub-agent events lack parent_task/chain');
    c.eq(r.exit, 137, 'parent writ run exit status after writ kill');
    const last = children.at(-1);
    if (last) {
      const end = await taskEnd(last.agent.task_id);
      c.ok(end, 'sub-agent did not end');
      c.ok(actions(last.agent.task_id, 'kill').some((a) => JSON.stringify(a).includes(`parent task ${r.task}`)), 'sub-agent not killed with its parent');
    }
  },

  // Asking writd for a sub-agent with more authority than the task has is using writd against its own
  // writ: refused, nothing starts, and it is a self finding that runs the task's responses (kill).
  async 'wider-sub-agent-refused-and-reported'(c) {
    const r = await runAgent({ intent: 'mcp-coding-agent', params: cmdParams(), server: cmdServer(), steps: [
      { call: 'run_command', args: { command: `${WRIT_IN_TASK} run --parent \${TASK} --agent spiffe://example.org/agent/wide --intent data-analyst --param dataset=${REPO} -- cat ${REPO}/in.txt; echo exit=$?` } },
      { sleep_ms: 1500 },
      { call: 'run_command', args: { command: 'git status', workdir: REPO } },
    ] });
    c.eq(r.exit, 137, 'writ run exit status (SIGKILL)');
    c.ok(!r.steps[2]?.ok, `the task kept running: ${JSON.stringify(r.steps[2])}`);
    c.eq(events().filter((e) => e.kind === 'task_start' && e.agent?.parent_task === r.task).length, 0,
         'sub-agent tasks started');
    const self = await waitFor('self finding', () => ofTask(r.task).find((e) => e.kind === 'self'));
    c.eq(self.finding?.rule, 'writ/self.control.create_task', 'finding rule');
    c.ok(String(self.finding?.reason).includes('is not allowed by parent intent mcp-coding-agent'), `finding reason: ${self.finding?.reason}`);
    c.ok(self.finding?.frameworks?.includes('OWASP-ASI03'), 'ASI03 tag');
  },
};

// git push needs a human: poll `writ approvals` while the agent waits, then approve or deny it.
scenarios['git-push-approved'] = async (c) => push(c, true);
scenarios['git-push-denied'] = async (c) => push(c, false);
async function push(c, approve) {
  execFileSync('git', ['--git-dir', `${TMP}/remote.git`, 'update-ref', '-d', 'refs/heads/main'], { stdio: 'ignore' });
  const agent = runAgent({ intent: 'mcp-coding-agent', params: cmdParams(), server: cmdServer(), steps: [
    { call: 'run_command', args: { command: 'git push origin main', workdir: REPO }, timeout_ms: 40000 },
    { sleep_ms: 1500 },  // the agent keeps going: after a denial its server is gone
    { call: 'run_command', args: { command: 'git log --oneline -1', workdir: REPO } },
  ] });
  const id = await waitFor('a pending approval', () => {
    const l = writ('approvals');
    return /^(ap-[0-9a-f]+) /m.exec(l.stdout)?.[1];
  }, 20000);
  const d = writ(approve ? 'approve' : 'deny', id);
  c.eq(d.status, 0, `writ ${approve ? 'approve' : 'deny'} ${id}: ${d.stderr}`);
  const r = await agent;
  const ev = ofTask(r.task);
  c.ok(ev.some((e) => e.kind === 'exec' && e.verdict === 'needs_approval' && e.finding?.rule === 'mcp-coding-agent/approval[0]'),
       'no needs_approval exec event');
  const pushed = spawnSync('git', ['--git-dir', `${TMP}/remote.git`, 'rev-parse', '--verify', 'refs/heads/main'], { encoding: 'utf8' });
  if (approve) {
    c.ok(r.steps[0]?.ok, `push after approval: ${JSON.stringify(r.steps[0])}`);
    c.eq(pushed.status, 0, 'remote has main after an approved push');
    c.ok(actions(r.task, 'approve').length === 1, 'no approve action');
    c.ok(r.steps[2]?.ok, `server gone after an approved push: ${JSON.stringify(r.steps[2])}`);
    c.eq(r.exit, 0, 'writ run exit status');
  } else {
    c.ok(pushed.status !== 0, 'remote has main after a denied push');
    c.ok(actions(r.task, 'deny').length === 1, 'no deny action');
    c.ok(actions(r.task, 'kill').length > 0, 'no kill after the denial');
    c.ok(!r.steps[2]?.ok, `server survived the denial: ${JSON.stringify(r.steps[2])}`);
    c.eq(r.exit, 137, 'writ run exit status');
  }
  await taskEnd(r.task);
}

// ---- run -------------------------------------------------------------------------------------------
let failed = 0, ran = 0;
const t0 = Date.now();
try {
  for (const [name, fn] of Object.entries(scenarios)) {
    if (ONLY && !name.includes(ONLY)) continue;
    ran++;
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
  if (SANITIZED) {
    // The reads sanitizer_policies.mjs added served the sanitized writ's runtime and nothing else.
    const bad = foreignSanitizerReads(events(), WRIT);
    if (bad.length) {
      failed++;
      console.log(`FAIL sanitizer reads used by another process:\n  - ${bad.map((e) => JSON.stringify(e)).join('\n  - ')}`);
    } else {
      const own = events().filter((e) => e.process?.exe === WRIT && /^\/proc\/\d+\/(cmdline|environ)$/.test(e.file?.path ?? ''));
      console.log(`ok   sanitizer reads: only ${WRIT}, each of its own /proc/<pid> (${own.length} opens)`);
    }
  }
  // --only naming no scenario ran nothing: that is a mistake, not a pass.
  if (!ran) {
    failed++;
    console.log(`FAIL no scenario matches --only ${ONLY}`);
  }
} finally {
  writd.kill('SIGTERM');
  await Promise.race([new Promise((r) => writd.on('exit', r)), sleep(10000)]);
  if (writd.exitCode === null) writd.kill('SIGKILL');
  // writd leaves its (empty) subtree directory; ours is unique per run, so remove it.
  try { fs.rmdirSync(cgroupRoot); } catch {}
  // Pins left when writd stopped with tasks registered: never leave programs attached after a test.
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
