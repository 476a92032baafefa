/**
 * Replies that change something wait until it is stored: with a durable store
 * (`Jobs.layerDurable`), the response to a request other than GET or HEAD is
 * sent once everything published or changed before it is in the store, so a
 * client never hears of a job, a verb's effect or an event the store could
 * still lose. Without a store `Jobs.durable` returns at once.
 * @internal
 */
import { Effect } from "effect"
import { HttpRouter, HttpServerRequest } from "effect/http"
import { Jobs } from "../Jobs.ts"

const reading = new Set(["GET", "HEAD"])

export const middleware = HttpRouter.middleware(Effect.gen(function*() {
  const jobs = yield* Jobs
  const durable = jobs.durable
  return (httpEffect) =>
    durable === Effect.void ? httpEffect : Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const response = yield* httpEffect
      if (!reading.has(request.method)) yield* durable
      return response
    })
}))
