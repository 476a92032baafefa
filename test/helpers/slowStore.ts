/**
 * A job store on a slow disk: each commit takes a while longer than a reply
 * would, so a test can tell a reply that waited for the store from one that
 * did not (a slow store's commit, not a sleep in the test).
 */
import { Effect, type Layer } from "effect"
import type * as JobStore from "../../src/JobStore.ts"
import { storeWithCommit } from "./storeWithCommit.ts"

export const slowStore = <E>(store: Layer.Layer<JobStore.JobStore, E>): Layer.Layer<JobStore.JobStore, E> =>
  storeWithCommit(store, (batch, commit) => Effect.andThen(Effect.sleep("150 millis"), commit(batch)))
