#!/usr/bin/env node
// Entry point for `cloudtaser-beacon`: the same program as `cloudtaser beacon`, for images and units that run only
// the beacon.
import { requireNode24 } from "./node-version.js"

if (requireNode24("cloudtaser-beacon")) {
  await import("../src/beacon-main.ts")
}
