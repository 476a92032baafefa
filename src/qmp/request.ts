/**
 * One message from a client (as `MessageScanner` frames it), read as a QMP
 * request: JSON text, then the request envelope
 * `{"execute": string, "arguments"?: object, "id"?: any}`, checked in QEMU's
 * order with QEMU's texts. The `id` is kept from the moment the input is known
 * to be an object, so every later error reply can echo it — and `headId` finds
 * it in the part of an over-long message that was read.
 *
 * JSON text is parsed in one place, `parseJson`; `parseCommonRequest` reads
 * the common request (no numbers to read exactly, a well-formed envelope)
 * with `JSON.parse` alone, giving exactly what `parseMessage` gives.
 */
import { Result, Schema, SchemaParser } from "effect"
import { GenericError } from "./errors.ts"
import { parse as parseJson } from "./json.ts"

/** A request's `id`, when it has one (any JSON value, `null` included). */
export type RequestId = { readonly value: unknown } | undefined

/** What one message holds. */
export type Incoming =
  | { readonly _tag: "Blank" }
  | {
    readonly _tag: "Command"
    readonly execute: string
    /** Sent as `exec-oob`: this server runs no command out of band. */
    readonly oob: boolean
    /** An object; `{}` when the request had no `arguments`. */
    readonly arguments: Readonly<Record<string, unknown>>
    readonly id: RequestId
  }
  | { readonly _tag: "Invalid"; readonly error: GenericError; readonly id: RequestId }

const Envelope = Schema.Struct({
  execute: Schema.optionalKey(Schema.String),
  "exec-oob": Schema.optionalKey(Schema.String),
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

const isBlank = (text: string) => /^[ \t\r\n]*$/.test(text)

/** The envelope's first problem, in QEMU's order: members in input order, then a missing `execute`. */
const envelopeError = (record: Record<string, unknown>): string => {
  for (const key of Object.keys(record)) {
    const value = record[key]
    if (key === "execute" || key === "exec-oob") {
      if (typeof value !== "string") return `QMP input member '${key}' must be a string`
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

/** The reply to a message nested deeper than `maxNesting` (QEMU's text). */
export const nestingTooDeep = (): GenericError => new GenericError({ desc: "JSON nesting depth limit exceeded" })

/**
 * Reads one message. The nesting depth is not checked here: the scanner
 * refuses a message nested too deep before it comes out whole.
 */
export const parseMessage = (bytes: Uint8Array): Incoming => {
  let text: string
  try {
    text = utf8.decode(bytes)
  } catch {
    return invalid("JSON parse error, invalid UTF-8 sequence")
  }
  if (isBlank(text)) return { _tag: "Blank" }
  let value: unknown
  try {
    value = parseJson(text)
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
  const { execute } = decoded.success
  const oob = decoded.success["exec-oob"]
  if (execute !== undefined && oob !== undefined) {
    // QEMU takes the first of the two and finds the second unexpected.
    const second = Object.keys(record).filter((k) => k === "execute" || k === "exec-oob")[1]!
    return invalid(`QMP input member '${second}' is unexpected`, id)
  }
  if (execute === undefined && oob === undefined) return invalid("QMP input lacks member 'execute'", id)
  return {
    _tag: "Command",
    execute: (execute ?? oob)!,
    oob: oob !== undefined,
    arguments: decoded.success.arguments ?? {},
    id
  }
}

/** Whether a number occurs anywhere in a value read by `JSON.parse`. */
const hasNumber = (value: unknown): boolean => {
  if (typeof value === "number") return true
  if (typeof value !== "object" || value === null) return false
  if (Array.isArray(value)) {
    for (const item of value) if (hasNumber(item)) return true
    return false
  }
  // A parsed object has only own, enumerable members (and a plain prototype).
  for (const key in value) if (hasNumber((value as Record<string, unknown>)[key])) return true
  return false
}

/**
 * The common request, read at a fraction of `parseMessage`'s cost: an
 * object with a well-formed envelope whose JSON holds no number, except an
 * `id` that is a safe integer. Such a message reads the same with
 * `JSON.parse` as with `parseJson` (only numbers read differently), and its
 * envelope needs no Schema to be checked. Anything else — every error
 * included — is `undefined`, and left to `parseMessage`.
 */
export const parseCommonRequest = (bytes: Uint8Array): Incoming | undefined => {
  if (bytes[0] !== 0x7b) return undefined
  let value: unknown
  try {
    value = JSON.parse(utf8.decode(bytes))
  } catch {
    return undefined
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined
  const record = value as Record<string, unknown>
  let execute: string | undefined = undefined
  let oob: string | undefined = undefined
  let args: Record<string, unknown> | undefined = undefined
  let id: RequestId = undefined
  for (const key in record) {
    const member = record[key]
    if (key === "execute" || key === "exec-oob") {
      if (typeof member !== "string" || execute !== undefined || oob !== undefined) return undefined
      if (key === "execute") execute = member
      else oob = member
    } else if (key === "arguments") {
      if (typeof member !== "object" || member === null || Array.isArray(member) || hasNumber(member)) return undefined
      args = member as Record<string, unknown>
    } else if (key === "id") {
      // An integer literal is read exactly by `parseJson`: as JSON.parse reads it only when it is a safe integer (and not -0).
      if (typeof member === "number" ? !Number.isSafeInteger(member) || Object.is(member, -0) : hasNumber(member)) {
        return undefined
      }
      id = { value: member }
    } else {
      return undefined
    }
  }
  if (execute === undefined && oob === undefined) return undefined
  return { _tag: "Command", execute: (execute ?? oob)!, oob: oob !== undefined, arguments: args ?? {}, id }
}

/** The session reads each message with `parseLine`: the common request cheaply, anything else with `parseMessage`. */
export const parseLine = (bytes: Uint8Array): Incoming => parseCommonRequest(bytes) ?? parseMessage(bytes)

const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09

/** Past the whitespace at `i`. */
const skipSpace = (bytes: Uint8Array, i: number): number => {
  while (i < bytes.length && isSpace(bytes[i]!)) i++
  return i
}

/** Past the string opening at `i` (double-quoted), or -1 if it does not close in `bytes`. */
const stringEnd = (bytes: Uint8Array, i: number): number => {
  for (let j = i + 1; j < bytes.length; j++) {
    const c = bytes[j]!
    if (c === 0x5c) j++
    else if (c === 0x22) return j + 1
  }
  return -1
}

/**
 * Past the JSON value beginning at `i`, or -1 if it is not complete in
 * `bytes`. A number or literal is complete only once a byte that cannot
 * continue it follows.
 */
const valueEnd = (bytes: Uint8Array, i: number): number => {
  const first = bytes[i]
  if (first === 0x22) return stringEnd(bytes, i)
  if (first === 0x7b || first === 0x5b) {
    let depth = 0
    for (let j = i; j < bytes.length; j++) {
      const c = bytes[j]!
      if (c === 0x22) {
        j = stringEnd(bytes, j)
        if (j === -1) return -1
        j--
      } else if (c === 0x7b || c === 0x5b) {
        depth++
      } else if ((c === 0x7d || c === 0x5d) && --depth === 0) {
        return j + 1
      }
    }
    return -1
  }
  for (let j = i; j < bytes.length; j++) {
    const c = bytes[j]!
    if (isSpace(c) || c === 0x2c || c === 0x7d || c === 0x5d) return j === i ? -1 : j
  }
  return -1
}

/**
 * The `id` of a message cut short at the size cap, from the part that was
 * read (`head`): the value of the last top-level `"id"` member that is
 * complete in it. None when `head` does not begin an object, or when no such
 * member was read whole; reading stops at the first thing out of place.
 */
export const headId = (head: Uint8Array): RequestId => {
  let id: RequestId = undefined
  let i = skipSpace(head, 0)
  if (head[i] !== 0x7b) return undefined
  i++
  while (true) {
    i = skipSpace(head, i)
    if (head[i] !== 0x22) return id
    const keyEnd = stringEnd(head, i)
    if (keyEnd === -1) return id
    const colon = skipSpace(head, keyEnd)
    if (head[colon] !== 0x3a) return id
    const valueStart = skipSpace(head, colon + 1)
    const end = valueEnd(head, valueStart)
    if (end === -1) return id
    try {
      if (parseJson(utf8.decode(head.subarray(i, keyEnd))) === "id") {
        // Read as the member of an object, so that the id comes out as it would from the whole message.
        const member = parseJson(`{"id":${utf8.decode(head.subarray(valueStart, end))}}`) as { readonly id: unknown }
        id = { value: member.id }
      }
    } catch {
      return id
    }
    i = skipSpace(head, end)
    if (head[i] !== 0x2c) return id
    i++
  }
}
