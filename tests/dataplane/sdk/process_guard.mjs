// Child processes of a node test that die with it, shared by sdk.test.mjs and
// vercel_ai/multi_turn.test.mjs. A test killed by SIGKILL runs no cleanup, so each child is
// started under `setpriv --pdeathsig KILL` (util-linux) where available: the kernel kills it
// when this process dies. Exits and SIGTERM/SIGINT/SIGHUP kill them here as well, and the
// run_*.sh scripts kill the test's whole process group (process_group.sh).
import { spawn, spawnSync } from 'node:child_process';
import { constants } from 'node:os';

const live = new Set();
const pdeathsig = spawnSync('setpriv', ['--pdeathsig', 'KILL', '--', 'true']).status === 0;

// [command, args] running `bin args` so that it dies with this process.
export function guarded(bin, args) {
  return pdeathsig ? ['setpriv', ['--pdeathsig', 'KILL', '--', bin, ...args]] : [bin, args];
}

// spawn(bin, args, options) for a long-lived child: killed when this process ends, however it
// ends. setpriv execs `bin`, so child.pid and child.kill() are the binary's own.
export function spawnGuarded(bin, args, options) {
  const [command, argv] = guarded(bin, args);
  const child = spawn(command, argv, options);
  live.add(child);
  child.on('exit', () => live.delete(child));
  return child;
}

export function killGuarded() {
  for (const child of live) {
    child.kill('SIGKILL');
  }
}

process.on('exit', killGuarded);
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(signal, () => {
    killGuarded();
    process.exit(128 + constants.signals[signal]);
  });
}

// SPILLWAY_TEST_HOLD=1: stop once every process is up and never finish, for orphan_check.sh
// to kill the test there; a line on stdout says when.
export async function holdIfAsked() {
  if (process.env.SPILLWAY_TEST_HOLD !== '1') return;
  console.log(`spillway-test-holding pid ${process.pid}`);
  await new Promise(() => setInterval(() => {}, 60000));
}
