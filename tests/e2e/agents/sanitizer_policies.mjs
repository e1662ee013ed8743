#!/usr/bin/env node
// Sanitizer builds only (build-asan; CTest passes --sanitized to agents_e2e and demo.sh): the intents
// under which these tests start the sanitized `writ` inside a task (`writ svid`, `writ run --parent`)
// are given the two reads its sanitizer runtime makes at start-up, and the test then checks that no
// process but that writ, on its own pid, used them.
//
// Why: before main(), compiler-rt's AsanInitInternal (clang 14, static runtime) opens, with a raw
// open(2) and whatever the options say,
//   /proc/self/cmdline  CacheBinaryName -> ReadLongProcessName (the process name for reports),
//   /proc/self/environ  InitializeFlags -> GetEnv (where it reads ASAN_OPTIONS / UBSAN_OPTIONS),
// and /proc/self/maps (AsanCheckIncompatibleRT), which mcp-coding-agent and mcp-filesystem already
// grant as "/proc/*/maps" for node. writd reports /proc/self as /proc/<pid>, the intents have no rule
// for either path, and the task is killed for files.read.default before writ's main() runs.
// policies/ itself stays as it ships: the main tree's e2e tier runs the same scenarios against it.
//
//   node sanitizer_policies.mjs write SRC_POLICIES_DIR OUT_DIR   copy, with the reads added
//   node sanitizer_policies.mjs check EVENTS.jsonl WRIT_BIN      exit 1 (printed) if anyone else used them
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const SANITIZER_READS = ['/proc/*/cmdline', '/proc/*/environ'];
// The intents the scenarios run a sanitized writ under (mcp-repo-reader only ever runs cat and ls: the
// sub-agent's launcher, `writ run --parent`, stays in its parent's mcp-coding-agent task).
export const INTENTS = ['mcp-coding-agent', 'mcp-filesystem'];

// Appends SANITIZER_READS to the files.read flow sequence of one intent's YAML text. Appended, not
// prepended: the files.read[N] rule ids of the shipped rules stay what the scenarios assert.
function addReads(text, file) {
  const m = /^files:\n(?:[ \t]*(?:#.*)?\n|  .*\n)*?  read: \[/m.exec(text);
  if (!m) throw new Error(`${file}: no "files:" block with a "read: [...]" flow sequence`);
  let depth = 0, quote = '';
  for (let i = m.index + m[0].length - 1; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = '';
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '[') {
      depth++;
    } else if (c === ']' && --depth === 0) {
      return `${text.slice(0, i)}, ${SANITIZER_READS.map((r) => JSON.stringify(r)).join(', ')}${text.slice(i)}`;
    }
  }
  throw new Error(`${file}: unterminated files.read`);
}

export function writeSanitizerPolicies(src, out) {
  fs.mkdirSync(out, { recursive: true });
  const pending = new Set(INTENTS);
  for (const f of fs.readdirSync(src)) {
    if (!f.endsWith('.yaml')) continue;
    let text = fs.readFileSync(path.join(src, f), 'utf8');
    const name = /^name: (\S+)$/m.exec(text)?.[1];
    if (pending.delete(name)) text = addReads(text, f);
    fs.writeFileSync(path.join(out, f), text);
  }
  if (pending.size) throw new Error(`${src}: no intent ${[...pending].join(', ')}`);
}

// The allowed opens of SANITIZER_READS by anything but `writ` reading its own /proc/<pid>: with the
// shipped intents each of them would have been a violation, so each is a failure.
export function foreignSanitizerReads(events, writ) {
  writ = fs.realpathSync(writ);  // events carry the resolved exe
  const re = /^\/proc\/(\d+)\/(cmdline|environ)$/;
  return events.filter((e) => {
    const m = e.kind === 'open' && e.verdict === 'allow' && re.exec(e.file?.path ?? '');
    return m && !(e.process?.exe === writ && String(e.process?.pid) === m[1]);
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [cmd, a, b] = process.argv.slice(2);
  if (cmd === 'write' && a && b) {
    writeSanitizerPolicies(a, b);
  } else if (cmd === 'check' && a && b) {
    const events = fs.readFileSync(a, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const bad = foreignSanitizerReads(events, path.resolve(b));
    for (const e of bad) console.log(`not the sanitized writ's own start-up read: ${JSON.stringify(e)}`);
    process.exit(bad.length ? 1 : 0);
  } else {
    console.error('usage: sanitizer_policies.mjs write SRC_DIR OUT_DIR | check EVENTS.jsonl WRIT_BIN');
    process.exit(2);
  }
}
