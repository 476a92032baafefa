/**
 * What the server writes, one JSON object per line: the greeting, replies
 * (`return` or `error`, with the request's `id` echoed when it had one) and
 * events (`event`, `data`, `timestamp`).
 */
import { createRequire } from "node:module"
import { errorBody, type QmpError } from "./errors.ts"
import type { RequestId } from "./request.ts"

/** QEMU's VersionInfo: effect-jobs's own version, package `effect-jobs`. */
export interface VersionInfo {
  readonly qemu: { readonly micro: number; readonly minor: number; readonly major: number }
  readonly package: string
}

const packageVersion = (): string => {
  try {
    // src/qmp/ and dist/qmp/ are both two levels below the package root.
    const pkg = createRequire(import.meta.url)("../../package.json") as { version?: unknown }
    return typeof pkg.version === "string" ? pkg.version : "0.0.0"
  } catch {
    return "0.0.0"
  }
}

const parseVersion = (version: string): VersionInfo => {
  const [major = 0, minor = 0, micro = 0] = version.split(/[.+-]/).slice(0, 3).map((n) => Number.parseInt(n, 10) || 0)
  return { qemu: { micro, minor, major }, package: "effect-jobs" }
}

export const version: VersionInfo = parseVersion(packageVersion())

/** An event's time: seconds and microseconds since the epoch. */
export interface Timestamp {
  readonly seconds: number
  readonly microseconds: number
}

export const timestampFromNanos = (nanos: bigint): Timestamp => ({
  seconds: Number(nanos / 1_000_000_000n),
  microseconds: Number((nanos % 1_000_000_000n) / 1000n)
})

const withId = (body: Record<string, unknown>, id: RequestId): Record<string, unknown> =>
  id === undefined ? body : { ...body, id: id.value }

export const greetingLine = (info: VersionInfo = version): string =>
  JSON.stringify({ QMP: { version: info, capabilities: [] } })

/**
 * A reply's value already written as JSON text (a listing kept between
 * replies): `returnLine` puts the text where `JSON.stringify` would have
 * written the value.
 */
export class JsonText {
  readonly text: string
  constructor(text: string) {
    this.text = text
  }
}

export const returnLine = (value: unknown, id: RequestId): string => {
  if (!(value instanceof JsonText)) return JSON.stringify(withId({ return: value }, id))
  // As JSON.stringify writes `{return, id}`: the id after the value, left out if it has no JSON form.
  const idText = id === undefined ? undefined : JSON.stringify(id.value) as string | undefined
  return idText === undefined ? `{"return":${value.text}}` : `{"return":${value.text},"id":${idText}}`
}

export const errorLine = (error: QmpError, id: RequestId): string =>
  JSON.stringify(withId({ error: errorBody(error) }, id))

export const eventLine = (event: string, data: unknown, timestamp: Timestamp): string =>
  JSON.stringify(data === undefined ? { event, timestamp } : { event, data, timestamp })
