/**
 * Progress of a consumer catching up (`subscriptions reset --watch`): a bar redrawn in place on a terminal, plain
 * lines (at most one a second, and only when something moved) otherwise, JSON lines with `--json`.
 *
 * @internal
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"

/** @internal One observation: where the consumer is, where the log ends, whether the watch is over. */
export interface Sample {
  readonly checkpoint: number
  readonly head: number
  /** Why the consumer is not moving yet (no consumer holds the subscription, the reset is not applied yet, ...). */
  readonly waiting: string | undefined
  readonly done: boolean
}

/** @internal A bar of `width` cells for a fraction in [0, 1]. */
export const bar = (fraction: number, width = 30): string => {
  const clamped = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 1
  const full = Math.round(clamped * width)
  return `[${"#".repeat(full)}${".".repeat(width - full)}]`
}

/**
 * @internal The text of a sample: bar (from `start`, the position replay began at), percentage, positions, lag and
 * the rate in positions per second; or why it is waiting.
 */
export const describe = (sample: Sample, start: number, rate: number | undefined): string => {
  const lag = Math.max(0, sample.head - sample.checkpoint)
  const positions = `checkpoint ${sample.checkpoint}/${sample.head}  lag ${lag}`
  if (sample.waiting !== undefined) return `${sample.waiting}  (${positions})`
  const span = sample.head - start
  const fraction = span <= 0 ? 1 : (sample.checkpoint - start) / span
  const percent = Math.floor(Math.min(1, Math.max(0, fraction)) * 100)
  const speed = rate === undefined ? "" : `  ${Math.round(rate)}/s`
  return `${bar(fraction)} ${String(percent).padStart(3)}%  ${positions}${speed}`
}

/** @internal How the progress is shown. */
export type Mode = "tty" | "lines" | "json"

/** @internal `tty` when stdout is a terminal (and not `--json`). */
export const modeOf = (json: boolean): Mode => json ? "json" : process.stdout.isTTY === true ? "tty" : "lines"

/**
 * Samples every `interval` until a sample is `done`, showing the progress in `mode`; returns the last sample.
 *
 * @internal
 */
export const track = <E, R>(
  sample: Effect.Effect<Sample, E, R>,
  options: { readonly mode: Mode; readonly start: number; readonly interval?: number }
): Effect.Effect<Sample, E, R> =>
  Effect.suspend(() => {
    const { mode, start } = options
    let previous: { readonly at: number; readonly checkpoint: number } | undefined
    let printed: { readonly at: number; readonly text: string } | undefined
    const show = (current: Sample) =>
      Effect.suspend(() => {
        const now = Date.now()
        const rate = previous !== undefined && now > previous.at
          ? ((current.checkpoint - previous.checkpoint) * 1000) / (now - previous.at)
          : undefined
        previous = { at: now, checkpoint: current.checkpoint }
        if (mode === "json") {
          return Console.log(JSON.stringify({
            checkpoint: current.checkpoint,
            head: current.head,
            lag: Math.max(0, current.head - current.checkpoint),
            ...(current.waiting === undefined ? {} : { waiting: current.waiting }),
            done: current.done
          }))
        }
        const text = describe(current, start, rate !== undefined && rate > 0 ? rate : undefined)
        if (mode === "tty") {
          return Effect.sync(() => process.stdout.write(`\r\x1b[K${text}${current.done ? "\n" : ""}`))
        }
        // plain lines: when something changed, at most one a second, and always the last one
        const key = text.replace(/ {2}\d+\/s/, "")
        if (!current.done && printed !== undefined && (printed.text === key || now - printed.at < 1000)) {
          return Effect.void
        }
        printed = { at: now, text: key }
        return Console.log(text)
      })
    const loop: Effect.Effect<Sample, E, R> = Effect.flatMap(sample, (current) =>
      Effect.zipRight(
        show(current),
        current.done ? Effect.succeed(current) : Effect.zipRight(Effect.sleep(options.interval ?? 250), loop)
      ))
    return loop
  })
