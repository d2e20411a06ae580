/** Unit tests and real-apiserver tests live beside the code as *.test.ts. One kube-apiserver + etcd
 * is started for the whole run by the global setup; suites that must restart or break the control
 * plane start their own. */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/agent", "<rootDir>/shared", "<rootDir>/e2e"],
  testMatch: ["**/*.test.ts"],
  transform: {
    "^.+\\.ts$": ["ts-jest", { tsconfig: { module: "commonjs", moduleResolution: "node10", ignoreDeprecations: "6.0" }, diagnostics: false }],
  },
  globalSetup: "<rootDir>/e2e/controlplane/jest-global-setup.ts",
  globalTeardown: "<rootDir>/e2e/controlplane/jest-global-teardown.ts",
  maxWorkers: 2,
  testTimeout: 60000,
};
