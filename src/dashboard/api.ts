/**
 * The page's client of the public HTTP API (docs/http.md): the shapes it
 * reads, and requests that answer with the API's own error body when refused.
 * Nothing here is private to the page: any client could do the same.
 */

export type JobStatus =
  | "undefined"
  | "created"
  | "running"
  | "paused"
  | "ready"
  | "standby"
  | "waiting"
  | "pending"
  | "aborting"
  | "concluded"
  | "null"

/** A job as `GET /api/jobs` and `GET /api/progress` show it. */
export interface JobView {
  readonly id: string
  readonly type: string
  readonly status: JobStatus
  readonly currentProgress: number
  readonly totalProgress: number
  readonly error?: string
  readonly txn: string | null
  readonly manualFinalize: boolean
  readonly manualDismiss: boolean
  readonly speed: number
  readonly rate: number | null
  readonly eta: number | null
  readonly busy: boolean
  readonly paused: boolean
  readonly userPaused: boolean
}

/** `GET /api/jobs/:id`: a job and, if it was created over the API, its parameters. */
export interface JobDetail extends JobView {
  readonly params?: unknown
}

export interface JobsSnapshot {
  readonly seq: number
  readonly jobs: ReadonlyArray<JobView>
}

/** `GET /api/tables`: the state machine as data. */
export interface Tables {
  readonly statuses: ReadonlyArray<JobStatus>
  readonly verbs: ReadonlyArray<string>
  readonly acceptedIn: Readonly<Record<string, ReadonlyArray<JobStatus>>>
}

/** `GET /api/server`. */
export interface ServerInfo {
  readonly readOnly: boolean
  readonly seq: number
  readonly qmpFlags: ReadonlyArray<string> | null
}

interface Logged {
  readonly id: string
  readonly seq: number
  readonly timestamp: number
}

interface ProgressFields extends Logged {
  readonly type: string
  readonly len: number
  readonly offset: number
  readonly speed: number
}

/** One event of the engine's log, as `GET /api/events` sends it. */
export type JobEvent =
  | (Logged & { readonly _tag: "StatusChange"; readonly status: JobStatus })
  | (ProgressFields & { readonly _tag: "Ready" })
  | (Logged & { readonly _tag: "Pending"; readonly type: string })
  | (ProgressFields & { readonly _tag: "Completed"; readonly error?: string })
  | (ProgressFields & { readonly _tag: "Cancelled" })

/** The `data` of `event: reset`. */
export interface Reset {
  readonly oldest: number
  readonly seq: number
  readonly jobs: ReadonlyArray<JobView>
}

/** The `data` of `event: progress`. */
export interface Progress {
  readonly seq: number
  readonly jobs: ReadonlyArray<JobView>
}

/** The body of a POST creating jobs, as `POST /api/transactions` takes it (a job alone for `POST /api/jobs`). */
export interface CreateJob {
  readonly type: string
  readonly id: string
  readonly params: Readonly<Record<string, unknown>>
  readonly speed?: number
  readonly manualFinalize?: boolean
  readonly manualDismiss?: boolean
}

export interface CreateTransaction {
  readonly completionMode: "grouped" | "individual"
  readonly jobs: ReadonlyArray<CreateJob>
}

/** The API's error body: QMP's class and QEMU's text. */
export interface ApiError {
  readonly status: number
  readonly class: string
  readonly desc: string
}

export type Answer<A> = { readonly ok: true; readonly value: A } | { readonly ok: false; readonly error: ApiError }

const readAnswer = async <A>(response: Response): Promise<Answer<A>> => {
  const text = await response.text()
  let body: unknown = undefined
  try {
    body = text === "" ? undefined : JSON.parse(text)
  } catch {
    // Not JSON: said below with the status.
  }
  if (response.ok) return { ok: true, value: body as A }
  const error = (body as { error?: { class?: string; desc?: string } } | undefined)?.error
  return {
    ok: false,
    error: {
      status: response.status,
      class: error?.class ?? "GenericError",
      desc: error?.desc ?? `HTTP ${response.status} ${response.statusText}`
    }
  }
}

const unreachable = (error: unknown): Answer<never> => ({
  ok: false,
  error: { status: 0, class: "NetworkError", desc: `The server cannot be reached (${String(error)})` }
})

/** `GET path` as JSON. */
export const get = <A>(path: string): Promise<Answer<A>> =>
  fetch(path, { headers: { accept: "application/json" }, cache: "no-store" }).then(readAnswer<A>, unreachable)

/** `POST path` with a JSON body (`{}` by default). */
export const post = <A = undefined>(path: string, body: unknown = {}): Promise<Answer<A>> =>
  fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify(body)
  }).then(readAnswer<A>, unreachable)

/** A path segment for an id. */
export const segment = (id: string): string => encodeURIComponent(id)

/** The answer of `POST /api/transactions`. */
export interface TransactionCreated {
  readonly txn: string | null
  readonly jobs: ReadonlyArray<JobView>
}
