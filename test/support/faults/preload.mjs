/**
 * Fault injection from outside the program (node --import this file): the filesystem functions the
 * CLI imports are wrapped before it loads, so tests can kill, pause or fail it at a chosen syscall
 * without a single test hook in src/. Configured by environment (read by this file only):
 *
 *   ZP_FAULT_CRASH='{"op":"rename","match":"/\\.\\.data$","when":"after","nth":1}'   SIGKILL there
 *   ZP_FAULT_PAUSE='{"op":"close","match":"…","ms":3000}'                              sleep there (async ops)
 *   ZP_FAULT_ERROR='{"op":"copyFile","match":"…","code":"ENOSPC"}'                   fail once with that errno
 *
 * `op` is the function name (open, close and sync are FileHandle calls, by the path that was opened),
 * `match` a regular expression over the path (for rename/link/symlink/copyFile: the destination), `nth`
 * which matching call (default 1), `when` before or after the real call (default after).
 */
import { createRequire, syncBuiltinESMExports } from 'node:module';

const require = createRequire(import.meta.url);
const fs = require('node:fs');
const fsp = require('node:fs/promises');

const parse = (name) => (process.env[name] ? JSON.parse(process.env[name]) : undefined);
const crash = parse('ZP_FAULT_CRASH');
const pause = parse('ZP_FAULT_PAUSE');
const error = parse('ZP_FAULT_ERROR');
const seen = new Map();

function hit(rule, op, p) {
  if (!rule || rule.op !== op || !new RegExp(rule.match).test(String(p))) return false;
  const n = (seen.get(rule) ?? 0) + 1;
  seen.set(rule, n);
  return n === (rule.nth ?? 1);
}

function before(op, p) {
  const c = crash && (crash.when ?? 'after') === 'before' && hit(crash, op, p);
  if (c) process.kill(process.pid, 'SIGKILL');
  if (error && hit(error, op, p)) {
    const err = new Error(`${error.code}: injected error, ${op} '${p}'`);
    err.code = error.code;
    throw err;
  }
  return pause && hit(pause, op, p) ? pause.ms : 0;
}

function after(op, p) {
  if (crash && (crash.when ?? 'after') === 'after' && hit(crash, op, p)) process.kill(process.pid, 'SIGKILL');
}

/** The path a call is about: the destination for two-path calls. */
const target = (op, args) =>
  ['rename', 'link', 'symlink', 'copyFile', 'linkSync', 'symlinkSync', 'renameSync', 'copyFileSync'].includes(op) ? args[1] : args[0];

function wrapAsync(obj, op) {
  const real = obj[op];
  obj[op] = async function (...args) {
    const p = target(op, args);
    const ms = before(op, p);
    if (ms) await new Promise((r) => setTimeout(r, ms));
    const result = await real.apply(this, args);
    if (op === 'open') {
      paths.set(result, String(p));
      // FileHandle#close is an own (arrow) property in Node 20, not on the prototype.
      if (Object.hasOwn(result, 'close')) wrapHandleClose(result, String(p));
    }
    after(op, p);
    return result;
  };
}

function wrapSync(obj, op) {
  const real = obj[op];
  obj[op] = function (...args) {
    const p = target(op, args);
    before(op, p);
    const result = real.apply(this, args);
    after(op, p);
    return result;
  };
}

const paths = new WeakMap();

function wrapHandleClose(fh, p) {
  const real = fh.close;
  fh.close = async (...args) => {
    const ms = before('close', p);
    if (ms) await new Promise((r) => setTimeout(r, ms));
    const result = await real(...args);
    after('close', p);
    return result;
  };
}
for (const op of ['open', 'rename', 'symlink', 'rm', 'unlink', 'rmdir', 'mkdir', 'copyFile', 'writeFile', 'link']) wrapAsync(fsp, op);
for (const op of ['linkSync', 'unlinkSync', 'mkdirSync', 'rmdirSync', 'renameSync']) wrapSync(fs, op);

// FileHandle methods, reported by the path the handle was opened with.
const probe = await fsp.open(process.execPath, 'r');
const proto = Object.getPrototypeOf(probe);
await probe.close();
for (const op of ['sync', 'close']) {
  const real = proto[op];
  proto[op] = async function (...args) {
    const p = paths.get(this) ?? '';
    const ms = before(op, p);
    if (ms) await new Promise((r) => setTimeout(r, ms));
    const result = await real.apply(this, args);
    after(op, p);
    return result;
  };
}
syncBuiltinESMExports();
