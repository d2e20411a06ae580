/** The fast unit tests only (no control plane, no e2e): what `npm run mutate` runs for each mutant. */
// eslint-disable-next-line @typescript-eslint/no-require-imports -- a CommonJS config, like jest.config.js
const base = require("./jest.config.js");

module.exports = {
  ...base,
  roots: ["<rootDir>/agent", "<rootDir>/shared"],
  testPathIgnorePatterns: ["/node_modules/", "\\.e2e\\.test\\.ts$"],
  globalSetup: undefined,
  globalTeardown: undefined,
};
