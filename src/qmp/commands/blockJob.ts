/**
 * The `block-job-*` commands (QEMU's `blockdev.c`). They see only block jobs
 * (the server's `blockJobTypes`): any other id, or none, is
 * `DeviceNotActive: Block job '<id>' not found`. The job is named `device`,
 * except for finalize and dismiss, which take `id` — a QEMU wart kept for
 * compatibility. Checks come in QEMU's order: lookup, then (cancel) the paused
 * check, then the verb, then values such as `speed ≥ 0`.
 */
import { Effect, Schema } from "effect"
import type { Job } from "../../Job.ts"
import type { JobsService } from "../../Jobs.ts"
import { Int } from "../args.ts"
import { type Command, type CommandContext, command } from "../command.ts"
import { blockJobNotFound, fromJobError, GenericError, type QmpError } from "../errors.ts"

/** The block job with this id, or DeviceNotActive. */
export const findBlockJob = (context: CommandContext, id: string): Effect.Effect<Job, QmpError> =>
  context.jobs.get(id).pipe(
    Effect.mapError(() => blockJobNotFound(id)),
    Effect.filterOrFail((job) => context.blockJobTypes.has(job.type), () => blockJobNotFound(id))
  )

/** Engine errors after the lookup; a job dismissed in between is "not found" too. */
const mapVerbError = (id: string) => (error: { readonly _tag: string; readonly message: string }): QmpError =>
  error._tag === "JobNotFound" ? blockJobNotFound(id) : fromJobError(error)

const onBlockJob = <A extends Record<string, unknown>>(
  name: string,
  args: Schema.Decoder<A>,
  idOf: (args: A) => string,
  apply: (jobs: JobsService, args: A, job: Job) => Effect.Effect<void, { readonly _tag: string; readonly message: string }>,
  precheck?: (args: A, job: Job) => QmpError | undefined
): Command =>
  command(name, args, (decoded, context) => {
    const id = idOf(decoded)
    return Effect.flatMap(findBlockJob(context, id), (job) => {
      const refused = precheck?.(decoded, job)
      if (refused !== undefined) return Effect.fail(refused)
      return apply(context.jobs, decoded, job).pipe(Effect.mapError(mapVerbError(id)), Effect.as({}))
    })
  })

const Device = Schema.Struct({ device: Schema.String })
const Id = Schema.Struct({ id: Schema.String })

export const blockJobCommands: ReadonlyArray<Command> = [
  onBlockJob(
    "block-job-set-speed",
    Schema.Struct({ device: Schema.String, speed: Int }),
    (a) => a.device,
    (jobs, a) => jobs.setSpeed(a.device, a.speed)
  ),
  onBlockJob(
    "block-job-cancel",
    Schema.Struct({ device: Schema.String, force: Schema.optionalKey(Schema.Boolean) }),
    (a) => a.device,
    (jobs, a) => jobs.cancel(a.device, { force: a.force ?? false }),
    // QEMU refuses a soft cancel of a job the user paused, before the verb check.
    (a, job) =>
      job.userPaused && !(a.force ?? false)
        ? new GenericError({ desc: `The block job for device '${a.device}' is currently paused` })
        : undefined
  ),
  onBlockJob("block-job-pause", Device, (a) => a.device, (jobs, a) => jobs.pause(a.device)),
  onBlockJob("block-job-resume", Device, (a) => a.device, (jobs, a) => jobs.resume(a.device)),
  onBlockJob("block-job-complete", Device, (a) => a.device, (jobs, a) => jobs.complete(a.device)),
  onBlockJob("block-job-finalize", Id, (a) => a.id, (jobs, a) => jobs.finalize(a.id)),
  onBlockJob("block-job-dismiss", Id, (a) => a.id, (jobs, a) => jobs.dismiss(a.id))
]
