#!/usr/bin/env node
// The MCP gateway end to end (issue 18): real MCP servers from npm (server-filesystem,
// mcp-server-commands) driven by the SDK's stdio client (agent.mjs) through `writ run --mcp`, under a
// real writd in enforce mode, and a raw client that sends what no SDK would. Asserts the client's
// answers, `writ run`'s exit status and the JSONL events (tool_call, tool_list, approval_request,
// kernel events naming the call, the self finding of a forged report).
//
//   node mcp_gateway_e2e.mjs --writd BIN --writ BIN [--only NAME]
//
// Exit 0 = all passed, 1 = a failure (each printed), 77 = skipped (printed reason: not root, or npm
// cannot reach the registry for the pinned servers). Every wait is bounded.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SRC = path.resolve(HERE, '../../..');
const argv = process.argv.slice(2);
const opt = (k) => { const i = argv.indexOf(`--${k}`); return i >= 0 ? argv[i + 1] : undefined; };
const WRITD = path.resolve(opt('writd') ?? `${SRC}/build/bin/writd`);
const WRIT = path.resolve(opt('writ') ?? `${SRC}/build/bin/writ`);
const ONLY = opt('only');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function skip(why) { console.log(`SKIP: ${why}`); process.exit(77); }

if (process.getuid() !== 0) skip('needs root (writd loads BPF programs and creates cgroups)');
for (const b of [WRITD, WRIT]) if (!fs.existsSync(b)) skip(`${b} is not built`);
{
  const stamp = path.join(HERE, 'node_modules/.package-lock.json');
  const lock = path.join(HERE, 'package-lock.json');
  if (!fs.existsSync(stamp) || fs.statSync(stamp).mtimeMs < fs.statSync(lock).mtimeMs) {
    const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: HERE, encoding: 'utf8', timeout: 240000 });
    if (r.status !== 0) {
      const ping = spawnSync('npm', ['ping'], { encoding: 'utf8', timeout: 20000 });
      if (ping.status !== 0) skip(`npm cannot reach the registry: ${ping.stderr.trim()}`);
      throw new Error(`npm ci failed:\n${r.stdout}\n${r.stderr}`);
    }
  }
}

// ---- fixture: one writd of our own, agents as writ-agent ---------------------------------------------
const AGENT_USER = 'writ-agent';
for (const c of ['getent group writ >/dev/null || groupadd --system writ',
                 `getent passwd ${AGENT_USER} >/dev/null || useradd --system --no-create-home ` +
                 `--home-dir /nonexistent --shell /usr/sbin/nologin --groups writ ${AGENT_USER}`]) {
  execFileSync('sh', ['-c', c]);
}
const TMP = fs.mkdtempSync('/tmp/writ-mcp-');
fs.chmodSync(TMP, 0o755);
const RUN = `${TMP}/run`, EVENTS = `${TMP}/events.jsonl`, SUBTREE = `writ-e2e-mcp-${process.pid}`;
const DOCS = `${TMP}/docs`, OTHER = `${TMP}/other`, REPO = `${TMP}/repo`, POLICIES = `${TMP}/policies`;
for (const d of [DOCS, OTHER, REPO, POLICIES]) fs.mkdirSync(d, { recursive: true });
fs.writeFileSync(`${DOCS}/a.txt`, 'hello from docs\n');
fs.writeFileSync(`${DOCS}/e.txt`, 'one two\n');
fs.writeFileSync(`${OTHER}/b.txt`, 'outside the root\n');
// The forged report a process inside the task sends to writd (control protocol by hand: a 4-byte
// little-endian length, then writ.v1.Request{tool_call: {task_id, phase: "start", name}}).
fs.writeFileSync(`${REPO}/forge.cjs`, `
const [task, sock] = process.argv.slice(2);
const str = (tag, s) => { const b = Buffer.from(s); return Buffer.concat([Buffer.from([tag, b.length]), b]); };
const inner = Buffer.concat([str(0x0a, task), str(0x12, 'start'), str(0x22, 'write_file')]);
const req = Buffer.concat([Buffer.from([0x62, inner.length]), inner]);
const len = Buffer.alloc(4); len.writeUInt32LE(req.length);
const c = require('net').connect(sock, () => c.write(Buffer.concat([len, req])));
c.on('data', (d) => { console.log('answer ' + d.subarray(4).toString('latin1').replace(/[^ -~]/g, '.')); c.end(); });
c.on('error', (e) => console.log('error ' + e.code));
`);
execFileSync('chown', ['-R', `${AGENT_USER}:`, DOCS, OTHER, REPO]);
for (const f of fs.readdirSync(`${SRC}/policies`)) {
  if (f !== 'writd.yaml' && f !== 'workloads.yaml') fs.copyFileSync(`${SRC}/policies/${f}`, `${POLICIES}/${f}`);
}
// mcp-filesystem with tools: no moves or new directories, reads and writes only under ${root} (by
// argument, before the kernel ever sees a path), edits only with a human's approval.
const fsIntent = fs.readFileSync(`${SRC}/policies/mcp-filesystem.yaml`, 'utf8')
  .replace('name: mcp-filesystem', 'name: mcp-gw-fs').replace(/\ntests:[\s\S]*$/, '\n').replace(/\ntools:\n(  .*\n)+/, '\n') + `
tools:
  deny: [move_file, "create_*"]
  arguments:
    - {tool: "read_*", pointer: /path, path: "\${root}/**"}
    - {tool: write_file, pointer: /path, path: "\${root}/**"}
  approval:
    - {tool: edit_file, timeout: 60s}
`;
fs.writeFileSync(`${POLICIES}/mcp-gw-fs.yaml`, fsIntent);
// mcp-coding-agent whose run_command may not write anywhere but /dev/null while it runs (tools.during).
fs.writeFileSync(`${POLICIES}/mcp-gw-cmd.yaml`, fs.readFileSync(`${SRC}/policies/mcp-coding-agent.yaml`, 'utf8')
  .replace('name: mcp-coding-agent', 'name: mcp-gw-cmd').replace(/\ntests:[\s\S]*$/, '\n') + `
tools:
  during:
    - {tool: run_command, files: {write: [/dev/null, /dev/tty]}}
`);
fs.writeFileSync(`${TMP}/writd.yaml`, ['mode: enforce', `policies: ${POLICIES}`, `state_dir: ${TMP}/state`,
  `run_dir: ${RUN}`, `events: ${EVENTS}`, 'trust_domain: example.org', `cgroup_subtree: ${SUBTREE}`,
  'control: {group: writ}', `sinks:\n  - {type: file, path: ${TMP}/ocsf.jsonl, format: ocsf}`, ''].join('\n'));
const writdLog = fs.openSync(`${TMP}/writd.log`, 'w');
const writd = spawn(WRITD, ['--config', `${TMP}/writd.yaml`], { stdio: ['ignore', writdLog, writdLog] });
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
const NM = `${HERE}/node_modules`;
const FS_SERVER = ['node', `${NM}/@modelcontextprotocol/server-filesystem/dist/index.js`];
const CMD_SERVER = ['node', `${NM}/mcp-server-commands/build/index.js`];
const AGENT = 'spiffe://example.org/agent/coder';

const events = () => (fs.existsSync(EVENTS) ? fs.readFileSync(EVENTS, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);
const ofTask = (id) => events().filter((e) => e.agent?.task_id === id);
async function waitFor(what, pred, ms = 10000) {
  for (const end = Date.now() + ms; ;) {
    const v = pred();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}
const writ = (...a) => spawnSync(WRIT, a, { env: ENV, encoding: 'utf8', timeout: 20000 });
const taskEnd = (id) => waitFor(`task_end of ${id}`, () => ofTask(id).find((e) => e.kind === 'task_end'), 15000);
const toolCalls = (id, name) => ofTask(id).filter((e) => e.kind === 'tool_call' && (!name || e.tool?.name === name));

function runArgs({ intent, params }) {
  const a = ['run', '--mcp', '--user', AGENT_USER, '--agent', AGENT, '--principal', 'user:alice@example.org', '--intent', intent];
  for (const [k, v] of Object.entries(params)) a.push('--param', `${k}=${v}`);
  return a;
}
// agent.mjs through `writ run --mcp`; resolves {steps, exit, task}.
function runAgent({ intent, params, server, steps, onLine }) {
  const child = spawn('node', [`${HERE}/agent.mjs`, JSON.stringify(steps), '--', WRIT, ...runArgs({ intent, params }), '--', ...server],
                      { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  let buf = '', err = '';
  const lines = [];
  child.stdout.on('data', (d) => {
    buf += d;
    for (let i; (i = buf.indexOf('\n')) >= 0; buf = buf.slice(i + 1)) {
      const l = JSON.parse(buf.slice(0, i));
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
      resolve({ steps: lines.filter((l) => l.step !== undefined), exit: last.exit, task: last.task, stderr: err });
    });
  });
}
const fsParams = { root: DOCS, server: NM };
const cmdParams = { repo: REPO, server: NM, writ: WRIT };

class Check {
  constructor() { this.failures = []; }
  ok(cond, msg) { if (!cond) this.failures.push(msg); return cond; }
  eq(a, b, msg) { return this.ok(JSON.stringify(a) === JSON.stringify(b), `${msg}: got ${JSON.stringify(a)}, want ${JSON.stringify(b)}`); }
}

const scenarios = {
  // An allowed call: its tool_call event, and the kernel's open of the file names the call.
  // tools/list: the denied tools are not shown.
  async 'allowed-call-correlated-and-list-filtered'(c) {
    const r = await runAgent({ intent: 'mcp-gw-fs', params: fsParams, server: [...FS_SERVER, DOCS], steps: [
      { list_tools: true }, { call: 'read_text_file', args: { path: `${DOCS}/a.txt` } }] });
    c.ok(r.steps[0]?.tools?.includes('read_text_file'), `tools: ${JSON.stringify(r.steps[0])}`);
    c.ok(!r.steps[0]?.tools?.includes('move_file') && !r.steps[0]?.tools?.includes('create_directory'),
         `denied tools listed: ${JSON.stringify(r.steps[0]?.tools)}`);
    c.eq(r.steps[1]?.text, 'hello from docs\n', 'read');
    c.eq(r.exit, 0, 'writ run exit status');
    await taskEnd(r.task);
    const list = ofTask(r.task).find((e) => e.kind === 'tool_list');
    c.ok(list?.tool?.hidden?.includes('move_file') && list.tool.hidden.includes('create_directory'), `tool_list: ${JSON.stringify(list?.tool)}`);
    const call = await waitFor('tool_call read_text_file', () => toolCalls(r.task, 'read_text_file')[0]);
    c.eq([call.tool.status, call.tool.violations ?? 0, call.verdict], ['ok', 0, 'allow'], 'tool_call status, violations, verdict');
    c.ok(call.tool.arguments.includes('a.txt') && call.tool.arguments_sha256?.length === 64, `arguments: ${JSON.stringify(call.tool)}`);
    c.ok(call.agent?.spiffe_id === AGENT && call.agent?.chain?.[0] === 'user:alice@example.org', `identity: ${JSON.stringify(call.agent)}`);
    const open = ofTask(r.task).find((e) => e.kind === 'open' && e.file?.path === `${DOCS}/a.txt`);
    c.ok(open, 'no open event of a.txt');
    if (open) c.eq([open.tool?.name, open.tool?.call_id, open.tool?.in_flight], ['read_text_file', call.tool.call_id, 1], 'open names the call');
  },

  // A denied tool called anyway, and argument constraints (outside the root, and through ".."): refused
  // by the gateway before the server sees them; the server lives on.
  async 'denied-tool-and-argument-constraints'(c) {
    const r = await runAgent({ intent: 'mcp-gw-fs', params: fsParams, server: [...FS_SERVER, DOCS, OTHER], steps: [
      { call: 'move_file', args: { source: `${DOCS}/a.txt`, destination: `${DOCS}/z.txt` } },
      { call: 'read_text_file', args: { path: `${OTHER}/b.txt` } },
      { call: 'read_text_file', args: { path: `${DOCS}/../other/b.txt` } },
      { call: 'read_text_file', args: { path: `${DOCS}/a.txt` } }] });
    c.ok(!r.steps[0]?.ok && /denied/.test(r.steps[0]?.error), `move_file: ${JSON.stringify(r.steps[0])}`);
    c.ok(fs.existsSync(`${DOCS}/a.txt`) && !fs.existsSync(`${DOCS}/z.txt`), 'the file was moved');
    c.ok(!r.steps[1]?.ok && /not a path under/.test(r.steps[1]?.error), `outside: ${JSON.stringify(r.steps[1])}`);
    c.ok(!r.steps[2]?.ok && /not a path under/.test(r.steps[2]?.error), `dot-dot: ${JSON.stringify(r.steps[2])}`);
    c.eq(r.steps[3]?.text, 'hello from docs\n', 'an allowed read after the refusals');
    c.eq(r.exit, 0, 'writ run exit status');
    await taskEnd(r.task);
    const denied = toolCalls(r.task).filter((e) => e.tool.status === 'denied').map((e) => e.finding?.rule);
    c.eq(denied, ['mcp-gw-fs/tools.deny[0]', 'mcp-gw-fs/tools.arguments[0]', 'mcp-gw-fs/tools.arguments[0]'], 'denied calls');
    c.ok(!ofTask(r.task).some((e) => e.kind === 'open' && e.file?.path === `${OTHER}/b.txt`), 'the server opened b.txt');
  },

  // edit_file needs approval: one held call approved (it runs), one denied (the client gets an error).
  async 'held-calls-approved-and-denied'(c) {
    let decided = 0;
    const decide = (async () => {
      for (let n = 0; n < 2; n++) {
        const ar = await waitFor('approval_request', () => events().filter((e) => e.kind === 'approval_request' && e.tool?.name === 'edit_file')[n], 20000);
        const d = writ(n === 0 ? 'approve' : 'deny', ar.approval.id);
        if (d.status !== 0) throw new Error(`writ ${n ? 'deny' : 'approve'}: ${d.stderr}`);
        decided++;
      }
    })();
    const edit = (o, n) => ({ call: 'edit_file', args: { path: `${DOCS}/e.txt`, edits: [{ oldText: o, newText: n }] }, timeout_ms: 30000 });
    const r = await runAgent({ intent: 'mcp-gw-fs', params: fsParams, server: [...FS_SERVER, DOCS], steps: [edit('one', 'ONE'), edit('two', 'TWO')] });
    await decide;
    c.eq(decided, 2, 'decisions');
    c.ok(r.steps[0]?.ok, `approved edit: ${JSON.stringify(r.steps[0])}`);
    c.ok(!r.steps[1]?.ok && /denied/.test(r.steps[1]?.error), `denied edit: ${JSON.stringify(r.steps[1])}`);
    c.eq(fs.readFileSync(`${DOCS}/e.txt`, 'utf8'), 'ONE two\n', 'file after one approved and one denied edit');
    await taskEnd(r.task);
    const calls = toolCalls(r.task, 'edit_file').map((e) => e.tool.status);
    c.eq(calls.sort(), ['denied', 'ok'], 'edit_file tool_call statuses');
    const ar = events().filter((e) => e.kind === 'approval_request' && e.agent?.task_id === r.task);
    c.ok(ar.length === 2 && ar.every((e) => e.approval.action.startsWith('tool_call edit_file') && e.approval.action_hash.length === 64),
         `approval requests: ${JSON.stringify(ar.map((e) => e.approval))}`);
    c.ok(ar.length === 2 && ar[0].approval.action_hash !== ar[1].approval.action_hash, 'both calls bound to the same hash');
  },

  // The server's own syscalls violate the intent during a call: the violation names the call, the call
  // reports it, the server is killed (kill response) and the client gets an error, not a hang.
  async 'kernel-violation-names-the-call'(c) {
    const r = await runAgent({ intent: 'mcp-gw-fs', params: fsParams, server: [...FS_SERVER, DOCS, OTHER], steps: [
      { call: 'list_directory', args: { path: OTHER } }] });
    c.ok(!r.steps[0]?.ok, `list_directory outside the root succeeded: ${JSON.stringify(r.steps[0])}`);
    c.eq(r.exit, 137, 'writ run exit status (the server was killed)');
    await taskEnd(r.task);
    const v = ofTask(r.task).find((e) => e.verdict === 'violation' && e.kind === 'open');
    if (c.ok(v, 'no violating open')) c.eq([v.tool?.name, v.tool?.in_flight], ['list_directory', 1], 'the violation names the call');
    const call = await waitFor('tool_call list_directory', () => toolCalls(r.task, 'list_directory')[0]);
    c.ok(call.tool.violations >= 1 && call.tool.violation_ids?.includes(v?.id), `tool_call: ${JSON.stringify(call.tool)}`);
    c.ok(['server_exited', 'error'].includes(call.tool.status), `status ${call.tool.status}`);
  },

  // tools.during: the command tool may not write while it runs. A write by its shell is a violation of
  // that rule, named after the call, and the task's responses run (kill).
  async 'during-a-call-narrower-rules'(c) {
    const r = await runAgent({ intent: 'mcp-gw-cmd', params: cmdParams, server: CMD_SERVER, steps: [
      { call: 'run_command', args: { command: 'echo fine' } },
      { call: 'run_command', args: { command: `echo x > ${REPO}/out.txt` } }] });
    c.ok(r.steps[0]?.ok, `a call that writes nothing: ${JSON.stringify(r.steps[0])}`);
    c.ok(!r.steps[1]?.ok, `the writing call succeeded: ${JSON.stringify(r.steps[1])}`);
    c.eq(r.exit, 137, 'writ run exit status');
    await taskEnd(r.task);
    const v = ofTask(r.task).find((e) => e.verdict === 'violation' && e.kind === 'open' && e.file?.path === `${REPO}/out.txt`);
    if (c.ok(v, `no violation for the write; violations: ${JSON.stringify(ofTask(r.task).filter((e) => e.verdict === 'violation').map((e) => e.finding?.rule))}`)) {
      c.eq(v.finding.rule, 'mcp-gw-cmd/tools.during[0]/files.write.default', 'rule');
      c.eq(v.tool?.name, 'run_command', 'the violation names the call');
    }
    const calls = await waitFor('two tool_calls', () => toolCalls(r.task, 'run_command').length === 2 && toolCalls(r.task, 'run_command'));
    c.ok(calls.some((e) => e.tool.violations >= 1), `no call reports the violation: ${JSON.stringify(calls.map((e) => e.tool))}`);
  },

  // Two calls at once: events while both are in flight say so rather than guess.
  async 'concurrent-calls'(c) {
    const r = await runAgent({ intent: 'mcp-coding-agent', params: cmdParams, server: CMD_SERVER, steps: [
      { parallel: [{ call: 'run_command', args: { command: 'sleep 1; echo a' } }, { call: 'run_command', args: { command: 'sleep 1; echo b' } }] }] });
    c.ok(r.steps[0]?.results?.every((x) => x.ok), `results: ${JSON.stringify(r.steps[0])}`);
    c.eq(r.exit, 0, 'writ run exit status');
    await taskEnd(r.task);
    const calls = await waitFor('two tool_calls', () => toolCalls(r.task, 'run_command').length === 2 && toolCalls(r.task, 'run_command'));
    c.eq(calls.map((e) => e.tool.status), ['ok', 'ok'], 'statuses');
    const sleeps = ofTask(r.task).filter((e) => e.kind === 'exec' && e.process?.exe === '/usr/bin/sleep');
    c.eq(sleeps.length, 2, 'sleep execs');
    const both = sleeps.filter((e) => e.tool?.in_flight === 2);
    c.ok(both.length >= 1, `no exec seen with both calls in flight: ${JSON.stringify(sleeps.map((e) => e.tool))}`);
    c.ok(both.every((e) => !e.tool.name && e.tool.call_ids?.length === 2), `a guess among overlapping calls: ${JSON.stringify(both.map((e) => e.tool))}`);
  },

  // What no SDK sends: garbage, invalid UTF-8, nesting, a line over the cap, a reused id, a half
  // message. Each is answered and counted, none forwarded, and the gateway keeps working.
  async 'bad-input-from-the-client'(c) {
    const child = spawn(WRIT, [...runArgs({ intent: 'mcp-gw-fs', params: fsParams }).slice(0, 1), '--mcp-max-message', '65536',
                               ...runArgs({ intent: 'mcp-gw-fs', params: fsParams }).slice(1), '--', ...FS_SERVER, DOCS],
                        { env: ENV, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const answers = () => out.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const send = (s) => child.stdin.write(s);
    send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }) + '\n');
    await waitFor('initialize answer', () => answers().find((a) => a.id === 1), 15000);
    send('{"jsonrpc":"2.0","method":"notifications/initialized"}\n');
    send('this is not json\n');
    send(Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":2,"method":"ping","params":{"x":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}}\n')]));
    send('{"jsonrpc":"2.0","id":3,"method":"ping","params":' + '['.repeat(200) + ']'.repeat(200) + '}\n');
    send('{"jsonrpc":"2.0","id":4,"method":"ping","params":{"pad":"' + 'x'.repeat(200000) + '"}}\n');
    send('{"jsonrpc":"2.0","id":5,"method":"tools/list"}\n{"jsonrpc":"2.0","id":5,"method":"tools/list"}\n');
    send('{"jsonrpc":"1.0","id":6,"method":"ping"}\n');
    await waitFor('answers', () => answers().filter((a) => a.id === 5).length === 2 && answers().length >= 8, 15000);
    send(JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'read_text_file', arguments: { path: `${DOCS}/a.txt` } } }) + '\n');
    await waitFor('the call after the garbage', () => answers().find((a) => a.id === 7), 15000);
    send('{"jsonrpc":"2.0","id":8,"meth');  // half a message, then EOF
    child.stdin.end();
    const exit = await new Promise((res) => child.on('exit', (code) => res(code)));
    const a = answers();
    const codes = a.filter((x) => x.error).map((x) => x.error.code);
    c.eq(codes.filter((x) => x === -32700).length, 3, `parse errors (garbage, invalid UTF-8, half message) in ${JSON.stringify(a.map((x) => x.error ?? x.id))}`);
    c.ok(a.some((x) => x.error?.code === -32600 && /nested deeper/.test(x.error.message)), 'no error for deep nesting');
    c.ok(a.some((x) => x.error?.code === -32600 && /larger than 65536/.test(x.error.message)), 'no error for the oversize line');
    c.ok(a.some((x) => x.id === 5 && /already in flight/.test(x.error?.message ?? '')), 'no error for the reused id');
    c.ok(a.some((x) => x.id === 5 && x.result?.tools), 'the first tools/list was not answered');
    c.ok(a.some((x) => x.id === 6 && x.error?.code === -32600), 'jsonrpc 1.0 not refused');
    c.ok(a.some((x) => x.id === 7 && x.result?.content?.[0]?.text === 'hello from docs\n'), `call after garbage: ${JSON.stringify(a.find((x) => x.id === 7))}`);
    c.eq(exit, 0, 'writ run exit status');
    c.ok(/3 parse errors, 1 oversize, 1 invalid, 1 too deep, 1 duplicate ids/.test(err), `counters on stderr: ${err}`);
  },

  // The server dies in the middle of a call: the client gets an error for it, the call says so.
  async 'server-crashes-mid-call'(c) {
    const r = await runAgent({ intent: 'mcp-coding-agent', params: cmdParams, server: CMD_SERVER, steps: [
      { call: 'run_command', args: { command: 'kill -9 $PPID; sleep 5' } }] });
    c.ok(!r.steps[0]?.ok && /ended before answering|closed|Connection/.test(r.steps[0]?.error ?? ''), `call: ${JSON.stringify(r.steps[0])}`);
    c.eq(r.exit, 137, 'writ run exit status');
    await taskEnd(r.task);
    const call = await waitFor('tool_call', () => toolCalls(r.task, 'run_command')[0]);
    c.eq(call.tool.status, 'server_exited', 'tool_call status');
  },

  // The agent against its own writ: the server forges a tool-call report to writd. Refused, reported as
  // a self finding, and the task's responses run (kill).
  async 'forged-report-from-inside-the-task'(c) {
    const r = await runAgent({ intent: 'mcp-coding-agent', params: cmdParams, server: CMD_SERVER, steps: [
      { call: 'run_command', args: { command: `node ${REPO}/forge.cjs \${TASK} ${RUN}/writd.sock` } },
      { sleep_ms: 1000 }, { call: 'run_command', args: { command: 'echo still-here' } }] });
    await taskEnd(r.task);
    const self = ofTask(r.task).find((e) => e.kind === 'self' && e.finding?.rule === 'writ/self.control.tool_call');
    c.ok(self, `no self finding; events: ${JSON.stringify(ofTask(r.task).filter((e) => e.verdict === 'violation').map((e) => e.finding?.rule))}`);
    c.ok(!r.steps[2]?.ok, `the task survived its forged report: ${JSON.stringify(r.steps[2])}`);
    c.ok(!toolCalls(r.task, 'write_file').length, 'the forged call was recorded');
  },
};

let failed = 0, ran = 0;
const t0 = Date.now();
try {
  for (const [name, fn] of Object.entries(scenarios)) {
    if (ONLY && !name.includes(ONLY)) continue;
    ran++;
    const c = new Check();
    const t = Date.now();
    try { await fn(c); } catch (e) { c.failures.push(`threw: ${e.stack ?? e}`); }
    if (c.failures.length) {
      failed++;
      console.log(`FAIL ${name} (${Date.now() - t} ms)\n  - ${c.failures.join('\n  - ')}`);
    } else {
      console.log(`ok   ${name} (${Date.now() - t} ms)`);
    }
  }
  if (!ran) { failed++; console.log(`FAIL no scenario matches --only ${ONLY}`); }
  // writd's own count of what the gateways reported (writ status, as root: an admin).
  if (ran > 3) {
    const st = writ('status').stdout;
    const n = (k) => Number(new RegExp(`\\b${k}=(\\d+)`).exec(st)?.[1] ?? -1);
    if (n('tool_calls') > 0 && n('tool_calls_denied') > 0 && n('tool_reports_refused') >= (ONLY ? 0 : 1)) {
      console.log(`ok   status counters (tool_calls=${n('tool_calls')} denied=${n('tool_calls_denied')} held=${n('tool_calls_held')} refused=${n('tool_reports_refused')})`);
    } else {
      failed++;
      console.log(`FAIL status counters:\n${st}`);
    }
  }
} finally {
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
console.log(`${failed ? 'FAILED' : 'PASSED'}: ${failed} failed, ${ran} ran, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
process.exit(failed ? 1 : 0);
