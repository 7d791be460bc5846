import { assert, describe, it } from "@effect/vitest"
import { Effect, Ref } from "effect"
import { table } from "../src/internal/output.js"
import { bar, describe as describeSample, type Sample, track } from "../src/internal/progress.js"

describe("progress", () => {
  it("draws a bar of the fraction, clamped", () => {
    assert.strictEqual(bar(0, 10), "[..........]")
    assert.strictEqual(bar(0.5, 10), "[#####.....]")
    assert.strictEqual(bar(1.7, 10), "[##########]")
    assert.strictEqual(bar(Number.NaN, 4), "[####]")
  })

  it("describes a sample from the position the replay started at", () => {
    const sample: Sample = { checkpoint: 150, head: 200, waiting: undefined, done: false }
    assert.strictEqual(
      describeSample(sample, 100, 25.4),
      "[###############...............]  50%  checkpoint 150/200  lag 50  25/s"
    )
    assert.strictEqual(
      describeSample({ ...sample, waiting: "waiting for the consumer" }, 100, undefined),
      "waiting for the consumer  (checkpoint 150/200  lag 50)"
    )
  })

  it.live("samples until done and returns the last sample", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const sample = Ref.updateAndGet(calls, (n) => n + 1).pipe(
        Effect.map((n): Sample => ({ checkpoint: n * 10, head: 30, waiting: undefined, done: n * 10 >= 30 }))
      )
      const last = yield* track(sample, { mode: "json", start: 0, interval: 1 })
      assert.deepStrictEqual([last.checkpoint, yield* Ref.get(calls)], [30, 3])
    }))
})

describe("tables", () => {
  it("align columns two spaces apart, right-aligned where asked, the last one unpadded", () => {
    const rows = [{ a: "x", n: 5, z: "last" }, { a: "longer", n: 12345, z: "l" }]
    assert.deepStrictEqual(
      table([
        { header: "A", cell: (r: typeof rows[number]) => r.a },
        { header: "N", cell: (r: typeof rows[number]) => String(r.n), align: "right" },
        { header: "Z", cell: (r: typeof rows[number]) => r.z }
      ], rows),
      ["A           N  Z", "x           5  last", "longer  12345  l"]
    )
  })
})
