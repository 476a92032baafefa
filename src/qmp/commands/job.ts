/**
 * The `job-*` commands (QEMU's `qapi/job.json`): each takes `{id}`, looks the
 * job up among the jobs with an id and applies one verb, with the engine's
 * checks and texts (`Job not found`, the verb table, …). They return `{}`.
 */
import { Effect, Schema } from "effect"
import type { JobsService } from "../../Jobs.ts"
import { type Command, command } from "../command.ts"
import { fromJobError } from "../errors.ts"

const IdArgs = Schema.Struct({ id: Schema.String })

const verb = (
  name: string,
  apply: (jobs: JobsService, id: string) => Effect.Effect<void, { readonly message: string }>
): Command =>
  command(name, IdArgs, ({ id }, { jobs }) => apply(jobs, id).pipe(Effect.mapError(fromJobError), Effect.as({})))

export const jobCommands: ReadonlyArray<Command> = [
  verb("job-pause", (jobs, id) => jobs.pause(id)),
  verb("job-resume", (jobs, id) => jobs.resume(id)),
  // Always a hard cancel, as in QEMU.
  verb("job-cancel", (jobs, id) => jobs.cancel(id, { force: true })),
  verb("job-complete", (jobs, id) => jobs.complete(id)),
  verb("job-finalize", (jobs, id) => jobs.finalize(id)),
  verb("job-dismiss", (jobs, id) => jobs.dismiss(id))
]
