import { EventStore, ExpectedVersion, InMemoryEventStore, StoreKit, StreamId } from "@effect-eventsourcing/core"
import { assert, describe, it } from "@effect/vitest"
import { DateTime, Deferred, Effect, Either, Exit, Fiber, Option, Scope, TestClock } from "effect"

const s = (id: string) => StreamId.unsafeMake("acc", id)
const uuid = (n: number) => `7f0c4d1e-0000-4000-8000-${n.toString(16).padStart(12, "0")}`

const stored = (
  id: string,
  streamId: string,
  version: number,
  data: unknown = { n: version }
): readonly [string, StoreKit.StoredEvent] => [id, { streamId, version, position: version * 10, type: "T", data }]

const request = (
  streamId: string,
  events: ReadonlyArray<EventStore.EventData>
): EventStore.AppendRequest => ({ streamId: streamId as StreamId.StreamId, events, expected: ExpectedVersion.Any })

const conflict = (outcome: ReturnType<typeof StoreKit.replay>): EventStore.EventIdConflict => {
  assert(outcome instanceof EventStore.EventIdConflict, `expected an EventIdConflict, got ${JSON.stringify(outcome)}`)
  return outcome
}

describe("StoreKit.replay", () => {
  const db = new Map([stored(uuid(1), "acc-1", 1), stored(uuid(2), "acc-1", 2), stored(uuid(3), "acc-2", 1)])
  const lookup = (id: string) => db.get(id)

  it("is undefined when no event carries an id, or no given id is stored", () => {
    let calls = 0
    const counting = (id: string) => {
      calls++
      return db.get(id)
    }
    assert.strictEqual(StoreKit.replay([request("acc-1", [{ type: "T", data: {} }])], counting), undefined)
    assert.strictEqual(calls, 0, "no lookup without ids")
    assert.strictEqual(StoreKit.replay([request("acc-9", [{ id: uuid(9), type: "T", data: {} }])], counting), undefined)
    assert.strictEqual(calls, 1)
  })

  it("returns the last stored event of each request for an exact re-send (empty requests: undefined)", () => {
    const outcome = StoreKit.replay([
      request("acc-1", [{ id: uuid(1), type: "T", data: { n: 1 } }, { id: uuid(2), type: "T", data: { n: 2 } }]),
      request("acc-3", []),
      request("acc-2", [{ id: uuid(3), type: "T", data: { n: 1 } }])
    ], lookup)
    assert(Array.isArray(outcome))
    assert.deepStrictEqual(outcome.map((e) => e?.position), [20, undefined, 10])
  })

  it("compares data as JSON values, whatever the key order", () => {
    const nested = new Map([stored(uuid(1), "acc-1", 1, { a: 1, b: [1, { c: 2, d: null }] })])
    const outcome = StoreKit.replay(
      [request("acc-1", [{ id: uuid(1), type: "T", data: { b: [1, { d: null, c: 2 }], a: 1 } }])],
      (id) => nested.get(id)
    )
    assert(Array.isArray(outcome))
    assert.isTrue(StoreKit.sameContent({ type: "T", data: { x: [1, 2] } }, { type: "T", data: { x: [1, 2] } }))
    assert.isFalse(StoreKit.sameContent({ type: "T", data: { x: [1, 2] } }, { type: "U", data: { x: [1, 2] } }))
    assert.isFalse(StoreKit.sameContent({ type: "T", data: { x: [1, 2] } }, { type: "T", data: { x: [2, 1] } }))
    assert.isFalse(StoreKit.sameContent({ type: "T", data: { x: 1 } }, { type: "T", data: { x: 1, y: 2 } }))
    assert.isFalse(StoreKit.sameContent({ type: "T", data: [1] }, { type: "T", data: { 0: 1 } }))
    // as stored: a Date is its ISO string, undefined fields are absent
    assert.isTrue(StoreKit.sameContent(
      { type: "T", data: { at: new Date(0), gone: undefined, n: 1 } },
      { type: "T", data: { n: 1, at: "1970-01-01T00:00:00.000Z" } }
    ))
    assert.isFalse(StoreKit.sameContent({ type: "T", data: { at: new Date(1) } }, { type: "T", data: { at: "x" } }))
    assert.isFalse(StoreKit.sameContent({ type: "T", data: { a: undefined } }, { type: "T", data: { a: null } }))
    assert.isFalse(
      StoreKit.sameContent({ type: "T", data: { a: 1, b: undefined } }, { type: "T", data: { a: 1, c: 2 } })
    )
  })

  it("reports each conflict with its reason", () => {
    const twice = conflict(StoreKit.replay(
      [
        request("acc-5", [{ id: uuid(7), type: "T", data: {} }]),
        request("acc-6", [{ id: uuid(7), type: "T", data: {} }])
      ],
      lookup
    ))
    assert.deepStrictEqual([twice.streamId, twice.eventId, twice.reason], ["acc-6", uuid(7), StoreKit.reasons.twice])

    const elsewhere = conflict(
      StoreKit.replay([request("acc-2", [{ id: uuid(1), type: "T", data: { n: 1 } }])], lookup)
    )
    assert.deepStrictEqual(
      [elsewhere.streamId, elsewhere.eventId, elsewhere.reason],
      ["acc-2", uuid(1), StoreKit.reasons.otherStream("acc-1")]
    )
    assert.strictEqual(elsewhere.reason, "it is stored in stream acc-1")

    const reordered = conflict(StoreKit.replay(
      [request("acc-1", [{ id: uuid(2), type: "T", data: { n: 2 } }, { id: uuid(1), type: "T", data: { n: 1 } }])],
      lookup
    ))
    assert.deepStrictEqual([reordered.eventId, reordered.reason], [uuid(1), "it is stored at another version"])

    const content = conflict(StoreKit.replay([request("acc-1", [{ id: uuid(1), type: "T", data: { n: 5 } }])], lookup))
    assert.deepStrictEqual([content.eventId, content.reason], [uuid(1), "it is stored with other content"])
    const type = conflict(StoreKit.replay([request("acc-1", [{ id: uuid(1), type: "U", data: { n: 1 } }])], lookup))
    assert.strictEqual(type.reason, "it is stored with other content")
  })

  it("a batch mixing stored and new events names the first stored id, wherever the new one is", () => {
    const cases: ReadonlyArray<ReadonlyArray<EventStore.AppendRequest>> = [
      [request("acc-1", [{ id: uuid(99), type: "T", data: {} }, { id: uuid(1), type: "T", data: { n: 1 } }])],
      [request("acc-1", [{ type: "T", data: {} }, { id: uuid(1), type: "T", data: { n: 1 } }])],
      [request("acc-1", [{ id: uuid(1), type: "T", data: { n: 1 } }, { id: uuid(99), type: "T", data: {} }])],
      [request("acc-1", [{ id: uuid(1), type: "T", data: { n: 1 } }, { type: "T", data: {} }])],
      [
        request("acc-7", [{ id: uuid(98), type: "T", data: {} }]),
        request("acc-1", [{ id: uuid(1), type: "T", data: { n: 1 } }])
      ]
    ]
    for (const requests of cases) {
      const mixed = conflict(StoreKit.replay(requests, lookup))
      assert.deepStrictEqual(
        [mixed.streamId, mixed.eventId, mixed.reason],
        ["acc-1", uuid(1), "the batch mixes new events with stored ones"]
      )
    }
  })

  it("givenIds lists the ids in order, or reports one given twice", () => {
    assert.deepStrictEqual(StoreKit.givenIds([request("acc-1", [{ type: "T", data: {} }])]), [])
    assert.deepStrictEqual(
      StoreKit.givenIds([
        request("acc-1", [{ id: uuid(2), type: "T", data: {} }, { type: "T", data: {} }]),
        request("acc-2", [{ id: uuid(1), type: "T", data: {} }])
      ]),
      [uuid(2), uuid(1)]
    )
    const twice = StoreKit.givenIds([
      request("acc-1", [{ id: uuid(2), type: "T", data: {} }, { id: uuid(2), type: "T", data: {} }])
    ])
    assert(twice instanceof EventStore.EventIdConflict)
    assert.strictEqual(twice.reason, StoreKit.reasons.twice)
  })
})

describe("StoreKit input rules", () => {
  it("utf8Length counts UTF-8 bytes", () => {
    assert.strictEqual(StoreKit.utf8Length(""), 0)
    assert.strictEqual(StoreKit.utf8Length("abc"), 3)
    assert.strictEqual(StoreKit.utf8Length("é"), 2)
    assert.strictEqual(StoreKit.utf8Length("€"), 3)
    assert.strictEqual(StoreKit.utf8Length("😀"), 4)
    assert.strictEqual(StoreKit.utf8Length("a€😀"), 8)
    assert.strictEqual(StoreKit.utf8Length("\ud83d"), 3, "a lone surrogate counts as its replacement character")
    for (const text of ["héllo wörld", "日本語", "emoji 😀🎉👩‍👩‍👧‍👦", "𝔘𝔫𝔦", "\u0800\u07ff\uffff"]) {
      assert.strictEqual(StoreKit.utf8Length(text), Buffer.byteLength(text, "utf8"), text)
    }
  })

  it("stream ids are limited in UTF-8 bytes, not characters", () => {
    assert.strictEqual(StreamId.maxLength, 1000)
    const ok = (id: string) => assert.isTrue(Either.isRight(StreamId.parse(id)), `${id.length} chars`)
    const refused = (id: string) => {
      const result = StreamId.parse(id)
      assert(Either.isLeft(result), `${id.length} chars, ${StoreKit.utf8Length(id)} bytes must be refused`)
      assert.include(result.left.reason, "bytes")
    }
    ok(`a-${"x".repeat(998)}`)
    refused(`a-${"x".repeat(999)}`)
    // three-byte characters: 334 of them are 1,002 bytes although only 336 characters
    ok(`a-${"€".repeat(332)}`)
    refused(`a-${"€".repeat(333)}`)
    refused(`a-${"語".repeat(1000)}`)
    // four-byte characters (two UTF-16 units each)
    ok(`a-${"😀".repeat(249)}`)
    refused(`a-${"😀".repeat(250)}`)
    assert.isFalse(StreamId.isStreamId(`a-${"€".repeat(333)}`))
  })

  it("stream ids refuse NUL characters, lone surrogates and a missing category", () => {
    for (
      const [id, reason] of [
        ["a-b\u0000c", "NUL"],
        ["a-\ud800", "lone surrogate"],
        ["a-x\udc00y", "lone surrogate"],
        ["a-😀\ud83d", "lone surrogate"],
        ["nodash", "<category>-<id>"],
        ["-x", "<category>-<id>"],
        ["a-", "empty id"],
        ["", "empty"]
      ] as const
    ) {
      const result = StreamId.parse(id)
      assert(Either.isLeft(result), JSON.stringify(id))
      assert.include(result.left.reason, reason)
    }
    assert.isTrue(Either.isRight(StreamId.parse("a-😀-ok")))
    const category = StreamId.make("c\ud800", "1")
    assert(Either.isLeft(category))
    assert.include(category.left.reason, "lone surrogate")
  })

  it("textProblem finds NUL characters and lone surrogates only", () => {
    assert.strictEqual(StoreKit.textProblem("plain ascii"), undefined)
    assert.strictEqual(StoreKit.textProblem("emoji 😀 and 𠜎"), undefined)
    assert.include(StoreKit.textProblem("a\u0000b")!, "NUL")
    assert.include(StoreKit.textProblem("\ud83d")!, "U+D83D at index 0")
    assert.include(StoreKit.textProblem("x\ude00")!, "U+DE00 at index 1")
    assert.include(StoreKit.textProblem("\ude00\ud83d")!, "lone surrogate")
  })

  it("isUuid accepts the canonical form in any case", () => {
    assert.isTrue(StoreKit.isUuid(uuid(1)))
    assert.isTrue(StoreKit.isUuid(uuid(1).toUpperCase()))
    for (const bad of ["x-1", "", `{${uuid(1)}}`, uuid(1).replaceAll("-", ""), `${uuid(1)}0`, 42, undefined]) {
      assert.isFalse(StoreKit.isUuid(bad), String(bad))
    }
  })

  it("jsonProblem accepts JSON values and names what is wrong and where", () => {
    for (
      const value of [
        null,
        0,
        -1.5,
        "",
        "😀",
        true,
        [],
        {},
        { a: [1, "x", null, { b: false }] },
        { skipped: undefined, kept: 1 },
        { at: new Date(0) },
        Object.create(null)
      ]
    ) {
      assert.strictEqual(StoreKit.jsonProblem(value), undefined, JSON.stringify(value))
    }
    const cyclic: Record<string, unknown> = { a: 1 }
    cyclic.self = cyclic
    const shared = { x: 1 }
    assert.strictEqual(StoreKit.jsonProblem({ a: shared, b: shared, c: [shared, shared] }), undefined, "not a cycle")
    const cases: ReadonlyArray<readonly [unknown, string]> = [
      [undefined, "undefined is not a JSON value"],
      [10n, "a bigint is not a JSON value"],
      [() => 1, "a function is not a JSON value"],
      [Symbol("s"), "a symbol is not a JSON value"],
      [Number.NaN, "NaN is not a JSON number"],
      [{ n: Number.POSITIVE_INFINITY }, "at .n: Infinity is not a JSON number"],
      [{ a: [1, 2, undefined] }, "at .a[2]: undefined is not a JSON value"],
      [{ a: { f: () => 1 } }, "at .a.f: a function is not a JSON value"],
      [{ note: "x\u0000y" }, "at .note: a string contains a NUL character (U+0000)"],
      [{ deep: [{ "a key": ["\ud800"] }] }, "at .deep[0][\"a key\"][0]: a string contains a lone surrogate"],
      [{ ["k\u0000"]: 1 }, "the key \"k\\u0000\" contains a NUL character"],
      [{ nested: { ["\udc00"]: 1 } }, "at .nested: the key \"\\udc00\" contains a lone surrogate"],
      [cyclic, "at .self: a cycle is not a JSON value"],
      [{ toJSON: () => "\u0000" }, "a string contains a NUL character"],
      [{
        get boom() {
          throw new Error("no")
        }
      }, "cannot be read as JSON (no)"]
    ]
    for (const [value, reason] of cases) {
      const problem = StoreKit.jsonProblem(value)
      assert.isDefined(problem, reason)
      assert.include(problem!, reason)
    }
    let deep: unknown = 1
    for (let i = 0; i < 200_000; i++) deep = [deep]
    assert.include(StoreKit.jsonProblem(deep)!, "cannot be read as JSON")
    assert.strictEqual(StoreKit.jsonProblem({ after: "a deep failure" }), undefined, "the walk recovers")
  })
})

describe("EventStore.make applies the rules for every store", () => {
  it.effect("bad input is a typed error and nothing is written", () =>
    Effect.gen(function*() {
      const store = yield* InMemoryEventStore.make()
      const id = s("bad")
      const invalid = (
        effect: Effect.Effect<unknown, EventStore.AppendError>,
        argument: string,
        reason: string
      ) =>
        Effect.gen(function*() {
          const error = yield* Effect.flip(effect)
          assert(error instanceof EventStore.InvalidArgument, `${argument}: got ${error._tag}`)
          assert.strictEqual(error.argument, argument)
          assert.include(error.reason, reason)
        })
      yield* invalid(store.append(id, [{ type: "", data: {} }], ExpectedVersion.Any), "events[0].type", "empty")
      yield* invalid(
        store.append(id, [{ type: "€".repeat(334), data: {} }], ExpectedVersion.Any),
        "events[0].type",
        "1000 bytes"
      )
      yield* invalid(
        store.append(id, [{ type: "T", data: {} }, { type: "T", data: {}, id: "x-1" }], ExpectedVersion.Any),
        "events[1].id",
        "not a uuid"
      )
      yield* invalid(
        store.append(id, [{ type: "T", data: {}, metadata: ["x"] as never }], ExpectedVersion.Any),
        "events[0].metadata",
        "not a JSON object"
      )
      yield* invalid(store.append(id, [{ type: "T", data: {} }], ExpectedVersion.Exact(-1)), "expected", "Exact(-1)")
      yield* invalid(
        store.appendMany([
          { streamId: s("ok"), events: [{ type: "T", data: {} }], expected: ExpectedVersion.Any },
          { streamId: id, events: [{ type: "T", data: { s: "\ud800" } }], expected: ExpectedVersion.Any }
        ]),
        "requests[1].events[0].data",
        "lone surrogate"
      )
      const badStream = yield* Effect.flip(
        store.append("nodash" as StreamId.StreamId, [{ type: "T", data: {} }], ExpectedVersion.Any)
      )
      assert(badStream instanceof StreamId.InvalidStreamId)
      assert.strictEqual(yield* store.streamVersion(id), 0)
      assert.strictEqual(yield* store.streamVersion(s("ok")), 0)
    }))

  it.effect("event ids are lower-cased: a lower-cased re-send replays", () =>
    Effect.gen(function*() {
      const store = yield* InMemoryEventStore.make()
      const upper = uuid(0xabc).toUpperCase()
      const first = yield* store.append(s("case"), [{ id: upper, type: "T", data: { n: 1 } }], ExpectedVersion.NoStream)
      const again = yield* store.append(
        s("case"),
        [{ id: upper.toLowerCase(), type: "T", data: { n: 1 } }],
        ExpectedVersion.NoStream
      )
      assert.deepStrictEqual(again, first)
      assert.strictEqual(yield* store.streamVersion(s("case")), 1)
    }))
})

describe("StoreKit concurrency and time", () => {
  it.effect("makeDateTimeCache reuses the DateTime of the same millisecond", () =>
    Effect.sync(() => {
      const cache = StoreKit.makeDateTimeCache()
      const a = cache(1_000)
      assert.strictEqual(cache(1_000), a)
      const b = cache(1_001)
      assert.notStrictEqual(b, a)
      assert.strictEqual(b.epochMillis, 1_001)
      assert.strictEqual(DateTime.formatIso(cache(0)), "1970-01-01T00:00:00.000Z")
      assert.strictEqual(cache(1_000).epochMillis, 1_000)
      assert.notStrictEqual(StoreKit.makeDateTimeCache()(5), StoreKit.makeDateTimeCache()(5), "one cache per store")
    }))

  it.effect("a Signal wakes the waiters of the current round only", () =>
    Effect.gen(function*() {
      const signal = StoreKit.makeSignal()
      signal.wake() // nobody waits: nothing happens
      const first = signal.next()
      assert.strictEqual(signal.next(), first)
      const waiter = yield* Effect.fork(Deferred.await(first))
      assert.isFalse(yield* Deferred.isDone(first))
      signal.wake()
      yield* Fiber.join(waiter)
      const second = signal.next()
      assert.notStrictEqual(second, first)
      assert.isFalse(yield* Deferred.isDone(second))
    }))

  it.effect("makeKeyedLock: one holder per key, other keys are free, waiters get it when the scope closes", () =>
    Effect.gen(function*() {
      const lock = StoreKit.makeKeyedLock()
      const scope = yield* Scope.make()
      yield* Scope.extend(lock("a"), scope)
      const order: Array<string> = []
      const second = yield* Effect.fork(Effect.scoped(Effect.zipRight(lock("a"), Effect.sync(() => order.push("a2")))))
      yield* Effect.scoped(Effect.zipRight(lock("b"), Effect.sync(() => order.push("b"))))
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(order, ["b"], "the second taker of a waits")
      assert.isTrue(Option.isNone(yield* second.poll))
      order.push("a1 released")
      yield* Scope.close(scope, Exit.void)
      yield* Fiber.join(second)
      assert.deepStrictEqual(order, ["b", "a1 released", "a2"])
      // an interrupted waiter lets go
      const holder = yield* Scope.make()
      yield* Scope.extend(lock("c"), holder)
      const waiter = yield* Effect.fork(Effect.scoped(lock("c")))
      yield* TestClock.adjust("1 second")
      yield* Fiber.interrupt(waiter)
      yield* Scope.close(holder, Exit.void)
      yield* Effect.scoped(lock("c"))
    }))

  it.effect("makeKeyedLock: waiters get the lock in arrival order; a holder that asks again queues behind them", () =>
    Effect.gen(function*() {
      const lock = StoreKit.makeKeyedLock()
      const order: Array<string> = []
      const take = (name: string) => Effect.scoped(Effect.zipRight(lock("k"), Effect.sync(() => order.push(name))))
      const turns = Effect.repeatN(Effect.yieldNow(), 10)
      const holder = yield* Scope.make()
      yield* Scope.extend(lock("k"), holder)
      const waiters = yield* Effect.forEach(
        ["w1", "w2", "w3"],
        (name) => Effect.zipLeft(Effect.fork(take(name)), turns)
      )
      // the holder lets go and asks again in the same step: with Effect's Semaphore it took the freed permit before
      // any woken waiter ran (order h, w1, w2, w3 became h-again first)
      yield* Scope.close(holder, Exit.void)
      const again = yield* Effect.fork(take("h again"))
      yield* Effect.forEach(waiters, Fiber.join)
      yield* Fiber.join(again)
      assert.deepStrictEqual(order, ["w1", "w2", "w3", "h again"])
    }))

  it.effect("makeKeyedLock: under random interruption of waiters and holders, never two holders, and it ends free", () =>
    Effect.gen(function*() {
      const lock = StoreKit.makeKeyedLock()
      let holding = 0
      let most = 0
      let entered = 0
      const inside = Effect.sync(() => {
        holding++
        entered++
        most = Math.max(most, holding)
      }).pipe(Effect.zipRight(Effect.yieldNow()), Effect.ensuring(Effect.sync(() => holding--)))
      // the count goes down before the lock is let go (the scope closes after `inside` ends, however it ends)
      const critical = Effect.scoped(Effect.zipRight(lock("k"), inside))
      for (let round = 0; round < 20; round++) {
        const fibers = yield* Effect.forEach(Array.from({ length: 20 }), () => Effect.fork(critical))
        for (let i = 0; i < fibers.length; i++) {
          if ((i * 7 + round) % 3 === 0) yield* Fiber.interrupt(fibers[i]!)
          if (i % 4 === 0) yield* Effect.yieldNow()
        }
        yield* Effect.forEach(fibers, Fiber.await)
      }
      assert.strictEqual(most, 1)
      assert.isAbove(entered, 100)
      // nothing is left holding it: a new taker gets it at once
      const free = yield* Effect.scoped(lock("k")).pipe(Effect.timeout("1 second"), Effect.fork)
      yield* TestClock.adjust("2 seconds")
      assert.isTrue(Exit.isSuccess(yield* Fiber.await(free)))
    }))
})
