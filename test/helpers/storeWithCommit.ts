/**
 * A job store whose owner's `commit` goes through `commit` first: the real
 * store underneath, with its commits slowed down, failed or dropped, so a
 * test can put a disk's or a dead process's behaviour under the engine.
 */
import { Effect, Layer } from "effect"
import * as JobStore from "../../src/JobStore.ts"
import type { OwnedStore } from "../../src/store/service.ts"

export const storeWithCommit = <E>(
  store: Layer.Layer<JobStore.JobStore, E>,
  commit: (
    batch: Parameters<OwnedStore["commit"]>[0],
    inner: OwnedStore["commit"],
    /** The store's name in messages. */
    location: string
  ) => ReturnType<OwnedStore["commit"]>
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
            commit: (batch) => commit(batch, owned.commit, inner.location)
          }))
      })
    })
  ).pipe(Layer.provide(store))
