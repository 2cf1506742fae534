/**
 * The `cloudtaser` program.
 */
import { run } from "./Cli.ts"
import { runMain } from "./Program.ts"

runMain(run(process.argv))
