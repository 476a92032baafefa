/**
 * The query commands: `query-version`, `query-commands`, `query-jobs` (QEMU's
 * JobInfo for every job with an id, see `jobInfoText.ts`) and
 * `query-block-jobs` (BlockJobInfo for the block jobs).
 */
import { Effect } from "effect"
import type { Job } from "../../Job.ts"
import { NoArguments } from "../args.ts"
import { type Command, command } from "../command.ts"

/** QEMU's BlockJobInfo of one job (effect-jobs has no I/O errors: `io-status` is always `ok`). */
export const blockJobInfo = (job: Job): Record<string, unknown> => {
  const info: Record<string, unknown> = {
    type: job.type,
    device: job.id,
    len: job.progress.total,
    offset: job.progress.current,
    busy: job.busy,
    paused: job.pauseCount > 0,
    speed: job.speed,
    "io-status": "ok",
    ready: job.status === "ready" || job.status === "standby",
    status: job.status,
    "auto-finalize": job.autoFinalize,
    "auto-dismiss": job.autoDismiss
  }
  if (job.error !== undefined) info.error = job.error
  return info
}

export const queryCommands: ReadonlyArray<Command> = [
  command("query-version", NoArguments, (_, { version }) => Effect.succeed(version)),
  command("query-commands", NoArguments, (_, { commandNames }) =>
    Effect.succeed(commandNames.map((name) => ({ name })))),
  // As JSON text, reused while no job changed (see jobInfoText.ts).
  command("query-jobs", NoArguments, (_, { jobs, jobInfoText }) => Effect.map(jobs.list, (rows) => jobInfoText.of(rows))),
  command("query-block-jobs", NoArguments, (_, { jobs, blockJobTypes }) =>
    Effect.gen(function*() {
      const out: Array<Record<string, unknown>> = []
      for (const row of yield* jobs.list) {
        if (!blockJobTypes.has(row.type)) continue
        // A job dismissed since the listing is simply left out.
        const job = yield* Effect.option(jobs.get(row.id))
        if (job._tag === "Some") out.push(blockJobInfo(job.value))
      }
      return out
    }))
]
