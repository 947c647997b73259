// Test projects: fast unit tests of pure code, and integration tests that share one real
// control plane per run (started by the integration project's global setup).
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["operator/src/**/*.test.ts", "operator/harness/**/*.test.ts"],
        },
      },
      {
        test: {
          name: "integration",
          include: ["operator/test/**/*.test.ts"],
          globalSetup: ["operator/test/global-setup.ts"],
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
