#!/usr/bin/env node
// Entry point for `cloudtaser-beacon`: the same program as `cloudtaser beacon`, for images and units that run only
// the beacon.
import { useBeaconRuntime } from "./beacon-runtime.js"
import { requireNode24 } from "./node-version.js"

if (requireNode24("cloudtaser-beacon")) {
  useBeaconRuntime()
  await import("../src/beacon-main.ts")
}
