/**
 * The `cloudtaser-beacon` program: the beacon alone, for images and units that run nothing else.
 */
import { runBeacon } from "./commands/Beacon.ts"
import { runMain } from "./Program.ts"

runMain(runBeacon(process.argv))
