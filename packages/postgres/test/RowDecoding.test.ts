/**
 * The row decoding of the store's reads: `numberAt` (the position, version and recorded time of the packed column)
 * is `Number` of the same slice, for every string.
 */
import { assert, describe, it } from "@effect/vitest"
import { FastCheck } from "effect"
import { numberAt } from "../src/internal/reading.js"

const same = (a: number, b: number) => Object.is(a, b)

describe("row decoding", () => {
  it("numberAt is Number(slice) on int8 / float8 text and anything else", () => {
    const field = FastCheck.oneof(
      FastCheck.bigInt({ min: 0n, max: 2n ** 63n - 1n }).map(String),
      FastCheck.integer({ min: 0, max: 10 ** 15 }).map(String),
      FastCheck.double({ noNaN: false }).map(String),
      FastCheck.double({ min: 1e12, max: 3e12, noNaN: true }).map(String),
      FastCheck.stringMatching(/^[0-9]{0,20}$/),
      FastCheck.string({ maxLength: 20 }),
      FastCheck.constantFrom("", "0", "007", "-1", "+1", "1e3", "1.5", " 1", "Infinity", "NaN", "999999999999999")
    )
    FastCheck.assert(
      FastCheck.property(
        FastCheck.string({ maxLength: 3 }),
        field,
        FastCheck.string({ maxLength: 3 }),
        (before, f, after) => {
          const k = before + f + after
          assert(same(numberAt(k, before.length, before.length + f.length), Number(f)), JSON.stringify(f))
        }
      ),
      { numRuns: 5000 }
    )
  })
})
