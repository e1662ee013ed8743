#!/usr/bin/env node
// The "agent" of the end-to-end scenarios: an MCP client (the SDK's stdio client) whose transport is
// `writ run ... -- <tool server>`, so the tool server and everything it spawns run as a writ task.
//
//   node agent.mjs STEPS_JSON -- writ run --agent ... -- node server.js ARGS...
//
// STEPS_JSON is a JSON array of steps, run in order; one JSON line is printed per step:
//   {"call": TOOL, "args": {...}, "timeout_ms": N}  -> {"step":i,"call":TOOL,"ok":bool,"is_error":bool,"text":"..."}
//   {"sleep_ms": N}                                  -> {"step":i,"slept_ms":N}
//   {"list_tools": true}                             -> {"step":i,"tools":[names]}
//   {"parallel": [CALL_STEP, ...]}                   -> {"step":i,"results":[per call as above]} (at once)
// "${TASK}" inside a call's arguments is replaced by the task id `writ run` printed.
// and last {"exit": CODE, "signal": SIG|null, "task": "t-..."} for `writ run` itself (its exit status is
// the task's verdict: 137 when writd killed the server). A step never hangs: every call has a timeout
// and a closed transport fails the remaining calls at once.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const sep = process.argv.indexOf('--');
if (sep < 3 || sep === process.argv.length - 1) {
  console.error('usage: agent.mjs STEPS_JSON -- COMMAND [ARGS...]');
  process.exit(2);
}
const steps = JSON.parse(process.argv[2]);
const [command, ...args] = process.argv.slice(sep + 1);

const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
let stderrText = '';
const transport = new StdioClientTransport({ command, args, env: { ...process.env }, stderr: 'pipe' });
transport.stderr?.on('data', (d) => {
  stderrText += d.toString();
  process.stderr.write(d);
});
const client = new Client({ name: 'writ-e2e-agent', version: '1.0.0' });

let exitInfo = null;
const exited = new Promise((resolve) => {
  transport.onclose = () => resolve();
});

try {
  await client.connect(transport, { timeout: 20000 });
  // The SDK does not surface the server's exit status; `writ run`'s status is what the test asserts.
  const proc = transport._process;
  if (proc) {
    proc.on('exit', (code, signal) => {
      exitInfo = { exit: code, signal };
    });
  }
} catch (e) {
  out({ step: -1, connect_error: String(e?.message ?? e) });
}

for (let i = 0; i < steps.length; i++) {
  const s = steps[i];
  if (s.sleep_ms !== undefined) {
    await new Promise((r) => setTimeout(r, s.sleep_ms));
    out({ step: i, slept_ms: s.sleep_ms });
    continue;
  }
  try {
    if (s.parallel) {
      const results = await Promise.all(s.parallel.map((p) =>
        client.callTool({ name: p.call, arguments: p.args ?? {} }, undefined, { timeout: p.timeout_ms ?? 15000 })
          .then((r) => ({ call: p.call, ok: !r.isError, text: (r.content ?? []).map((c) => c.text ?? '').join('\n') }))
          .catch((e) => ({ call: p.call, ok: false, error: String(e?.message ?? e) }))));
      out({ step: i, results });
      continue;
    }
    if (s.list_tools) {
      const r = await client.listTools(undefined, { timeout: 10000 });
      out({ step: i, tools: r.tools.map((t) => t.name) });
      continue;
    }
    // "${TASK}" in arguments: the task id writ run printed (sub-agents name their parent with it).
    const task = /writ: task (t-[0-9a-f]+)/.exec(stderrText)?.[1] ?? '';
    const args = JSON.parse(JSON.stringify(s.args ?? {}).replaceAll('${TASK}', task));
    const r = await client.callTool({ name: s.call, arguments: args }, undefined,
                                    { timeout: s.timeout_ms ?? 15000 });
    const text = (r.content ?? []).map((c) => c.text ?? '').join('\n');
    out({ step: i, call: s.call, ok: !r.isError, is_error: !!r.isError, text });
  } catch (e) {
    out({ step: i, call: s.call, ok: false, is_error: true, error: String(e?.message ?? e) });
  }
}

// Closing stdin ends a well-behaved server; a bounded wait, then the SDK's own SIGTERM/SIGKILL.
await Promise.race([client.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
for (let i = 0; i < 50 && exitInfo === null; i++) await new Promise((r) => setTimeout(r, 100));
const task = /writ: task (t-[0-9a-f]+)/.exec(stderrText)?.[1] ?? null;
out({ ...(exitInfo ?? { exit: null, signal: null }), task });
process.exit(0);
