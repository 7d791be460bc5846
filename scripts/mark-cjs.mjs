/**
 * Run by `npm run build` after `tsc -b tsconfig.build.json`. The packages are `"type": "module"`, so node would read
 * the CommonJS files tsc emits into `dist/cjs` as ES modules; a one-line package.json there marks them CommonJS
 * (the way Effect's own `dist/esm/package.json` marks the other direction).
 */
import { existsSync, readdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const packages = fileURLToPath(new URL("../packages/", import.meta.url))
for (const name of readdirSync(packages)) {
  const cjs = join(packages, name, "dist", "cjs")
  if (existsSync(cjs)) writeFileSync(join(cjs, "package.json"), `{ "type": "commonjs", "sideEffects": [] }\n`)
}
