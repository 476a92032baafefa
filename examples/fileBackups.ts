import { NodeServices } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { FileDrivers, Jobs, JobTxn } from "../src/index.ts"

// Jobs with the `backup` and `mirror` job types, on Node's file system.
export const FileJobsLive = FileDrivers.layer.pipe(
  Layer.provideMerge(Layer.mergeAll(Jobs.layer, NodeServices.layer))
)

// Copies every [source, target] pair in one transaction: every target
// appears, complete, or none of them changes.
export const backupAll = (pairs: ReadonlyArray<readonly [string, string]>) =>
  Effect.gen(function*() {
    const jobs = yield* Jobs.Jobs
    const txn = yield* JobTxn.make
    const members = yield* Effect.forEach(pairs, ([source, target], i) =>
      jobs.create({ type: "backup", id: `backup-${i}`, txn, params: { source, target } })
    ).pipe(Effect.tapError(() => JobTxn.cancel(txn))) // e.g. a missing source: nobody starts
    for (const job of members) yield* jobs.start(job)
    return yield* JobTxn.awaitOutcome(txn) // { _tag: "Committed" } or { _tag: "Aborted", error }
  })
