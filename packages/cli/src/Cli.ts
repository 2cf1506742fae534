/**
 * The `cloudtaser` command tree: every subcommand is defined in its own module under `commands/` and joined here.
 */
import { Command } from "@effect/cli"
import { beacon } from "./commands/Beacon.ts"
import { devKubeCommand } from "./commands/DevKube.ts"
import { devVaultCommand } from "./commands/DevVault.ts"

const dev = Command.make("dev").pipe(
  Command.withSubcommands([devVaultCommand, devKubeCommand]),
  Command.withDescription("Run the development doubles of Vault and the Kubernetes API, for local work and tests.")
)

const root = Command.make("cloudtaser").pipe(
  Command.withSubcommands([beacon, dev]),
  Command.withDescription(
    "CloudTaser connectivity: the beacon relay, the Vault and Kubernetes dev doubles, and the tools that wire a " +
      "Vault to a cluster."
  )
)

/** The whole command tree, ready for `Command.run`. */
export const cloudtaser = root

/** Runs the `cloudtaser` command tree on the given `process.argv`. */
export const run = Command.run(cloudtaser, { name: "cloudtaser", version: "0.0.0" })
