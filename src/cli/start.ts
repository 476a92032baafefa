/**
 * What `npm start` runs (`exec node --max-semi-space-size=16 src/cli/start.ts serve`): the command
 * line, which stops when npm is gone.
 *
 * The start script `exec`s node, so this process is npm's own child. npm
 * passes SIGINT and SIGTERM on to it, and then exits with its exit code: 0
 * once the server has stopped cleanly. SIGHUP it does not pass on: a SIGHUP
 * sent to npm alone ends npm at once and would leave the server running with
 * no one waiting for it. So this process watches for its parent to go, and
 * then stops itself as SIGHUP would: every job cancelled, the socket removed.
 */
const parent = process.ppid

await import("./main.ts")

const parentWatch = setInterval(() => {
  if (process.ppid === parent) return
  clearInterval(parentWatch)
  process.stderr.write(`effect-jobs: the parent process (${parent}) is gone; stopping\n`)
  process.kill(process.pid, "SIGHUP")
}, 250)
// Not a reason to stay alive: the command itself decides when the process ends.
parentWatch.unref()
