/**
 * A job store on a slow disk: each commit takes a while longer than a reply
 * would, so a test can tell a reply that waited for the store from one that
 * did not (a slow store's commit, not a sleep in the test).
 */
import { Effect, Layer } from "effect"
import * as JobStore from "../../src/JobStore.ts"

export const slowStore = <E>(store: Layer.Layer<JobStore.JobStore, E>): Layer.Layer<JobStore.JobStore, E> =>
  Layer.effect(
    JobStore.JobStore,
    Effect.gen(function*() {
      const inner = yield* JobStore.JobStore
      return JobStore.JobStore.of({
        ...inner,
        acquire: (owner, options) =>
          Effect.map(inner.acquire(owner, options), (owned) => ({
            ...owned,
            commit: (batch) => Effect.andThen(Effect.sleep("150 millis"), owned.commit(batch))
          }))
      })
    })
  ).pipe(Layer.provide(store))
