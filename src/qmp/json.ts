/**
 * JSON text read with QEMU's two kinds of numbers.
 *
 * QEMU's JSON parser keeps an integer literal (no fraction, no exponent) as an
 * integer, exact over the whole int64 range, and anything else as a double; an
 * `int` argument accepts only the former, so `1.0` and `1e3` are not integers
 * to it, and `9223372036854775807` is one. `JSON.parse` reads both kinds as
 * doubles and rounds large integers, which makes the two impossible to tell
 * apart afterwards — but its reviver sees each number's source text, which is
 * all that is needed:
 *
 * - `parse` (QMP requests): inside the request's `arguments`, an integer
 *   literal becomes a `bigint` (exact, whatever its size) and any other number
 *   a `number`; `Int` in `args.ts` accepts only the bigints. Everywhere else
 *   numbers are `JSON.parse`'s, except that an integer a double cannot hold
 *   exactly is kept as its text (`JSON.rawJSON`), so that an `id` is echoed
 *   exactly as it was sent.
 * - `parseVerbatim` (what a client is about to send): every number whose text
 *   `JSON.stringify` would not write back unchanged is kept as its text, so
 *   that the value sends the numbers exactly as they were written.
 */

/** `JSON.rawJSON` (Node 21+), missing from the ES2023 typings. */
const rawJSON: (text: string) => object = (JSON as unknown as { readonly rawJSON: (text: string) => object }).rawJSON

/** What the reviver gets besides key and value: the source text of a primitive. */
interface ReviverContext {
  readonly source?: string
}

type Reviver = (key: string, value: unknown, context?: ReviverContext) => unknown

const parseWith = (text: string, reviver: Reviver): unknown =>
  JSON.parse(text, reviver as (key: string, value: unknown) => unknown)

/** JSON's integer syntax: what is left once the grammar has been checked is the absence of `.`, `e`, `E`. */
const isIntegerLiteral = (source: string): boolean => !/[.eE]/.test(source)

/** A number as JSON.parse reads it; an integer too large for a double to hold exactly, as its text. */
const plainInteger = (value: bigint): unknown => {
  const n = Number(value)
  return Number.isSafeInteger(n) ? n : rawJSON(value.toString())
}

/** Turns the bigints in `value` back into plain (or raw) numbers, in place. */
const withPlainNumbers = (value: unknown): unknown => {
  if (typeof value === "bigint") return plainInteger(value)
  if (typeof value === "object" && value !== null) plainMembers(value as Record<string, unknown>, () => true)
  return value
}

/** `withPlainNumbers` for the members of `record` that `which` selects. */
const plainMembers = (record: Record<string, unknown>, which: (member: string) => boolean): void => {
  for (const member of Object.keys(record)) {
    if (!which(member)) continue
    const before = record[member]
    const after = withPlainNumbers(before)
    if (after !== before) record[member] = after // only a bigint is replaced; objects change in place
  }
}

/**
 * A QMP request's JSON text (see the module comment): integer literals under
 * `arguments` as bigints. Throws `JSON.parse`'s `SyntaxError` on bad JSON.
 */
export const parse = (text: string): unknown => {
  const value = parseWith(text, (_key, value, context) =>
    typeof value === "number" && context?.source !== undefined && isIntegerLiteral(context.source)
      ? BigInt(context.source)
      : value)
  // Not an object: it is refused as a whole, and only needs to be a number where it was one.
  if (typeof value === "bigint") return Number(value)
  if (typeof value !== "object" || value === null || Array.isArray(value)) return withPlainNumbers(value)
  plainMembers(value as Record<string, unknown>, (member) => member !== "arguments")
  return value
}

const isRawJSON = (JSON as unknown as { readonly isRawJSON: (value: unknown) => boolean }).isRawJSON

/**
 * JSON text to send on: every number that `JSON.stringify` would not write
 * back as it was written (`1.0`, `1e3`, an integer beyond 2^53) is kept as its
 * text (a number alone stays a number). Throws `JSON.parse`'s `SyntaxError` on
 * bad JSON.
 */
export const parseVerbatim = (text: string): unknown => {
  const value = parseWith(text, (_key, value, context) =>
    typeof value === "number" && context?.source !== undefined && JSON.stringify(value) !== context.source
      ? rawJSON(context.source)
      : value)
  return isRawJSON(value) ? JSON.parse(text) : value
}
