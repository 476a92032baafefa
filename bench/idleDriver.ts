/**
 * The job the server benchmarks fill their engine with: it waits (`yield`)
 * until woken or cancelled, forever, so listings have jobs to show and cost
 * nothing while they are measured.
 */
import { Effect, Schema } from "effect"
import * as JobDriver from "../src/JobDriver.ts"

export const IdleDriver = JobDriver.make({
  type: "idle",
  params: Schema.Struct({}),
  make: (_params, job) =>
    Effect.succeed({
      run: Effect.gen(function*() {
        while (!(yield* job.cancelRequested)) yield* job.yield
      })
    })
})
