/**
 * The store contract against the memory store: one store instance, opened
 * again by every build of the layer under test.
 */
import { Context, Effect, Layer } from "effect"
import * as JobStore from "../../src/JobStore.ts"
import { storeSuite } from "./storeSuite.ts"

storeSuite(
  "memory",
  Effect.map(
    Layer.build(JobStore.memory),
    (context) => Layer.succeed(JobStore.JobStore, Context.get(context, JobStore.JobStore))
  )
)
