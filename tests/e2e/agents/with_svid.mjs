#!/usr/bin/env node
// Starts a tool server after fetching the task's JWT-SVID, from inside the task, without a shell:
//   node with_svid.mjs WRIT_BIN AUDIENCE SERVER.js [SERVER ARGS...]
// The token goes to stderr as "WRIT_SVID=<jwt>" (the agent forwards the server's stderr), so a demo or
// test can check it against /introspect before and after writ revokes the task's credentials.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [writ, audience, server, ...rest] = process.argv.slice(2);
// This writ runs inside the task: in a sanitizer build without LeakSanitizer, whose exit check needs
// PTRACE_ATTACH, refused by the task's seccomp filter (as tests/testlib/writd_fixture's WritInTaskArgv;
// a no-op for a writ built without sanitizers).
const asan = [process.env.ASAN_OPTIONS, 'detect_leaks=0'].filter(Boolean).join(':');
const token = execFileSync(writ, ['svid', '--audience', audience],
                           { encoding: 'utf8', timeout: 10000, env: { ...process.env, ASAN_OPTIONS: asan } }).trim();
process.stderr.write(`WRIT_SVID=${token}\n`);
process.argv = [process.argv[0], path.resolve(server), ...rest];
await import(pathToFileURL(path.resolve(server)).href);
