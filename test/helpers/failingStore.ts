/**
 * A job store whose commits fail while `failing` is set — a full disk, as the
 * store reports it — and go through again once it is cleared.
 */
import { Effect, type Layer, Ref } from "effect"
import * as JobStore from "../../src/JobStore.ts"
import { storeWithCommit } from "./storeWithCommit.ts"

export const failingStore = <E>(
  store: Layer.Layer<JobStore.JobStore, E>,
  failing: Ref.Ref<boolean>
): Layer.Layer<JobStore.JobStore, E> =>
  storeWithCommit(store, (batch, commit, location) =>
    Effect.flatMap(Ref.get(failing), (fail) =>
      fail
        ? Effect.fail(new JobStore.StoreWriteFailed({ store: location, operation: "commit", reason: "no space left on device" }))
        : commit(batch)))
