/**
 * A job store whose commits fail while `failing` is set — a full disk, as the
 * store reports it — and go through again once it is cleared.
 */
import { Effect, Layer, Ref } from "effect"
import * as JobStore from "../../src/JobStore.ts"

export const failingStore = <E>(
  store: Layer.Layer<JobStore.JobStore, E>,
  failing: Ref.Ref<boolean>
): Layer.Layer<JobStore.JobStore, E> =>
  Layer.effect(
    JobStore.JobStore,
    Effect.gen(function*() {
      const inner = yield* JobStore.JobStore
      return JobStore.JobStore.of({
        ...inner,
        acquire: (owner, options) =>
          Effect.map(inner.acquire(owner, options), (owned) => ({
            ...owned,
            commit: (batch) =>
              Effect.flatMap(Ref.get(failing), (fail) =>
                fail
                  ? Effect.fail(
                    new JobStore.StoreWriteFailed({ store: inner.location, operation: "commit", reason: "no space left on device" })
                  )
                  : owned.commit(batch))
          }))
      })
    })
  ).pipe(Layer.provide(store))
