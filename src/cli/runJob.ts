/**
 * `effect-jobs backup SRC DST` and `effect-jobs mirror SRC DST`: one file job
 * run in this process, with a live progress bar.
 *
 * - The job is the `backup` or `mirror` driver's, so the target path keeps its
 *   old state until the copy is complete and renamed into place.
 * - Ctrl-C (SIGINT) or SIGTERM force-cancels the job: its temporary copy is
 *   removed and the target left as it was; the exit code is 130.
 * - A mirror runs until it is completed: a line on stdin (Enter on a terminal)
 *   completes it once it is READY — at once if it already is, otherwise as soon
 *   as it gets there. Until then it keeps its copy in sync with the source.
 *   The end of stdin (Ctrl-D, a closed pipe, `</dev/null`) completes it too:
 *   nothing could complete it later, and a mirror that is never completed
 *   never writes its target (a signal cancels it, leaving the target as it
 *   was).
 * - A failed job prints its error and exits with code 1.
 */
import { Clock, Effect, type FileSystem, Layer, Option, type Path, Schedule, type Scope } from "effect"
import * as FileDrivers from "../drivers/layer.ts"
import type { Job } from "../Job.ts"
import { Jobs, type JobsService, layer as jobsLayer } from "../Jobs.ts"
import * as JobStatus from "../JobStatus.ts"
import { type CommandFailed, exitCodes, fail } from "./exit.ts"
import { formatBytes, formatElapsed, formatRate, ProgressBar } from "./progressBar.ts"
import * as readline from "node:readline"

export interface RunJobOptions {
  readonly type: "backup" | "mirror"
  readonly source: string
  readonly target: string
  readonly speed: Option.Option<number>
  readonly overwrite: boolean
}

/** How often the bar is redrawn on a terminal, and sampled otherwise. */
const interactiveTick = "100 millis"
const plainTick = "250 millis"

const write = (text: string) => {
  process.stdout.write(text)
}

/**
 * The first line typed on stdin, or its end: which came first. Then, or when
 * interrupted, stdin is let go of: an open pipe or terminal would keep the
 * process alive after the job is done.
 */
const lineOrEnd: Effect.Effect<"line" | "end"> = Effect.callback<"line" | "end">((resume) => {
  const lines = readline.createInterface({ input: process.stdin })
  let done = false
  const stop = () => {
    done = true
    lines.close() // emits "close": already settled
    process.stdin.destroy()
  }
  const settle = (what: "line" | "end") => {
    if (done) return
    stop()
    resume(Effect.succeed(what))
  }
  lines.once("line", () => settle("line"))
  lines.once("close", () => settle("end"))
  return Effect.sync(() => {
    if (!done) stop()
  })
})

/** For a mirror: a line on stdin, or its end, completes it once READY. */
const completeOnInput = (jobs: JobsService, job: Job, bar: ProgressBar): Effect.Effect<void> =>
  Effect.gen(function*() {
    const input = yield* lineOrEnd
    if (!JobStatus.isReady(job.status)) {
      bar.note(`mirror: ${input === "end" ? "end of input: " : ""}will complete once READY`)
    }
    yield* Effect.ignore(jobs.awaitStatus(job, "ready"))
    if (!JobStatus.isReady(job.status)) return
    bar.note("mirror: completing — a last sync, then the copy is renamed onto the target")
    yield* jobs.complete(job).pipe(
      Effect.catch((error) => Effect.sync(() => bar.note(`mirror: cannot complete: ${error.message}`)))
    )
  })

const announceReady = (jobs: JobsService, job: Job, bar: ProgressBar, interactive: boolean): Effect.Effect<void> =>
  Effect.flatMap(Effect.option(jobs.awaitStatus(job, "ready")), (reached) =>
    Effect.sync(() => {
      if (Option.isSome(reached)) {
        bar.note(
          `mirror: READY, the target follows the source; ${
            interactive ? "press Enter" : "send a line on stdin (or close it)"
          } to complete, Ctrl-C to cancel`
        )
      }
    }))

const run = (options: RunJobOptions): Effect.Effect<void, CommandFailed, Jobs | Scope.Scope> =>
  Effect.gen(function*() {
    const jobs = yield* Jobs
    const { type } = options
    const params = {
      source: options.source,
      target: options.target,
      ...(options.overwrite ? { overwrite: true } : {})
    }
    const started = yield* Clock.currentTimeMillis
    const job = yield* jobs.run({ type, id: type, params, speed: Option.getOrUndefined(options.speed) }).pipe(
      Effect.catch((error) => fail(error.message.replace("pass overwrite: true", "pass --overwrite")))
    )

    const interactive = process.stdout.isTTY === true
    const bar = new ProgressBar({ label: type, interactive, write, columns: () => process.stdout.columns })
    const sample = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.sync(() => {
        // The job is dismissed as it ends (`null`): to the user it has concluded.
        const ended = job.status === "concluded" || job.status === "null"
        const status = ended ? "concluded" : job.status
        // Ended well: no error, not cancelled.
        bar.update(job.progress, status, now, ended && job.error === undefined && !job.isCancelled)
      }))
    yield* Effect.forkScoped(Effect.repeat(sample, Schedule.spaced(interactive ? interactiveTick : plainTick)), {
      startImmediately: true
    })
    if (type === "mirror") {
      yield* Effect.forkScoped(announceReady(jobs, job, bar, interactive), { startImmediately: true })
      yield* Effect.forkScoped(completeOnInput(jobs, job, bar), { startImmediately: true })
    }

    const outcome = yield* Effect.orDie(jobs.awaitOutcome(job)).pipe(
      Effect.onInterrupt(() =>
        Effect.gen(function*() {
          bar.note(`${type}: cancelling…`)
          yield* Effect.ignore(jobs.cancel(job, { force: true }))
          const ended = yield* Effect.option(jobs.awaitOutcome(job))
          yield* sample
          bar.finish()
          if (Option.isSome(ended) && ended.value._tag === "Succeeded") {
            process.stderr.write(`${type}: interrupted after the job had finished: ${options.target} is complete\n`)
          } else {
            process.stderr.write(`${type}: cancelled; ${options.target} was left as it was\n`)
          }
        })
      )
    )
    yield* sample
    bar.finish()
    const elapsed = ((yield* Clock.currentTimeMillis) - started) / 1000
    switch (outcome._tag) {
      case "Succeeded": {
        const { current } = job.progress
        const rate = elapsed > 0 ? current / elapsed : undefined
        write(`${type}: done, ${options.target} written (${formatBytes(current)} copied in ${formatElapsed(elapsed)}, ${formatRate(rate)})\n`)
        return
      }
      case "Failed":
        return yield* fail(`${type} failed: ${outcome.error}`)
      case "Cancelled":
        return yield* fail(`${type} cancelled; ${options.target} was left as it was`, exitCodes.interrupted)
    }
  })

/** The job, with a `Jobs` of its own and the file drivers, closed (every job force-cancelled) when it ends. */
export const runJob = (
  options: RunJobOptions
): Effect.Effect<void, CommandFailed, FileSystem.FileSystem | Path.Path> =>
  Effect.scoped(run(options)).pipe(Effect.provide(FileDrivers.layer.pipe(Layer.provideMerge(jobsLayer))))
