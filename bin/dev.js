#!/usr/bin/env -S node --experimental-strip-types --no-warnings
// Runs the TypeScript sources directly (Node 22+ strips types; on Node 20 use `npm run build && bin/run.js`).
import {execute} from '@oclif/core'

await execute({development: true, dir: import.meta.url})
