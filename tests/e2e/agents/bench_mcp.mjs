#!/usr/bin/env node
// Per-call latency of an MCP tool call through `writ run --mcp` (the launcher's gateway, writd judging
// every call against an intent's tools:, the server a writ task in enforce mode) side by side with the
// same server on a direct stdio connection, in one run (docs/performance.md, "MCP gateway").
// The SDK's stdio client calls echo_server.mjs's `echo` sequentially: --calls small calls (a few
// bytes of arguments), then --big calls with a 1 MiB argument. Prints p50/p99 per call and calls/s.
//
//   node bench_mcp.mjs --writd BIN --writ BIN [--calls N] [--big N] [--rounds N]
// Root (writd). Exit 77 = cannot run here.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SRC = path.resolve(HERE, '../../..');
const argv = process.argv.slice(2);
const opt = (k, d) => { const i = argv.indexOf(`--${k}`); return i >= 0 ? argv[i + 1] : d; };
const WRITD = path.resolve(opt('writd', `${SRC}/build/bin/writd`));
const WRIT = path.resolve(opt('writ', `${SRC}/build/bin/writ`));
const CALLS = Number(opt('calls', 2000)), BIG = Number(opt('big', 50)), ROUNDS = Number(opt('rounds', 3));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
if (process.getuid() !== 0) { console.log('SKIP: needs root (writd)'); process.exit(77); }

const AGENT_USER = 'writ-agent';
execFileSync('sh', ['-c', `getent group writ >/dev/null || groupadd --system writ; getent passwd ${AGENT_USER} >/dev/null || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --groups writ ${AGENT_USER}`]);
const TMP = fs.mkdtempSync('/tmp/writ-bench-mcp-');
fs.chmodSync(TMP, 0o755);
fs.mkdirSync(`${TMP}/policies`);
fs.mkdirSync(`${TMP}/root`);
fs.writeFileSync(`${TMP}/policies/bench.yaml`, fs.readFileSync(`${SRC}/policies/mcp-filesystem.yaml`, 'utf8')
  .replace('name: mcp-filesystem', 'name: bench-mcp').replace(/\ntests:[\s\S]*$/, '\n').replace(/\ntools:\n(  .*\n)+/, '\n') + 'tools:\n  allow: [echo]\n  deny: ["write_*"]\n');
const SUBTREE = `writ-bench-mcp-${process.pid}`;
fs.writeFileSync(`${TMP}/writd.yaml`, ['mode: enforce', `policies: ${TMP}/policies`, `state_dir: ${TMP}/state`, `run_dir: ${TMP}/run`,
  `events: ${TMP}/events.jsonl`, 'trust_domain: example.org', `cgroup_subtree: ${SUBTREE}`, 'control: {group: writ}', ''].join('\n'));
const log = fs.openSync(`${TMP}/writd.log`, 'w');
const writd = spawn(WRITD, ['--config', `${TMP}/writd.yaml`], { stdio: ['ignore', log, log] });
for (let i = 0; i < 100 && !fs.existsSync(`${TMP}/run/writd.sock`); i++) await sleep(100);

const server = ['node', `${HERE}/echo_server.mjs`];
const gateway = [WRIT, 'run', '--mcp', '--user', AGENT_USER, '--agent', 'spiffe://example.org/bench', '--intent', 'bench-mcp',
                 '--param', `root=${TMP}/root`, '--param', `server=${HERE}`, '--', ...server];
const pct = (a, p) => a[Math.min(a.length - 1, Math.floor(a.length * p))];

async function measure(cmd) {
  const t = new StdioClientTransport({ command: cmd[0], args: cmd.slice(1), env: { ...process.env, WRIT_SOCKET: `${TMP}/run/writd.sock` }, stderr: 'ignore' });
  const c = new Client({ name: 'bench', version: '1' });
  await c.connect(t);
  const run = async (n, text) => {
    const lat = [];
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const s = process.hrtime.bigint();
      const r = await c.callTool({ name: 'echo', arguments: { text } });
      lat.push(Number(process.hrtime.bigint() - s) / 1000);
      if (r.content[0].text !== String(text.length)) throw new Error(`bad answer ${JSON.stringify(r)}`);
    }
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    lat.sort((a, b) => a - b);
    return { p50: pct(lat, 0.5), p99: pct(lat, 0.99), rate: n / secs };
  };
  await run(100, 'warm');
  const small = await run(CALLS, 'hello');
  const big = await run(BIG, 'x'.repeat(1 << 20));
  await c.close();
  return { small, big };
}

const rows = { direct: [], gateway: [] };
try {
  for (let r = 0; r < ROUNDS; r++) {
    rows.direct.push(await measure(server));
    rows.gateway.push(await measure(gateway));
  }
} finally {
  writd.kill('SIGTERM');
  await Promise.race([new Promise((r) => writd.on('exit', r)), sleep(10000)]);
  try { fs.rmSync(`/sys/fs/bpf/${SUBTREE}`, { recursive: true, force: true }); } catch {}
}
const med = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const f = (x) => x.toFixed(0);
console.log(`| ${CALLS} small / ${BIG} 1 MiB calls, median of ${ROUNDS} rounds | small p50 µs | small p99 µs | small calls/s | 1 MiB p50 µs | 1 MiB p99 µs | 1 MiB calls/s |`);
console.log('|---|---|---|---|---|---|---|');
for (const [k, v] of Object.entries(rows)) {
  console.log(`| ${k} | ${f(med(v.map((x) => x.small.p50)))} | ${f(med(v.map((x) => x.small.p99)))} | ${f(med(v.map((x) => x.small.rate)))} | ` +
              `${f(med(v.map((x) => x.big.p50)))} | ${f(med(v.map((x) => x.big.p99)))} | ${(med(v.map((x) => x.big.rate))).toFixed(1)} |`);
}
const calls = fs.readFileSync(`${TMP}/events.jsonl`, 'utf8').split('\n').filter((l) => l.includes('"kind":"tool_call"')).length;
console.log(`tool_call events recorded by writd: ${calls}`);
fs.rmSync(TMP, { recursive: true, force: true });
