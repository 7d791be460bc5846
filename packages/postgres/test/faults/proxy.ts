/**
 * Fault injection for the PostgreSQL tests: a loopback-only TCP proxy between the store and the server.
 *
 * - `cut()` destroys every open connection (both sides), as a network failure or a server crash would; new
 *   connections are accepted again at once.
 * - `refuse(on)` makes the proxy reset every new connection while `on` (the database is "unreachable").
 * - `stall(duration)` stops moving bytes in both directions for that long (the sockets stay open), then resumes.
 * - `latency(ms)` delays every chunk by `ms` in each direction (0 turns it off).
 *
 * The proxy listens on 127.0.0.1 only, forwards only to the given loopback target, and closes itself after
 * `maxLifetime` (default 10 minutes) even if a test forgets to: it never outlives the test run. As an Effect
 * resource (`make`) it is closed with its Scope.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Net from "node:net"

export interface FaultProxy {
  /** The port the proxy listens on (127.0.0.1). */
  readonly port: number
  /** `url` with its host and port replaced by the proxy's. */
  readonly rewrite: (url: string) => string
  /** Destroys every open connection through the proxy. Returns how many were cut. */
  readonly cut: Effect.Effect<number>
  /** While on, new connections are reset at once (existing ones are not touched; combine with `cut`). */
  readonly refuse: (on: boolean) => Effect.Effect<void>
  /** Stops all traffic (both directions) for `millis`, then resumes it. */
  readonly stall: (millis: number) => Effect.Effect<void>
  /** Delays every chunk by `millis` in each direction; 0 turns it off. */
  readonly latency: (millis: number) => Effect.Effect<void>
  /** Connections currently open through the proxy. */
  readonly open: Effect.Effect<number>
  /** Connections accepted since start (refused ones included). */
  readonly accepted: Effect.Effect<number>
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"])

interface Pair {
  readonly client: Net.Socket
  readonly server: Net.Socket
}

/** Starts a proxy to `target` (a postgres URL on a loopback host), closed with the Scope. */
export const make = (
  target: string,
  options: { readonly maxLifetimeMillis?: number } = {}
): Effect.Effect<FaultProxy, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => start(target, options.maxLifetimeMillis ?? 10 * 60_000)),
    (proxy) => Effect.promise(() => proxy.close())
  ).pipe(Effect.map((_) => _.proxy))

const start = async (
  target: string,
  maxLifetimeMillis: number
): Promise<{ readonly proxy: FaultProxy; readonly close: () => Promise<void> }> => {
  const parsed = new URL(target)
  const host = parsed.hostname
  if (!LOOPBACK.has(host)) throw new Error(`fault proxy: target must be a loopback address, got ${host}`)
  const targetPort = Number(parsed.port === "" ? "5432" : parsed.port)
  const pairs = new Set<Pair>()
  let refusing = false
  let stalledUntil = 0
  let delay = 0
  let accepted = 0
  const stallTimers = new Set<NodeJS.Timeout>()

  // bytes from `from` go to `to`, through the stall gate and the latency delay, in order
  const pipe = (from: Net.Socket, to: Net.Socket) => {
    let queue: Promise<void> = Promise.resolve()
    let pending = 0
    const waitFor = (millis: number) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          stallTimers.delete(timer)
          resolve()
        }, millis)
        stallTimers.add(timer)
      })
    from.on("data", (chunk: Buffer) => {
      if (pending === 0 && delay === 0 && stalledUntil <= Date.now()) {
        to.write(chunk)
        return
      }
      pending++
      queue = queue.then(async () => {
        if (delay > 0) await waitFor(delay)
        // a stall that began while this chunk waited holds it further
        for (let rest = stalledUntil - Date.now(); rest > 0; rest = stalledUntil - Date.now()) await waitFor(rest)
        pending--
        if (!to.destroyed) to.write(chunk)
      })
    })
  }

  const server = Net.createServer((client) => {
    accepted++
    if (refusing) {
      client.resetAndDestroy()
      return
    }
    const upstream = Net.connect({ host: "127.0.0.1", port: targetPort })
    const pair: Pair = { client, server: upstream }
    pairs.add(pair)
    const drop = () => {
      if (!pairs.delete(pair)) return
      client.destroy()
      upstream.destroy()
    }
    client.on("error", drop)
    upstream.on("error", drop)
    client.on("close", drop)
    upstream.on("close", drop)
    client.setNoDelay(true)
    upstream.setNoDelay(true)
    pipe(client, upstream)
    pipe(upstream, client)
  })
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve())
  })
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0

  const cutAll = (): number => {
    const n = pairs.size
    for (const pair of [...pairs]) {
      pairs.delete(pair)
      pair.client.resetAndDestroy()
      pair.server.resetAndDestroy()
    }
    return n
  }

  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    clearTimeout(lifetime)
    for (const timer of stallTimers) clearTimeout(timer)
    stallTimers.clear()
    cutAll()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  const lifetime = setTimeout(() => void close(), maxLifetimeMillis)
  lifetime.unref()

  const proxy: FaultProxy = {
    port,
    rewrite: (url) => {
      const u = new URL(url)
      u.hostname = "127.0.0.1"
      u.port = String(port)
      return u.toString()
    },
    cut: Effect.sync(cutAll),
    refuse: (on) =>
      Effect.sync(() => {
        refusing = on
      }),
    stall: (millis) =>
      Effect.sync(() => {
        stalledUntil = Math.max(stalledUntil, Date.now() + millis)
      }),
    latency: (millis) =>
      Effect.sync(() => {
        delay = Math.max(0, millis)
      }),
    open: Effect.sync(() => pairs.size),
    accepted: Effect.sync(() => accepted)
  }
  return { proxy, close }
}
