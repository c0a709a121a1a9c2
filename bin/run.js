#!/usr/bin/env node
// Start-up time matters (bench/startup.sh): see src/cli.ts.
import {run} from '../dist/cli.js'

await run(import.meta.url)
