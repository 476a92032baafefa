/**
 * One line from a client, read as a QMP request: JSON text, then the request
 * envelope `{"execute": string, "arguments"?: object, "id"?: any}`, checked in
 * QEMU's order with QEMU's texts. The `id` is kept from the moment the input is
 * known to be an object, so every later error reply can echo it.
 */
import { Result, Schema, SchemaParser } from "effect"
import { GenericError } from "./errors.ts"

/** A request's `id`, when it has one (any JSON value, `null` included). */
export type RequestId = { readonly value: unknown } | undefined

/** What one line holds. */
export type Incoming =
  | { readonly _tag: "Blank" }
  | {
    readonly _tag: "Command"
    readonly execute: string
    /** An object; `{}` when the request had no `arguments`. */
    readonly arguments: Readonly<Record<string, unknown>>
    readonly id: RequestId
  }
  | { readonly _tag: "Invalid"; readonly error: GenericError; readonly id: RequestId }

/** QEMU's JSON parser refuses deeper nesting. */
export const maxNesting = 1024

const Envelope = Schema.Struct({
  execute: Schema.String,
  arguments: Schema.optionalKey(Schema.Record(Schema.String, Schema.Unknown)),
  id: Schema.optionalKey(Schema.Unknown)
})

const decodeEnvelope = SchemaParser.decodeUnknownResult(Envelope, { errors: "all", onExcessProperty: "error" })

const utf8 = new TextDecoder("utf-8", { fatal: true })

const invalid = (desc: string, id: RequestId = undefined): Incoming => ({
  _tag: "Invalid",
  error: new GenericError({ desc }),
  id
})

/** Whether brackets nest deeper than `max` outside strings (checked before parsing). */
export const nestsDeeperThan = (text: string, max: number): boolean => {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++ // backslash: skip the escaped character
      else if (c === 0x22) inString = false
    } else if (c === 0x22) {
      inString = true
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true
    } else if (c === 0x7d || c === 0x5d) {
      depth--
    }
  }
  return false
}

const isBlank = (text: string) => /^[ \t\r\n]*$/.test(text)

/** The envelope's first problem, in QEMU's order: members in input order, then a missing `execute`. */
const envelopeError = (record: Record<string, unknown>): string => {
  for (const key of Object.keys(record)) {
    const value = record[key]
    if (key === "execute") {
      if (typeof value !== "string") return "QMP input member 'execute' must be a string"
    } else if (key === "arguments") {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        return "QMP input member 'arguments' must be an object"
      }
    } else if (key !== "id") {
      return `QMP input member '${key}' is unexpected`
    }
  }
  return "QMP input lacks member 'execute'"
}

/** Reads one line (without its newline). */
export const parseLine = (bytes: Uint8Array): Incoming => {
  let text: string
  try {
    text = utf8.decode(bytes)
  } catch {
    return invalid("JSON parse error, invalid UTF-8 sequence")
  }
  if (isBlank(text)) return { _tag: "Blank" }
  if (nestsDeeperThan(text, maxNesting)) return invalid("JSON nesting depth limit exceeded")
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    return invalid(`JSON parse error, ${e instanceof Error ? e.message : String(e)}`)
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return invalid("QMP input must be a JSON object")
  }
  const record = value as Record<string, unknown>
  const id: RequestId = Object.prototype.hasOwnProperty.call(record, "id") ? { value: record.id } : undefined
  const decoded = decodeEnvelope(record)
  if (Result.isFailure(decoded)) return invalid(envelopeError(record), id)
  return {
    _tag: "Command",
    execute: decoded.success.execute,
    arguments: decoded.success.arguments ?? {},
    id
  }
}
