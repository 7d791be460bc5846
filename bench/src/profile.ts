/**
 * Where an append workload spends its CPU: runs W1 or W2 once against one target on a fresh database and reports
 * the rate, the client's CPU (process.cpuUsage) and the whole machine's busy CPU (/proc/stat) during the timed part,
 * per append; with `--cpu-prof <file>` also a V8 CPU profile of the timed part (node:inspector) and its top
 * self-time functions.
 *
 *   DATABASE_URL=postgres://postgres@localhost:5432/postgres npx tsx bench/src/profile.ts W1 postgres [--cpu-prof w1.cpuprofile]
 */
import { readFileSync, writeFileSync } from "node:fs"
import { Session as InspectorSession } from "node:inspector"
import pg from "pg"
import { freshDatabase, startServer } from "./db.js"
import { deposit } from "./target.js"
import type { Batch } from "./target.js"
import { targets } from "./targets.js"

const busyJiffies = (): { busy: number; total: number } => {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!
  const fields = line.trim().split(/\s+/).slice(1).map(Number)
  const total = fields.reduce((a, b) => a + b, 0)
  const idle = fields[3]! + (fields[4] ?? 0)
  return { busy: total - idle, total }
}

/**
 * The CPU time (user + system, in clock ticks: 10 ms each) of each server backend connected to the workload's
 * database (pg_stat_activity), from /proc: the server's side of the appends. `undefined` when the server does not run
 * on this machine.
 */
const backendTicks = async (url: string): Promise<Map<number, number> | undefined> => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const { rows } = await client.query<{ pid: number }>(
      "select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()"
    )
    const ticks = new Map<number, number>()
    for (const { pid } of rows) {
      let stat: string
      try {
        stat = readFileSync(`/proc/${pid}/stat`, "utf8")
      } catch {
        return undefined
      }
      // the fields after "(command) ": utime and stime are the 12th and 13th
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      ticks.set(pid, Number(fields[11]) + Number(fields[12]))
    }
    return ticks
  } finally {
    await client.end()
  }
}

/** The backends' CPU between two readings, in microseconds (a backend that started meanwhile counts in full). */
const serverMicros = (before: Map<number, number> | undefined, after: Map<number, number> | undefined) => {
  if (before === undefined || after === undefined) return undefined
  let ticks = 0
  for (const [pid, t] of after) ticks += t - (before.get(pid) ?? 0)
  return ticks * 10_000
}

const post = <T>(session: InspectorSession, method: string, params?: object) =>
  new Promise<T>((resolve, reject) =>
    session.post(method, params ?? {}, (error, result) => (error ? reject(error) : resolve(result as T)))
  )

interface ProfileNode {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
}

const topSelf = (profile: { nodes: Array<ProfileNode>; samples: Array<number> }, n: number) => {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const counts = new Map<string, number>()
  for (const id of profile.samples) {
    const frame = byId.get(id)!.callFrame
    const file = frame.url.replace(/^.*node_modules\//, "").replace(/^.*\/packages\//, "")
    const key = `${frame.functionName || "(anonymous)"} ${file}:${frame.lineNumber + 1}`
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  const total = profile.samples.length
  return [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map(([key, count]) =>
    `${(count / total * 100).toFixed(1).padStart(5)}%  ${key}`
  )
}

/**
 * Self time by where the code lives, as a share of the busy samples (idle excluded): effect's fiber runtime, its
 * tracer (spans), the rest of effect, @effect/sql(-pg), the pg driver, the bench's bundle (the store, the harness),
 * node internals, GC.
 */
const byModule = (profile: { nodes: Array<ProfileNode>; samples: Array<number> }) => {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const counts = new Map<string, number>()
  let busy = 0
  for (const id of profile.samples) {
    const { functionName, url } = byId.get(id)!.callFrame
    if (functionName === "(idle)") continue
    busy++
    const key = functionName === "(garbage collector)"
      ? "GC"
      : functionName === "(program)"
      ? "(program)"
      : /effect\/dist\/esm\/internal\/(tracer|core-effect)\.js/.test(url) && /[Ss]pan|tracer/i.test(functionName + url)
      ? "effect: spans/tracer"
      : /effect\/dist\/esm\/internal\/(fiberRuntime|core|fiberRefs|runtime)\.js/.test(url)
      ? "effect: fiber runtime"
      : /node_modules\/effect\//.test(url)
      ? "effect: other"
      : /@effect\/sql-pg/.test(url)
      ? "@effect/sql-pg"
      : /@effect\/sql\//.test(url)
      ? "@effect/sql"
      : /node_modules\/(pg|pg-protocol|pg-pool|pg-types)\//.test(url)
      ? "pg driver"
      : /\/bench\/dist\//.test(url)
      ? "bench bundle (store + harness)"
      : url.startsWith("node:") || url === ""
      ? "node internals / native"
      : "other"
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  return [...counts.entries()].sort((a, b) => b[1] - a[1]).map(([key, count]) =>
    `${(count / busy * 100).toFixed(1).padStart(5)}%  ${key}`
  )
}

const main = async () => {
  const [workload = "W1", targetName = "postgres", ...rest] = process.argv.slice(2)
  const profIndex = rest.indexOf("--cpu-prof")
  const profFile = profIndex >= 0 ? rest[profIndex + 1] : undefined
  const [count, size, inFlight] = workload === "W2" ? [200, 100, 8] : [20_000, 1, 16]
  const entry = targets.find((t) => t.name === targetName)
  if (entry === undefined) throw new Error(`unknown target ${targetName}`)
  const target = await entry.load()
  const server = await startServer()
  try {
    const db = await freshDatabase(server, `profile_${workload}_${targetName}`)
    const session = await target.open(db.url, inFlight)
    const work: Array<Batch> = Array.from({ length: count }, (_, i) => ({
      streamId: `account-p_${i}`,
      events: Array.from({ length: size }, (_, j) => deposit(i * size + j))
    }))
    // warm-up on other streams (JIT, pool connections)
    await session.appendNew(
      Array.from({ length: 500 }, (_, i) => ({ streamId: `account-warm_${i}`, events: [deposit(i)] })),
      inFlight
    )
    const inspector = profFile === undefined ? undefined : new InspectorSession()
    if (inspector !== undefined) {
      inspector.connect()
      await post(inspector, "Profiler.enable")
      await post(inspector, "Profiler.setSamplingInterval", { interval: 100 })
      await post(inspector, "Profiler.start")
    }
    const server0 = await backendTicks(db.url)
    const cpu0 = process.cpuUsage()
    const sys0 = busyJiffies()
    const t0 = performance.now()
    await session.appendNew(work, inFlight)
    const elapsed = (performance.now() - t0) / 1000
    const cpu = process.cpuUsage(cpu0)
    const sys1 = busyJiffies()
    const server1 = await backendTicks(db.url)
    const machineBusy = (sys1.busy - sys0.busy) / (sys1.total - sys0.total)
    const clientMs = (cpu.user + cpu.system) / 1000
    const appends = count
    console.log(JSON.stringify({
      workload,
      target: targetName,
      eventsPerSecond: Math.round(count * size / elapsed),
      seconds: Math.round(elapsed * 1000) / 1000,
      clientCpuPerAppendUs: Math.round(clientMs * 1000 / appends),
      clientUserPerAppendUs: Math.round(cpu.user / appends),
      clientSystemPerAppendUs: Math.round(cpu.system / appends),
      // the backends of the workload's database (ticks of 10 ms: coarse, but over thousands of appends)
      serverCpuPerAppendUs: serverMicros(server0, server1) === undefined
        ? "n/a"
        : Math.round(serverMicros(server0, server1)! / appends),
      // both cores: busy fraction x 2 cores x elapsed, per append
      machineCpuPerAppendUs: Math.round(machineBusy * 2 * elapsed * 1e6 / appends),
      machineBusy: Math.round(machineBusy * 100) / 100
    }))
    if (inspector !== undefined && profFile !== undefined) {
      const { profile } = await post<{ profile: { nodes: Array<ProfileNode>; samples: Array<number> } }>(
        inspector,
        "Profiler.stop"
      )
      writeFileSync(profFile, JSON.stringify(profile))
      console.log(topSelf(profile, 40).join("\n"))
      console.log("\nself time by module (share of busy samples):")
      console.log(byModule(profile).join("\n"))
    }
    await session.close()
    await db.drop()
  } finally {
    await server.stop()
  }
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
