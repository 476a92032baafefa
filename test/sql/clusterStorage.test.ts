/**
 * effect's cluster storage on the `node:sqlite` client: `SqlRunnerStorage` and
 * `SqlMessageStorage` built on a database file in a temporary directory, and
 * used through their service interfaces as a runner uses them. They pick
 * their SQL by the client's dialect, which is SQLite's here.
 */
import { NodeCrypto } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Context, DateTime, Effect, Exit, Layer, Option, PrimaryKey, Schema, type Scope } from "effect"
import {
  DeliverAt,
  EntityAddress,
  EntityId,
  EntityType,
  Envelope,
  Message,
  MessageStorage,
  Reply,
  Runner,
  RunnerAddress,
  RunnerStorage,
  ShardId,
  ShardingConfig,
  Snowflake,
  SqlMessageStorage,
  SqlRunnerStorage
} from "effect/cluster"
import { Headers } from "effect/http"
import { Rpc } from "effect/rpc"
import { SqlClient } from "effect/sql"
import { TestClock } from "effect/testing"
import * as fs from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as NodeSqliteClient from "../../src/sql/NodeSqliteClient.ts"

/** A database file in a fresh directory, removed with its contents when the scope closes. */
const databaseFile: Effect.Effect<string, never, Scope.Scope> = Effect.map(
  Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(join(tmpdir(), "effect-jobs-cluster-"))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  ),
  (dir) => join(dir, "cluster.db")
)

const shardingConfig = ShardingConfig.layer({ shardsPerGroup: 8 })

/**
 * Both storages on one client, as a runner has them; each layer runs its
 * migrations when it is built.
 */
const clusterStorageOn = (filename: string) =>
  Layer.mergeAll(SqlRunnerStorage.layer, SqlMessageStorage.layer).pipe(
    Layer.provide([shardingConfig, NodeCrypto.layerDigest]),
    Layer.provideMerge(NodeSqliteClient.layer({ filename, busyTimeout: "2 seconds" }))
  )

type ClusterStorage = RunnerStorage.RunnerStorage | MessageStorage.MessageStorage | SqlClient.SqlClient

/** Runs `effect` with the cluster storage on a file of its own. */
const withClusterStorage = <A, E>(effect: Effect.Effect<A, E, ClusterStorage | Scope.Scope>) =>
  Effect.provide(effect, Layer.unwrap(Effect.map(databaseFile, clusterStorageOn)))

/** The cluster storage on `filename`, for the life of the scope: another runner's view of the same database. */
const openClusterStorage = (filename: string) =>
  Effect.map(Layer.build(clusterStorageOn(filename)), (context) => ({
    runners: Context.get(context, RunnerStorage.RunnerStorage),
    messages: Context.get(context, MessageStorage.MessageStorage),
    sql: Context.get(context, SqlClient.SqlClient)
  }))

const clusterTables = SqlClient.SqlClient.use((sql) =>
  Effect.map(
    sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'cluster%' ORDER BY name`,
    (rows) => rows.map((row) => row.name)
  )
)

const runnerAt = (port: number) =>
  Runner.make({ address: RunnerAddress.make("127.0.0.1", port), groups: ["default"], weight: 1 })

const shard = (id: number) => ShardId.make("default", id)

/** Shard ids as sorted strings: the storage returns them in no particular order. */
const shardNames = (shards: ReadonlyArray<ShardId.ShardId>) => shards.map((id) => id.toString()).sort()

/** Ports of the runners listed, with their health. */
const listed = (runners: ReadonlyArray<readonly [Runner.Runner, boolean]>) =>
  runners.map(([runner, healthy]) => [runner.address.port, healthy] as const).sort(([a], [b]) => a - b)

// A lock or a heartbeat expires by the database's clock (CURRENT_TIMESTAMP), which no
// TestClock moves: to let one expire, its time in the table is set an hour back.
const ageLock = (shardId: ShardId.ShardId) =>
  SqlClient.SqlClient.use((sql) =>
    sql`UPDATE cluster_locks SET acquired_at = datetime('now', '-1 hour') WHERE shard_id = ${shardId.toString()}`
  )
const ageHeartbeat = (runner: Runner.Runner) =>
  SqlClient.SqlClient.use((sql) =>
    sql`UPDATE cluster_runners SET last_heartbeat = datetime('now', '-1 hour')
        WHERE address = ${`${runner.address.host}:${runner.address.port}`}`
  )

class GreetPayload extends Schema.Class<GreetPayload>("GreetPayload")({
  id: Schema.String,
  name: Schema.String
}) {
  // Requests with the same primary key are one request: saving it again is a duplicate.
  [PrimaryKey.symbol]() {
    return this.id
  }
}
const Greet = Rpc.make("Greet", { payload: GreetPayload, success: Schema.String })
const Count = Rpc.make("Count", { payload: { to: Schema.Number }, success: Schema.Number, stream: true })

class RemindPayload extends Schema.Class<RemindPayload>("RemindPayload")({ at: Schema.Number }) {
  // Not to be delivered before `at` (Unix milliseconds).
  [DeliverAt.symbol]() {
    return DateTime.makeUnsafe(this.at)
  }
}
const Remind = Rpc.make("Remind", { payload: RemindPayload })

const greeter = (entityId: string, shardId = shard(1)) =>
  EntityAddress.make({ shardId, entityType: EntityType.make("Greeter"), entityId: EntityId.make(entityId) })

/** A request as a runner's client sends it. */
const outgoing = <R extends Rpc.Any>(rpc: R, options: {
  readonly requestId: Snowflake.Snowflake
  readonly address: EntityAddress.EntityAddress
  readonly payload: Rpc.Payload<R>
}) =>
  new Message.OutgoingRequest<R>({
    envelope: Envelope.makeRequest<R>({ ...options, tag: rpc._tag as Rpc.Tag<R>, headers: Headers.empty }),
    context: Context.empty() as Context.Context<Rpc.Services<R>>,
    lastReceivedReply: Option.none(),
    rpc,
    respond: () => Effect.void,
    annotations: Context.empty()
  })

/** A "Greet" request to `address`, with `key` as its primary key. */
const greeting = (requestId: Snowflake.Snowflake, key: string, address = greeter("e1")) =>
  outgoing(Greet, { requestId, address, payload: new GreetPayload({ id: key, name: address.entityId }) })

/** The message storage, an id generator, and a "Greet" request (key "g1") saved in it. */
const savedGreeting = Effect.gen(function*() {
  const storage = yield* MessageStorage.MessageStorage
  const ids = yield* Snowflake.makeGenerator
  const request = greeting(ids.nextUnsafe(), "g1")
  yield* storage.saveRequest(request)
  return { storage, ids, request, requestId: request.envelope.requestId }
})

/** A reply as a runner's entity sends it. */
const withContext = <R extends Rpc.Any>(rpc: R, reply: Reply.Reply<R>) =>
  new Reply.ReplyWithContext<R>({ reply, rpc, context: Context.empty() as Context.Context<Rpc.Services<R>> })

/** The entity's answer to a "Greet" request. */
const greeted = (requestId: Snowflake.Snowflake, id: Snowflake.Snowflake, text: string) =>
  withContext(Greet, new Reply.WithExit({ requestId, id, exit: Exit.succeed(text) }))

/** Each message read, as its kind and request id. */
const summary = (messages: ReadonlyArray<Message.Incoming<any>>) =>
  messages.map((message) => `${message.envelope._tag} ${message.envelope.requestId}`)

/** The entities the messages read are for. */
const entities = (messages: ReadonlyArray<Message.Incoming<any>>) =>
  messages.map((message) => message.envelope.address.entityId)

describe("effect's cluster SQL storage on NodeSqliteClient", () => {
  it.live("creates the cluster tables and records its migrations once", () =>
    Effect.gen(function*() {
      const filename = yield* databaseFile
      const first = yield* openClusterStorage(filename)
      // The storages choose their SQL by the compiler's dialect, which is what makes them run here.
      assert.strictEqual(first.sql.onDialectOrElse({ sqlite: () => "sqlite", orElse: () => "another" }), "sqlite")
      assert.deepStrictEqual(yield* Effect.provideService(clusterTables, SqlClient.SqlClient, first.sql), [
        "cluster_locks",
        "cluster_messages",
        "cluster_migrations",
        "cluster_replies",
        "cluster_runner_migrations",
        "cluster_runners"
      ])
      const history = (sql: SqlClient.SqlClient) =>
        Effect.all([
          sql`SELECT migration_id, name FROM cluster_runner_migrations ORDER BY migration_id`,
          sql`SELECT migration_id, name FROM cluster_migrations ORDER BY migration_id`
        ])
      const recorded = yield* history(first.sql)
      assert.deepStrictEqual(recorded[0], [{ migration_id: 1, name: "create_tables" }])
      assert.deepStrictEqual(recorded[1].map((row) => row.name), [
        "create_tables",
        "entity_type_size",
        "pg_messages_rowid_index",
        "mssql_lookup_indexes",
        "retention_index"
      ])
      // A second runner on the same file finds them done and runs none again.
      const second = yield* openClusterStorage(filename)
      assert.deepStrictEqual(yield* history(second.sql), recorded)
    }))

  it.live("a request one runner saves is read by the runner that holds its shard, and the reply goes back", () =>
    Effect.gen(function*() {
      const filename = yield* databaseFile
      const sender = yield* openClusterStorage(filename)
      const owner = yield* openClusterStorage(filename)
      const ids = yield* Snowflake.makeGenerator
      const request = greeting(ids.nextUnsafe(), "g1", greeter("e1", shard(5)))
      yield* sender.messages.saveRequest(request)
      const [received, ...others] = yield* owner.messages.unprocessedMessages([shard(5)])
      assert.deepStrictEqual(others, [])
      assert.strictEqual(received.envelope.requestId, request.envelope.requestId)
      assert.strictEqual(received._tag, "IncomingRequest")
      if (received._tag === "IncomingRequest") {
        // The entity answers through the message it was handed, which saves the reply.
        yield* received.respond(greeted(received.envelope.requestId, ids.nextUnsafe(), "Hello, e1"))
      }
      const replies = yield* sender.messages.repliesFor([request])
      assert.deepStrictEqual(replies.map((reply) => reply._tag === "WithExit" && reply.exit), [
        Exit.succeed("Hello, e1")
      ])
    }))
})

describe("effect's SqlRunnerStorage on NodeSqliteClient", () => {
  it.effect("registers runners, lists them with their health, and unregisters them", () =>
    withClusterStorage(Effect.gen(function*() {
      const storage = yield* RunnerStorage.RunnerStorage
      const a = runnerAt(4001)
      const b = runnerAt(4002)
      const machineA = yield* storage.register(a, true)
      const machineB = yield* storage.register(b, false)
      assert.notStrictEqual(machineA, machineB)
      // Registering again (a restart at the same address) keeps the machine id.
      assert.strictEqual(yield* storage.register(a, true), machineA)
      assert.deepStrictEqual(listed(yield* storage.getRunners), [[4001, true], [4002, false]])
      yield* storage.setRunnerHealth(b.address, true)
      yield* storage.setRunnerHealth(a.address, false)
      assert.deepStrictEqual(listed(yield* storage.getRunners), [[4001, false], [4002, true]])
      yield* storage.unregister(a.address)
      assert.deepStrictEqual(listed(yield* storage.getRunners), [[4002, true]])
    })))

  it.effect("a runner whose heartbeat is stale drops out of the list; a refresh brings it back", () =>
    withClusterStorage(Effect.gen(function*() {
      const storage = yield* RunnerStorage.RunnerStorage
      const a = runnerAt(4001)
      const b = runnerAt(4002)
      yield* storage.register(a, true)
      yield* storage.register(b, true)
      yield* ageHeartbeat(b)
      assert.deepStrictEqual(listed(yield* storage.getRunners), [[4001, true]])
      // A refresh without shards is the heartbeat alone.
      assert.deepStrictEqual(yield* storage.refresh(b.address, []), [])
      assert.deepStrictEqual(listed(yield* storage.getRunners), [[4001, true], [4002, true]])
      // Unregistering one runner also sweeps away those whose heartbeat has stopped.
      yield* ageHeartbeat(b)
      yield* storage.unregister(runnerAt(4003).address)
      yield* storage.refresh(b.address, [])
      assert.deepStrictEqual(listed(yield* storage.getRunners), [[4001, true]])
    })))

  it.live("a shard locked by one runner is refused to another until released or expired", () =>
    Effect.gen(function*() {
      const filename = yield* databaseFile
      // Two runners, each with its own connection to the file, as two processes would be.
      const one = yield* openClusterStorage(filename)
      const two = yield* openClusterStorage(filename)
      const a = runnerAt(4001).address
      const b = runnerAt(4002).address

      assert.deepStrictEqual(
        shardNames(yield* one.runners.acquire(a, [shard(1), shard(2)])),
        ["default:1", "default:2"]
      )
      assert.deepStrictEqual(shardNames(yield* two.runners.acquire(b, [shard(2), shard(3)])), ["default:3"])
      // Acquiring what it already holds is no loss.
      assert.deepStrictEqual(shardNames(yield* one.runners.acquire(a, [shard(1)])), ["default:1"])
      // A refresh confirms only the locks the runner holds.
      assert.deepStrictEqual(
        shardNames(yield* one.runners.refresh(a, [shard(1), shard(2), shard(3)])),
        ["default:1", "default:2"]
      )
      assert.deepStrictEqual(shardNames(yield* two.runners.refresh(b, [shard(2), shard(3)])), ["default:3"])

      yield* one.runners.release(a, shard(2))
      assert.deepStrictEqual(shardNames(yield* two.runners.acquire(b, [shard(2)])), ["default:2"])
      // Releasing a lock another runner holds does nothing.
      yield* one.runners.release(a, shard(3))
      assert.deepStrictEqual(shardNames(yield* one.runners.acquire(a, [shard(3)])), [])

      // A lock not refreshed in time expires, and another runner may take it.
      yield* Effect.provideService(ageLock(shard(1)), SqlClient.SqlClient, one.sql)
      assert.deepStrictEqual(shardNames(yield* two.runners.acquire(b, [shard(1)])), ["default:1"])
      assert.deepStrictEqual(shardNames(yield* one.runners.refresh(a, [shard(1)])), [])

      yield* two.runners.releaseAll(b)
      assert.deepStrictEqual(
        shardNames(yield* one.runners.acquire(a, [shard(1), shard(2), shard(3)])),
        ["default:1", "default:2", "default:3"]
      )
    }))
})

describe("effect's SqlMessageStorage on NodeSqliteClient", () => {
  it.live("saves a request once: another with the same primary key is a duplicate of the first", () =>
    withClusterStorage(Effect.gen(function*() {
      const storage = yield* MessageStorage.MessageStorage
      const ids = yield* Snowflake.makeGenerator
      const first = greeting(ids.nextUnsafe(), "g1")
      assert.deepStrictEqual(yield* storage.saveRequest(first), MessageStorage.SaveResult.Success())
      const duplicate = yield* storage.saveRequest(greeting(ids.nextUnsafe(), "g1"))
      assert.strictEqual(duplicate._tag, "Duplicate")
      assert.strictEqual(duplicate._tag === "Duplicate" && duplicate.originalId, first.envelope.requestId)
      assert.isTrue(duplicate._tag === "Duplicate" && Option.isNone(duplicate.lastReceivedReply))
      const requestFor = (id: string) => storage.requestIdForPrimaryKey({ address: greeter("e1"), tag: "Greet", id })
      assert.deepStrictEqual(yield* requestFor("g1"), Option.some(first.envelope.requestId))
      assert.deepStrictEqual(yield* requestFor("g2"), Option.none())

      // Sent at once by many fibers, one key is still stored once.
      const racing = yield* Effect.all(
        Array.from({ length: 10 }, () => storage.saveRequest(greeting(ids.nextUnsafe(), "g2"))),
        { concurrency: "unbounded" }
      )
      const stored = yield* requestFor("g2")
      assert.isTrue(Option.isSome(stored))
      assert.strictEqual(racing.filter((result) => result._tag === "Success").length, 1)
      for (const result of racing) {
        if (result._tag === "Duplicate") assert.deepStrictEqual(Option.some(result.originalId), stored)
      }

      // A key too long for the message_id column is stored as its digest, and still found.
      const longKey = "k".repeat(300)
      const long = greeting(ids.nextUnsafe(), longKey)
      assert.strictEqual((yield* storage.saveRequest(long))._tag, "Success")
      const longDuplicate = yield* storage.saveRequest(greeting(ids.nextUnsafe(), longKey))
      assert.strictEqual(longDuplicate._tag === "Duplicate" && longDuplicate.originalId, long.envelope.requestId)
      assert.deepStrictEqual(yield* requestFor(longKey), Option.some(long.envelope.requestId))
    })))

  it.live("reads unprocessed requests of its shards, claims them, and releases them on reset", () =>
    withClusterStorage(Effect.gen(function*() {
      const storage = yield* MessageStorage.MessageStorage
      const ids = yield* Snowflake.makeGenerator
      yield* storage.saveRequest(greeting(ids.nextUnsafe(), "g1", greeter("e1", shard(1))))
      yield* storage.saveRequest(greeting(ids.nextUnsafe(), "g2", greeter("e2", shard(1))))
      yield* storage.saveRequest(greeting(ids.nextUnsafe(), "g3", greeter("e3", shard(2))))

      const read = yield* storage.unprocessedMessages([shard(1)])
      assert.deepStrictEqual(entities(read), ["e1", "e2"])
      const [e1] = read
      assert.strictEqual(e1._tag, "IncomingRequest")
      assert.deepStrictEqual(e1._tag === "IncomingRequest" && e1.envelope.payload, { id: "g1", name: "e1" })
      // What was read is claimed: a second read does not give it again.
      assert.deepStrictEqual(yield* storage.unprocessedMessages([shard(1)]), [])
      assert.deepStrictEqual(summary(yield* storage.unprocessedMessagesById([e1.envelope.requestId])), [
        `Request ${e1.envelope.requestId}`
      ])
      // When the shard is reset (it moves to another runner), its messages are unclaimed.
      yield* storage.resetShards([shard(1)])
      assert.deepStrictEqual(entities(yield* storage.unprocessedMessages([shard(1), shard(2)], { limit: 2 })), [
        "e1",
        "e2"
      ])
      assert.deepStrictEqual(entities(yield* storage.unprocessedMessages([shard(1), shard(2)])), ["e3"])
      yield* storage.resetAddress(greeter("e2"))
      const addresses = [greeter("e1"), greeter("e2")]
      assert.deepStrictEqual(entities(yield* storage.unprocessedMessages([shard(1)], { addresses })), ["e2"])
      // Clearing an address removes its messages altogether.
      yield* storage.clearAddress(greeter("e1"))
      yield* storage.resetShards([shard(1)])
      assert.deepStrictEqual(entities(yield* storage.unprocessedMessages([shard(1)])), ["e2"])
    })))

  it.live("a saved reply is the one read back, and its request is then processed", () =>
    withClusterStorage(Effect.gen(function*() {
      const { ids, request, requestId, storage } = yield* savedGreeting
      assert.deepStrictEqual(yield* storage.repliesFor([request]), [])
      const replyId = ids.nextUnsafe()
      yield* storage.saveReply(greeted(requestId, replyId, "Hello, e1"))
      const [reply, ...others] = yield* storage.repliesFor([request])
      assert.deepStrictEqual(others, [])
      assert.strictEqual(reply._tag, "WithExit")
      assert.strictEqual(reply.id, replyId)
      assert.strictEqual(reply.requestId, requestId)
      assert.deepStrictEqual(reply._tag === "WithExit" && reply.exit, Exit.succeed("Hello, e1"))
      // Answered, it is no longer unprocessed, even after a reset.
      yield* storage.resetShards([shard(1)])
      assert.deepStrictEqual(yield* storage.unprocessedMessages([shard(1)]), [])
      // A duplicate of an answered request gets the answer.
      const duplicate = yield* storage.saveRequest(greeting(ids.nextUnsafe(), "g1"))
      const last = duplicate._tag === "Duplicate" ? Option.getOrUndefined(duplicate.lastReceivedReply) : undefined
      assert.deepStrictEqual(last?._tag === "WithExit" ? [last.id, last.exit] : last, [
        replyId,
        Exit.succeed("Hello, e1")
      ])

      // A completed request goes once its reply is older than the cut-off, and not before.
      const completedAt = Snowflake.timestamp(replyId)
      const deleteBefore = (completedBefore: number) =>
        storage.deleteProcessed({ entityType: "Greeter", completedBefore, limit: 10 })
      assert.strictEqual(yield* deleteBefore(completedAt), 0)
      assert.strictEqual(yield* deleteBefore(completedAt + 1), 1)
      assert.deepStrictEqual(yield* storage.repliesForUnfiltered([requestId]), [])
      assert.deepStrictEqual(
        yield* storage.requestIdForPrimaryKey({ address: greeter("e1"), tag: "Greet", id: "g1" }),
        Option.none()
      )
    })))

  it.live("clearing a request's reply hands the request out again; a stale clear leaves it", () =>
    withClusterStorage(Effect.gen(function*() {
      const { ids, request, requestId, storage } = yield* savedGreeting
      const replyId = ids.nextUnsafe()
      yield* storage.saveReply(greeted(requestId, replyId, "Hello, e1"))
      // Guarded by a reply that is not the latest one, the clear does nothing.
      yield* storage.clearReplies(requestId, { expectedReplyId: ids.nextUnsafe() })
      assert.deepStrictEqual((yield* storage.repliesFor([request])).map((reply) => reply.id), [replyId])
      yield* storage.clearReplies(requestId, { expectedReplyId: replyId })
      assert.deepStrictEqual(yield* storage.repliesFor([request]), [])
      assert.deepStrictEqual(summary(yield* storage.unprocessedMessages([shard(1)])), [`Request ${requestId}`])
      // Claimed again by that read; releasing the claim on the request alone hands it out once more.
      assert.deepStrictEqual(yield* storage.unprocessedMessages([shard(1)]), [])
      yield* storage.resetRequests([requestId])
      assert.deepStrictEqual(summary(yield* storage.unprocessedMessages([shard(1)])), [`Request ${requestId}`])
    })))

  it.live("a reply saved in a transaction that fails is not kept", () =>
    withClusterStorage(Effect.gen(function*() {
      const { ids, request, requestId, storage } = yield* savedGreeting
      const failed = yield* Effect.exit(storage.withTransaction(
        Effect.andThen(storage.saveReply(greeted(requestId, ids.nextUnsafe(), "lost")), Effect.fail("refused" as const))
      ))
      assert.deepStrictEqual(failed, Exit.fail("refused" as const))
      assert.deepStrictEqual(yield* storage.repliesFor([request]), [])
      assert.deepStrictEqual(summary(yield* storage.unprocessedMessages([shard(1)])), [`Request ${requestId}`])
    })))

  it.live("a streamed reply chunk stays pending until acknowledged; an interrupt is delivered", () =>
    withClusterStorage(Effect.gen(function*() {
      const storage = yield* MessageStorage.MessageStorage
      const ids = yield* Snowflake.makeGenerator
      const address = greeter("counter")
      const request = outgoing(Count, { requestId: ids.nextUnsafe(), address, payload: { to: 3 } })
      const requestId = request.envelope.requestId
      yield* storage.saveRequest(request)
      assert.deepStrictEqual(summary(yield* storage.unprocessedMessages([shard(1)])), [`Request ${requestId}`])

      const chunkId = ids.nextUnsafe()
      const sent = new Reply.Chunk({ requestId, id: chunkId, sequence: 0, values: [1, 2] as const })
      yield* storage.saveReply(withContext(Count, sent))
      const [chunk] = yield* storage.repliesFor([request])
      assert.deepStrictEqual(chunk._tag === "Chunk" && [chunk.id, chunk.sequence, chunk.values], [chunkId, 0, [1, 2]])
      // While the chunk is unacknowledged, the request is not handed out again.
      yield* storage.resetShards([shard(1)])
      assert.deepStrictEqual(yield* storage.unprocessedMessages([shard(1)]), [])

      const ack = new Envelope.AckChunk({ id: ids.nextUnsafe(), address, requestId, replyId: chunkId })
      yield* storage.saveEnvelope(new Message.OutgoingEnvelope({ envelope: ack, rpc: Count }))
      assert.deepStrictEqual(yield* storage.repliesFor([request]), [])
      // Acknowledged, the request is handed out again, with the chunk it last sent.
      const resumed = yield* storage.unprocessedMessages([shard(1)])
      assert.deepStrictEqual(summary(resumed), [`Request ${requestId}`, `AckChunk ${requestId}`])
      const [again] = resumed
      assert.deepStrictEqual(
        again._tag === "IncomingRequest" ? Option.map(again.lastSentReply, (reply) => reply.id) : undefined,
        Option.some(String(chunkId))
      )

      yield* storage.saveEnvelope(Message.OutgoingEnvelope.interrupt({ address, id: ids.nextUnsafe(), requestId }))
      assert.deepStrictEqual(summary(yield* storage.unprocessedMessages([shard(1)])), [`Interrupt ${requestId}`])
      const interrupted = new Reply.WithExit({ requestId, id: ids.nextUnsafe(), exit: Exit.interrupt() })
      yield* storage.saveReply(withContext(Count, interrupted))
      yield* storage.resetShards([shard(1)])
      assert.deepStrictEqual(yield* storage.unprocessedMessages([shard(1)]), [])
      assert.deepStrictEqual((yield* storage.repliesFor([request])).map((reply) => reply._tag), ["WithExit"])
    })))

  it.effect("keeps a request for later delivery until its time has come", () =>
    Effect.gen(function*() {
      const now = Date.UTC(2026, 0, 1)
      yield* TestClock.setTime(now)
      // Built under the TestClock: the storage takes "now" from Effect's clock.
      yield* withClusterStorage(Effect.gen(function*() {
        const storage = yield* MessageStorage.MessageStorage
        const ids = yield* Snowflake.makeGenerator
        const request = outgoing(Remind, {
          requestId: ids.nextUnsafe(),
          address: greeter("e1"),
          payload: new RemindPayload({ at: now + 60_000 })
        })
        yield* storage.saveRequest(request)
        assert.deepStrictEqual(yield* storage.unprocessedMessages([shard(1)]), [])
        yield* TestClock.adjust("59 seconds")
        assert.deepStrictEqual(yield* storage.unprocessedMessages([shard(1)]), [])
        yield* TestClock.adjust("1 second")
        assert.deepStrictEqual(summary(yield* storage.unprocessedMessages([shard(1)])), [
          `Request ${request.envelope.requestId}`
        ])
      }))
    }))
})
