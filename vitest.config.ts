// Test projects: fast unit tests of pure code, and integration and end-to-end tests that share
// one real control plane per run (started by their common global setup).
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
          exclude: [
            "operator/test/e2e/**",
            "operator/test/faults/**",
            "operator/test/node/**",
            "operator/test/security/**",
          ],
          globalSetup: ["operator/test/global-setup.ts"],
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
      {
        // The operator as a process, kubectl as the user, Debian's Dovecot and Postfix as the mail server.
        test: {
          name: "e2e",
          include: ["operator/test/e2e/**/*.test.ts"],
          globalSetup: ["operator/test/global-setup.ts"],
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
      {
        // Issue 11's findings, each driven as the attacker would: kubectl as a namespace editor, the
        // operator as a process, Dovecot where a login proves it. Shares the integration control plane.
        test: {
          name: "security",
          include: ["operator/test/security/**/*.test.ts"],
          globalSetup: ["operator/test/global-setup.ts"],
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
      {
        // Each file starts its own control plane to break (kube-apiserver, etcd) and runs the
        // operator as processes to kill. After the other projects, one file at a time: the faults
        // time failovers, and two cores shared with other tests would blur them.
        test: {
          name: "faults",
          include: ["operator/test/faults/**/*.test.ts"],
          sequence: { groupOrder: 1 },
          fileParallelism: false,
          testTimeout: 600_000,
          hookTimeout: 180_000,
        },
      },
      {
        // A real node (operator/harness/node.ts): each file starts its own control plane and node
        // and runs the built images in pods. Not part of `npm test`: `npm run test:node` (root).
        test: {
          name: "node",
          include: ["operator/test/node/**/*.test.ts"],
          fileParallelism: false,
          testTimeout: 600_000,
          hookTimeout: 1_800_000,
        },
      },
    ],
  },
});
