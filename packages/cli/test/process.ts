/**
 * Runs the built bin (`dist/esm/bin.js`, built by `build.ts`) as a child process with plain `node`.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

export const bin = fileURLToPath(new URL("../dist/esm/bin.js", import.meta.url))

export interface Run {
  readonly stdout: string
  readonly stderr: string
  readonly code: number
}

/** The environment of a child: this process's, without DATABASE_URL unless given. */
const environment = (env: Record<string, string | undefined>): NodeJS.ProcessEnv => {
  const { DATABASE_URL: _ignored, ...rest } = process.env
  const out: NodeJS.ProcessEnv = { ...rest, NO_COLOR: "1" }
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete out[key]
    else out[key] = value
  }
  return out
}

/** Runs `eventsourcing <args>` to its end. */
export const run = (args: ReadonlyArray<string>, env: Record<string, string | undefined> = {}): Promise<Run> =>
  new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { env: environment(env), timeout: 50_000 },
      (error, stdout, stderr) =>
        resolve({
          stdout,
          stderr,
          code: error === null ? 0 : typeof error.code === "number" ? error.code : -1
        })
    )
  })

/** A long-running child (`tail`): its output so far, a wait for a line, and its end. */
export interface Running {
  readonly child: ChildProcess
  readonly stdout: () => ReadonlyArray<string>
  readonly stderr: () => string
  /** Waits until `check` holds (polling every 50 ms), failing with the output so far after `ms`. */
  readonly until: (check: () => boolean, what: string, ms?: number) => Promise<void>
  readonly exit: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
}

export const start = (args: ReadonlyArray<string>, env: Record<string, string | undefined> = {}): Running => {
  const child = spawn(process.execPath, [bin, ...args], { env: environment(env), stdio: ["ignore", "pipe", "pipe"] })
  let out = ""
  let err = ""
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk))
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (err += chunk))
  const lines = () => out.split("\n").filter((line) => line !== "")
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal }))
  )
  const until = async (check: () => boolean, what: string, ms = 20_000) => {
    const deadline = Date.now() + ms
    while (!check()) {
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${what}; stdout:\n${out}\nstderr:\n${err}`)
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  return { child, stdout: lines, stderr: () => err, until, exit }
}

/** util-linux `script`, which runs a command on a pseudo-terminal (`undefined` where it is not available). */
export const script: string | undefined = ["/usr/bin/script", "/bin/script"].find((path) => {
  try {
    return process.platform === "linux" &&
      execFileSync(path, ["--version"], { encoding: "utf8" }).includes("util-linux")
  } catch {
    return false
  }
})

/** Runs `eventsourcing <args>` on a pseudo-terminal (through `script`): stdout is a TTY. */
export const runOnTerminal = (
  args: ReadonlyArray<string>,
  env: Record<string, string | undefined> = {}
): Promise<Run> => {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`
  const command = [process.execPath, bin, ...args].map(quote).join(" ")
  return new Promise((resolve) => {
    execFile(
      script!,
      ["-qec", command, "/dev/null"],
      { env: environment(env), timeout: 50_000 },
      (error, stdout, stderr) =>
        resolve({ stdout, stderr, code: error === null ? 0 : typeof error.code === "number" ? error.code : -1 })
    )
  })
}
