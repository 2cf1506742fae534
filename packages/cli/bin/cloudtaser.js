#!/usr/bin/env node
// Entry point for `cloudtaser`. Plain JavaScript on purpose: it must run on any Node.js long enough to say which
// version CloudTaser needs, before the TypeScript sources (loaded by Node 24's type stripping) are touched.
import { useBeaconRuntime } from "./beacon-runtime.js"
import { requireNode24 } from "./node-version.js"

if (requireNode24("cloudtaser")) {
  if (process.argv[2] === "beacon") useBeaconRuntime()
  await import("../src/main.ts")
}
