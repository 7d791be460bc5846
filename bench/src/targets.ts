/**
 * Every benchmark target, by name.
 */
import type { Target } from "./target.js"
import { emmettMemory, emmettPg } from "./targets/emmett.js"
import { memory } from "./targets/memory.js"
import { rawPg } from "./targets/rawPg.js"

export const targets: ReadonlyArray<Target> = [memory, rawPg, emmettPg, emmettMemory]
