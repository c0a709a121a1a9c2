import {defineConfig} from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // Generous: the machines are shared and loaded (a ceiling never makes a test pass).
    testTimeout: 180_000,
    hookTimeout: 180_000,
    // The built CLI (dist/) is Node's to load, never vitest's module runner: runCliInProcess
    // (test/helpers/cli.ts) runs it as bin/run.js does, one copy of each module.
    server: {deps: {external: [/\/dist\//]}},
    pool: 'forks',
    // Two cores: two test files at a time share the one throwaway cluster.
    poolOptions: {forks: {maxForks: 2, minForks: 1}},
    // CI also writes the results as JSON so that .ci/run can print a plain closing count.
    reporters: process.env.CI ? ['default', ['json', {outputFile: '.vitest-results.json'}]] : ['default'],
  },
})
