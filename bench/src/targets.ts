/**
 * Every benchmark target, by name. Targets are loaded lazily so that the M1 child process loads only the code of
 * the target it measures (its peak RSS then does not include the other libraries).
 */
import type { Target } from "./target.js"

export interface TargetEntry {
  readonly name: string
  /** whether the target needs a (fresh) PostgreSQL database */
  readonly database: boolean
  readonly load: () => Promise<Target>
  /** not run unless named in `--targets` (variants of another target) */
  readonly optional?: boolean
  /** workloads the target does not run, with the reason */
  readonly skip?: Readonly<Record<string, string>>
}

/**
 * The workloads whose timed part only reads (W4w's appends are untimed): `raw-pg-batched` would run raw-pg's own
 * select, so it skips them and the summary takes raw-pg's figure as the limit there.
 */
export const unbatched: ReadonlyArray<string> = ["W4", "W4w", "W5", "M1"]

export const targets: ReadonlyArray<TargetEntry> = [
  { name: "memory", database: false, load: () => import("./targets/memory.js").then((m) => m.memory) },
  { name: "postgres", database: true, load: () => import("./targets/postgres.js").then((m) => m.postgres) },
  {
    name: "memory-snapshots",
    database: false,
    optional: true,
    load: () => import("./targets/memory.js").then((m) => m.memorySnapshots)
  },
  {
    name: "memory-untraced",
    database: false,
    optional: true,
    load: () => import("./targets/memory.js").then((m) => m.memoryUntraced)
  },
  {
    name: "postgres-snapshots",
    database: true,
    optional: true,
    load: () => import("./targets/postgres.js").then((m) => m.postgresSnapshots)
  },
  {
    name: "postgres-cached",
    database: true,
    optional: true,
    load: () => import("./targets/postgres.js").then((m) => m.postgresCached)
  },
  {
    name: "memory-cached",
    database: false,
    optional: true,
    load: () => import("./targets/memory.js").then((m) => m.memoryCached)
  },
  { name: "raw-pg", database: true, load: () => import("./targets/rawPg.js").then((m) => m.rawPg) },
  {
    name: "raw-pg-batched",
    database: true,
    load: () => import("./targets/rawPg.js").then((m) => m.rawPgBatched),
    skip: Object.fromEntries(
      unbatched.map((w) => [w, `${w} times reads only: nothing to coalesce, the same select as raw-pg`])
    )
  },
  {
    name: "emmett-pg",
    database: true,
    load: () => import("./targets/emmett.js").then((m) => m.emmettPg),
    skip: {
      M1:
        "emmett's global read (readMessagesBatch) orders by (transaction_id, global_position) with no index for it: " +
        "every batch sorts the rest of the log, reading 1,000,000 events did not finish in 5 minutes"
    }
  },
  {
    name: "emmett-memory",
    database: false,
    load: () => import("./targets/emmett.js").then((m) => m.emmettMemory),
    skip: { W5: "no read of the global log", M1: "no read of the global log" }
  }
]
