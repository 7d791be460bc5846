/**
 * Compiles the benchmark to plain JavaScript in bench/dist (run by `npm run bench` before the harness), so that the
 * harness and the M1 child run on `node` as an application would, not under a TypeScript loader (tsx alone put the
 * M1 child ~60 MB higher before its first row). The workspace packages (which export TypeScript sources) are
 * compiled into the bundle; every other package (effect, @effect/*, pg, emmett, …) stays an import from
 * node_modules, loaded by node as it is.
 */
import { build } from "esbuild"
import { rmSync } from "node:fs"
import { fileURLToPath } from "node:url"

const here = fileURLToPath(new URL(".", import.meta.url))
rmSync(`${here}dist`, { recursive: true, force: true })
await build({
  absWorkingDir: here,
  // main, the M1 child and the G1 member; profile.ts for CPU profiles of the code as the bench runs it
  entryPoints: ["src/main.ts", "src/m1.ts", "src/g1member.ts", "src/profile.ts", "src/m1shapes.ts"],
  outdir: "dist",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  logLevel: "warning",
  // the workspace packages' TypeScript sources (their exports point at dist/ for published consumers)
  conditions: ["@effect-eventsourcing/source"],
  plugins: [{
    name: "node_modules-external",
    setup(b) {
      // bare specifiers: our workspace packages are compiled in, everything else is imported at run time
      b.onResolve({ filter: /^[^./]/ }, (args) =>
        args.path.startsWith("@effect-eventsourcing/") ? undefined : { path: args.path, external: true })
    }
  }]
})
