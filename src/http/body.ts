/**
 * Request bodies: read as JSON and decoded with the endpoint's schema, refused
 * with QMP's texts for arguments, which name the parameter by its path
 * (`Parameter 'jobs[1].id' is missing`, `Invalid parameter type for 'speed',
 * expected: integer`, `Parameter 'x' is unexpected`). An empty body is `{}`.
 *
 * The `Content-Type` was checked before (the guard): only JSON gets here.
 */
import { Effect, Result, type Schema, type SchemaAST, SchemaParser } from "effect"
import type { HttpServerRequest } from "effect/http"
import { issueText } from "../qmp/args.ts"
import { badRequest, type BadRequest } from "./errors.ts"

const parseOptions: SchemaAST.ParseOptions = { errors: "all", onExcessProperty: "error" }

/** A decoder of one endpoint's body. */
export const bodyDecoder = <A>(schema: Schema.Decoder<A>) => {
  const decode = SchemaParser.decodeUnknownResult(schema, parseOptions)
  return (request: HttpServerRequest.HttpServerRequest): Effect.Effect<A, BadRequest> =>
    Effect.flatMap(
      Effect.orElseSucceed(request.text, () => undefined),
      (text) => {
        if (text === undefined) return Effect.fail(badRequest("The request body could not be read"))
        let input: unknown = {}
        if (text.trim() !== "") {
          try {
            input = JSON.parse(text)
          } catch (error) {
            return Effect.fail(badRequest(`JSON parse error, ${error instanceof Error ? error.message : String(error)}`))
          }
        }
        if (typeof input !== "object" || input === null || Array.isArray(input)) {
          return Effect.fail(badRequest("The request body must be a JSON object"))
        }
        const result = decode(input)
        return Result.isSuccess(result)
          ? Effect.succeed(result.success)
          : Effect.fail(badRequest(issueText(result.failure, input)))
      }
    )
}
