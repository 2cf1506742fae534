import type { ViteUserConfig } from "vitest/config"

// Tests open real sockets and run real TLS handshakes on 127.0.0.1, so they get more time than unit tests would.
const config: ViteUserConfig = {
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    sequence: { concurrent: false }
  }
}

export default config
