/**
 * `npm run bench`: W1–W6, W4w and M1 (bench/README.md) against every target, 3 runs, one JSON line per
 * (workload, target, run) on stdout, then a table of medians with min–max and the ratios to raw-pg (the floor) and
 * to raw-pg-batched (the limit), each the median of the ratios measured within each run.
 *
 *   npm run bench -- --workloads W1,W4 --targets memory,raw-pg --runs 1 [--out results.jsonl]
 */
import { spawn } from "node:child_process"
import { appendFileSync, readFileSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { cpus, totalmem } from "node:os"
import { fileURLToPath } from "node:url"
import type { Server } from "./db.js"
import { freshDatabase, startServer } from "./db.js"
import { runG1 } from "./g1.js"
import type { Target } from "./target.js"
import type { TargetEntry } from "./targets.js"
import { targets, unbatched } from "./targets.js"
import type { Measurement, WorkloadId } from "./workloads.js"
import { m1Seed, median, round, Unsupported, workloadIds, workloads } from "./workloads.js"

interface Options {
  readonly workloads: ReadonlyArray<WorkloadId>
  readonly targets: ReadonlyArray<TargetEntry>
  readonly runs: number
  readonly out: string | undefined
  /** JSON-lines files of earlier invocations to summarise instead of running (`--summarize a.jsonl,b.jsonl`) */
  readonly summarize: ReadonlyArray<string>
}

const usage = `usage: npm run bench -- [--workloads ${workloadIds.join(",")}] [--targets ${
  targets.map((t) => t.name).join(",")
}] [--runs 3] [--out file.jsonl] [--summarize a.jsonl,b.jsonl,…]`

const parseArgs = (argv: ReadonlyArray<string>): Options => {
  let selectedWorkloads: ReadonlyArray<WorkloadId> = workloadIds
  let selectedTargets: ReadonlyArray<TargetEntry> = targets.filter((t) => t.optional !== true)
  let runs = 3
  let out: string | undefined
  let summarize: ReadonlyArray<string> = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const [flag, inline] = arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [
      arg,
      undefined
    ]
    const value = () => {
      const v = inline ?? argv[++i]
      if (v === undefined) throw new Error(`${flag} needs a value\n${usage}`)
      return v
    }
    switch (flag) {
      case "--workloads": {
        const ids = value().split(",").map((s) => s.trim().toUpperCase()).filter((s) => s !== "")
        for (const id of ids) {
          if (!workloadIds.some((w) => w.toUpperCase() === id)) throw new Error(`unknown workload ${id}\n${usage}`)
        }
        selectedWorkloads = workloadIds.filter((id) => ids.includes(id.toUpperCase()))
        break
      }
      case "--targets": {
        const names = value().split(",").map((s) => s.trim()).filter((s) => s !== "")
        for (const name of names) {
          if (!targets.some((t) => t.name === name)) throw new Error(`unknown target ${name}\n${usage}`)
        }
        selectedTargets = targets.filter((t) => names.includes(t.name))
        break
      }
      case "--runs": {
        runs = Number(value())
        if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer\n${usage}`)
        break
      }
      case "--out":
        out = value()
        break
      case "--summarize":
        summarize = value().split(",").filter((s) => s !== "")
        break
      case "--help":
      case "-h":
        process.stdout.write(usage + "\n")
        process.exit(0)
        break
      default:
        throw new Error(`unknown option ${arg}\n${usage}`)
    }
  }
  return { workloads: selectedWorkloads, targets: selectedTargets, runs, out, summarize }
}

interface Row {
  readonly workload: WorkloadId
  readonly target: string
  readonly run: number
  readonly value?: number
  readonly unit?: string
  readonly higherIsBetter?: boolean
  readonly skipped?: string
  readonly error?: string
  readonly [key: string]: unknown
}

const log = (message: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`)

const requireHere = createRequire(import.meta.url)
const versionOf = (pkg: string): string => {
  try {
    const path = requireHere.resolve(`${pkg}/package.json`)
    return (JSON.parse(readFileSync(path, "utf8")) as { version: string }).version
  } catch {
    // packages whose exports map hides package.json: find it next to the entry point
    try {
      const entry = requireHere.resolve(pkg)
      const root = entry.slice(0, entry.lastIndexOf(`/node_modules/${pkg}/`) + `/node_modules/${pkg}/`.length)
      return (JSON.parse(readFileSync(`${root}package.json`, "utf8")) as { version: string }).version
    } catch {
      return "unknown"
    }
  }
}

/** M1 in a child process: peak RSS isolated from the harness. */
const runChild = (target: Target, url: string): Promise<Record<string, number | boolean>> =>
  new Promise((resolve, reject) => {
    // m1.js next to the compiled harness (npm run bench), m1.ts when run from the sources under tsx
    const script = fileURLToPath(new URL(import.meta.url.endsWith(".ts") ? "./m1.ts" : "./m1.js", import.meta.url))
    const child = spawn(process.execPath, [...process.execArgv, script, target.name, url], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    let output = ""
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString()
    })
    child.on("error", reject)
    child.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`M1 child exited with ${code}`))
      const last = output.trim().split("\n").pop() ?? "{}"
      resolve(JSON.parse(last) as Record<string, number | boolean>)
    })
  })

/**
 * M1's seeded databases, one per target, kept for all runs: seeding 1,000,000 events is setup (not measured), so
 * every run reads the same log in a fresh child process. Dropped at the end.
 */
const m1Databases = new Map<string, { readonly url: string; readonly drop: () => Promise<void> }>()

const runM1 = async (server: Server | undefined, target: Target, run: number): Promise<Measurement> => {
  if (!target.database) {
    const result = await runChild(target, "-")
    if (result.unsupported === true) throw new Unsupported()
    return m1Measurement(result)
  }
  let db = m1Databases.get(target.name)
  if (db === undefined) {
    const fresh = await freshDatabase(server!, `m1_${target.name}_${run}`)
    try {
      const session = await target.open(fresh.url, workloads.M1.pool)
      try {
        if (session.readAll === undefined) throw new Unsupported()
        log(`  seeding 1,000,000 events through ${target.name}`)
        await session.appendNew(m1Seed(), workloads.M1.pool)
      } finally {
        await session.close()
      }
    } catch (error) {
      await fresh.drop()
      throw error
    }
    db = fresh
    m1Databases.set(target.name, db)
  }
  return m1Measurement(await runChild(target, db.url))
}

const m1Measurement = (result: Record<string, number | boolean>): Measurement => {
  const n = (key: string) => Number(result[key])
  if (n("events") !== 1_000_000) throw new Error(`M1 read ${n("events")} events, expected 1,000,000`)
  return {
    value: n("maxRssMB"),
    unit: "MB peak RSS",
    higherIsBetter: false,
    extra: {
      rssBeforeReadMB: n("rssBeforeReadMB"),
      peakRssDuringReadMB: n("peakRssDuringReadMB"),
      readGrowthMB: round(n("peakRssDuringReadMB") - n("rssBeforeReadMB"), 1),
      readSeconds: round(n("seconds"), 3),
      eventsPerSecond: round(n("events") / n("seconds"))
    }
  }
}

const runCase = async (
  server: Server | undefined,
  workload: WorkloadId,
  target: Target,
  run: number
): Promise<Measurement> => {
  if (workload === "M1") return runM1(server, target, run)
  if (workload === "G1") {
    if (!target.database) throw new Unsupported()
    const fresh = await freshDatabase(server!, `g1_r${run}_${target.name}`)
    try {
      return await runG1(target, fresh.url, run)
    } finally {
      await fresh.drop()
    }
  }
  const spec = workloads[workload]
  const label = `${workload.toLowerCase()}_r${run}`
  const db = target.database ? await freshDatabase(server!, `${label}_${target.name}`) : undefined
  try {
    const session = await target.open(db?.url ?? "", spec.pool)
    try {
      return await spec.run(session, label)
    } finally {
      await session.close()
    }
  } finally {
    await db?.drop()
  }
}

// -------------------------------------------------------------------------------------
// summary
// -------------------------------------------------------------------------------------

const fmt = (n: number): string =>
  Math.abs(n) >= 100 ? Math.round(n).toLocaleString("en-US") : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2)

/** the workloads whose metric is a time or a size (lower is better): their ratios are time (or size) ratios */
const lowerIsBetter = (workload: WorkloadId) =>
  workload === "W4" || workload === "W4w" || workload === "W6" || workload === "M1"

const summarize = (rows: ReadonlyArray<Row>, options: Options): string => {
  const lines: Array<string> = []
  lines.push(
    "| workload | target | median | min – max | unit | vs raw-pg | vs raw-pg-batched | notes |",
    "|---|---|---|---|---|---|---|---|"
  )
  const medians = new Map<string, number>()
  const ratios = new Map<string, number>()
  const p99Ratios = new Map<string, number>()
  const rowOf = (workload: WorkloadId, target: string, run: number) =>
    rows.find((r) => r.workload === workload && r.target === target && r.run === run)
  /** the limit of a run: raw-pg-batched, or raw-pg where the batched target would only repeat raw-pg's reads */
  const limitOf = (workload: WorkloadId, run: number) => {
    const batched = rowOf(workload, "raw-pg-batched", run)
    if (batched?.value !== undefined) return batched
    return unbatched.includes(workload) ? rowOf(workload, "raw-pg", run) : undefined
  }
  /** the median over the runs of (this run's `key` ÷ the reference's `key` in the same run) */
  const ratioTo = (
    ok: ReadonlyArray<Row>,
    reference: (run: number) => Row | undefined,
    key: (row: Row) => unknown
  ): number | undefined => {
    const perRun = ok.flatMap((r) => {
      const ref = reference(r.run)
      const a = key(r)
      const b = ref === undefined ? undefined : key(ref)
      return typeof a !== "number" || typeof b !== "number" || b === 0 ? [] : [a / b]
    })
    return perRun.length === 0 ? undefined : median(perRun)
  }
  const show = (ratio: number | undefined) => (ratio === undefined ? "" : `${ratio.toFixed(2)}×`)
  for (const workload of options.workloads) {
    for (const target of options.targets) {
      const own = rows.filter((r) => r.workload === workload && r.target === target.name)
      const ok = own.filter((r) => r.value !== undefined)
      if (ok.length === 0) {
        const reason = own.find((r) => r.skipped !== undefined)?.skipped ?? own.find((r) => r.error)?.error ??
          "not run"
        lines.push(`| ${workload} | ${target.name} | — | — | | | | ${reason} |`)
        continue
      }
      const values = ok.map((r) => r.value!)
      const med = median(values)
      medians.set(`${workload}/${target.name}`, med)
      const ratio = ratioTo(ok, (run) => rowOf(workload, "raw-pg", run), (r) => r.value)
      if (ratio !== undefined) ratios.set(`${workload}/${target.name}`, ratio)
      const limit = ratioTo(ok, (run) => limitOf(workload, run), (r) => r.value)
      const notes: Array<string> = []
      const extraMedian = (key: string) => {
        const xs = ok.map((r) => r[key]).filter((x): x is number => typeof x === "number")
        return xs.length === 0 ? undefined : median(xs)
      }
      if (workload === "W3") {
        notes.push(`conflicts ${fmt(extraMedian("conflicts") ?? 0)}, failed ${fmt(extraMedian("failed") ?? 0)}`)
      }
      if (workload === "W4") notes.push(`${fmt(extraMedian("loadsPerSecond") ?? 0)} loads/s`)
      if (workload === "W4w") {
        const cache = [...new Set(ok.map((r) => String(r.cache)))].join("/")
        notes.push(`cache ${cache}, p99 ${fmt(extraMedian("p99") ?? 0)} ms`)
      }
      if (workload === "W6") {
        const p99 = ratioTo(ok, (run) => rowOf(workload, "raw-pg", run), (r) => r.p99)
        if (p99 !== undefined) p99Ratios.set(`${workload}/${target.name}`, p99)
        const p99Limit = ratioTo(ok, (run) => limitOf(workload, run), (r) => r.p99)
        notes.push(
          `p99 ${fmt(extraMedian("p99") ?? 0)} ms (${show(p99)} raw-pg, ${show(p99Limit)} batched), ${
            fmt(extraMedian("appendsPerSecond") ?? 0)
          } appends/s`
        )
      }
      if (workload === "W5") {
        const sum = (key: string) => ok.reduce((acc, r) => acc + (typeof r[key] === "number" ? r[key] : 0), 0)
        notes.push(`missed ${sum("missed")}, duplicated ${sum("duplicated")} (all runs)`)
      }
      if (workload === "G1") {
        const at = (key: string) => fmt(extraMedian(key) ?? 0)
        const row = (handler: string) =>
          `${handler}: one subscription ${at(`${handler}Subscription`)}, members 1/2/4 ${at(`${handler}Members1`)} / ${
            at(`${handler}Members2`)
          } / ${at(`${handler}Members4`)}`
        notes.push(
          `events/s (member processes) ${row("cpu")}; ${row("sleep")}; noop: one subscription ${
            at("noopSubscription")
          }, 1 member ${at("noopMembers1")}`
        )
      }
      if (workload === "M1") {
        notes.push(
          `read ${fmt(extraMedian("eventsPerSecond") ?? 0)} ev/s, RSS before read ${
            fmt(extraMedian("rssBeforeReadMB") ?? 0)
          } MB, growth during read ${fmt(extraMedian("readGrowthMB") ?? 0)} MB`
        )
      }
      const errors = own.filter((r) => r.error !== undefined).length
      if (errors > 0) notes.push(`${errors} run(s) failed`)
      lines.push(
        `| ${workload} | ${target.name} | ${fmt(med)} | ${fmt(Math.min(...values))} – ${fmt(Math.max(...values))} | ${
          ok[0]!.unit
        } | ${show(ratio)} | ${show(limit)} | ${notes.join("; ")} |`
      )
    }
  }
  const lower = options.workloads.filter(lowerIsBetter)
  lines.push(
    "",
    "Ratios: the median over the runs of (target ÷ reference in the same run)" +
      (lower.length === 0 ? "" : `; for ${lower.join(", ")} lower is better (a time or size ratio)`) +
      `. raw-pg-batched skips the workloads that time only reads (${unbatched.join(", ")}): there its column ` +
      "compares with raw-pg's figure."
  )

  // the goals of bench/README.md (raised 2026-11-29)
  const checks: Array<string> = []
  const check = (label: string, value: number | undefined, pass: (v: number) => boolean, shown?: string) => {
    if (value === undefined) return
    checks.push(`- ${label}: ${shown ?? `${value.toFixed(2)}×`} → ${pass(value) ? "met" : "MISSED"}`)
  }
  const atLeast = { W1: 1.5, W2: 0.9, W3: 1.0 } as const
  for (const w of ["W1", "W2", "W3"] as const) {
    check(`postgres ${w} ≥ ${atLeast[w]}× raw-pg`, ratios.get(`${w}/postgres`), (v) => v >= atLeast[w])
  }
  check("postgres W4 (cold) ≤ 1.25× raw-pg (time per load)", ratios.get("W4/postgres"), (v) => v <= 1.25)
  const w4w = ratios.get("W4w/postgres")
  const w4wCache = [
    ...new Set(
      rows.filter((r) => r.workload === "W4w" && r.target === "postgres" && r.cache !== undefined).map((r) =>
        String(r.cache)
      )
    )
  ].join("/")
  check("postgres W4w ≤ 0.2× raw-pg (time per load)", w4w, (v) => v <= 0.2, `${w4w?.toFixed(2)}× (cache ${w4wCache})`)
  const w5 = ratios.get("W5/postgres")
  if (w5 !== undefined) {
    const pgRows = rows.filter((r) => r.workload === "W5" && r.target === "postgres" && r.value !== undefined)
    const bad = pgRows.reduce((acc, r) => acc + Number(r.missed ?? 0) + Number(r.duplicated ?? 0), 0)
    checks.push(
      `- postgres W5 ≥ 0.5× raw-pg, 0 missed/duplicated: ${w5.toFixed(2)}×, ${bad} missed+duplicated → ${
        w5 >= 0.5 && bad === 0 ? "met" : "MISSED"
      }`
    )
  }
  check("postgres W6 p50 ≤ 1.25× raw-pg (latency)", ratios.get("W6/postgres"), (v) => v <= 1.25)
  check("postgres W6 p99 ≤ 1.25× raw-pg (latency)", p99Ratios.get("W6/postgres"), (v) => v <= 1.25)
  const m1 = medians.get("M1/postgres")
  check("postgres M1 < 150 MB peak RSS", m1, (v) => v < 150, `${m1} MB`)
  const memoryRuns = rows.filter((r) => r.workload === "W1" && r.target === "memory" && r.value !== undefined)
  const vsEmmett = ratioTo(memoryRuns, (run) => rowOf("W1", "emmett-memory", run), (r) => r.value)
  check("memory W1 ≥ 10× emmett-memory", vsEmmett, (x) => x >= 10, `${vsEmmett?.toFixed(1)}×`)
  if (checks.length > 0) lines.push("", "Targets (bench/README.md, raised 2026-11-29):", ...checks)
  return lines.join("\n")
}

// -------------------------------------------------------------------------------------
// main
// -------------------------------------------------------------------------------------

/**
 * The summary of earlier invocations' JSON lines (`--out`), e.g. three `--runs 1` invocations on a machine where a
 * long run may be interrupted: the runs are numbered in file order (file 2's run 1 becomes run 2 after a one-run
 * file 1), so each ratio still compares targets measured within one invocation's run.
 */
const summarizeFiles = (options: Options) => {
  const rows: Array<Row> = []
  let offset = 0
  for (const file of options.summarize) {
    const own = readFileSync(file, "utf8").split("\n").filter((line) => line.trim() !== "").map((line) =>
      JSON.parse(line) as Row | { readonly kind: string }
    ).filter((row): row is Row => !("kind" in row))
    for (const row of own) rows.push({ ...row, run: offset + row.run })
    offset += Math.max(0, ...own.map((row) => row.run))
  }
  const seenWorkloads = new Set(rows.map((r) => r.workload))
  const seenTargets = new Set(rows.map((r) => r.target))
  process.stdout.write(
    `${
      summarize(rows, {
        ...options,
        workloads: options.workloads.filter((w) => seenWorkloads.has(w)),
        targets: targets.filter((t) => seenTargets.has(t.name))
      })
    }\n`
  )
}

const main = async () => {
  const options = parseArgs(process.argv.slice(2))
  if (options.summarize.length > 0) return summarizeFiles(options)
  const needsDatabase = options.targets.some((t) => t.database)
  const server = needsDatabase ? await startServer() : undefined
  const stop = async () => {
    await server?.stop()
  }
  const onSignal = () => {
    void stop().finally(() => process.exit(130))
  }
  process.once("SIGINT", onSignal)
  process.once("SIGTERM", onSignal)

  const emit = (row: Row | Record<string, unknown>) => {
    const line = JSON.stringify(row)
    process.stdout.write(line + "\n")
    if (options.out !== undefined) appendFileSync(options.out, line + "\n")
  }
  if (options.out !== undefined) writeFileSync(options.out, "")

  emit({
    kind: "environment",
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? "unknown",
    memoryGB: round(totalmem() / 1024 ** 3, 1),
    postgres: server === undefined ? undefined : `${server.version}${server.embedded ? " (embedded)" : ""}`,
    effect: versionOf("effect"),
    emmett: versionOf("@event-driven-io/emmett"),
    emmettPostgresql: versionOf("@event-driven-io/emmett-postgresql"),
    pg: versionOf("pg"),
    workloads: options.workloads,
    targets: options.targets.map((t) => t.name),
    runs: options.runs
  })

  const rows: Array<Row> = []
  try {
    for (let run = 1; run <= options.runs; run++) {
      for (const workload of options.workloads) {
        for (const target of options.targets) {
          log(`run ${run}/${options.runs} ${workload} ${target.name}`)
          let row: Row
          const skipped = target.skip?.[workload]
          if (skipped !== undefined) {
            row = { workload, target: target.name, run, skipped }
            rows.push(row)
            emit(row)
            continue
          }
          try {
            const m = await runCase(server, workload, await target.load(), run)
            row = {
              workload,
              target: target.name,
              run,
              value: m.value,
              unit: m.unit,
              higherIsBetter: m.higherIsBetter,
              ...m.extra
            }
          } catch (error) {
            row = error instanceof Unsupported
              ? { workload, target: target.name, run, skipped: "not supported by the target" }
              : {
                workload,
                target: target.name,
                run,
                error: error instanceof Error ? error.message.split("\n")[0]! : String(error)
              }
            if (!(error instanceof Unsupported)) log(`  failed: ${error instanceof Error ? error.stack : error}`)
          }
          rows.push(row)
          emit(row)
        }
      }
    }
  } finally {
    for (const db of m1Databases.values()) await db.drop().catch(() => undefined)
    await stop()
  }
  process.stdout.write(`\n${summarize(rows, options)}\n`)
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`)
    process.exit(1)
  }
)
