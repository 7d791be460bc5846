/**
 * Builds the package (and the packages it references) before its tests, which run the built bin with plain `node`
 * as a user's shell would: `tsc -b tsconfig.build.json` (the ES modules the bin is made of; incremental).
 */
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../../../", import.meta.url))
const tsc = fileURLToPath(new URL("../../../node_modules/typescript/bin/tsc", import.meta.url))

const build = (project: string) =>
  new Promise<void>((resolve, reject) =>
    execFile(
      process.execPath,
      [tsc, "-b", project],
      { cwd: root },
      (error, stdout, stderr) =>
        error === null ? resolve() : reject(new Error(`tsc -b ${project} failed:\n${stdout}${stderr}`))
    )
  )

export default async function setup(): Promise<void> {
  await build("packages/cli/tsconfig.build.json")
}
