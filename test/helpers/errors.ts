import {expect} from 'vitest'

import {CliError} from '../../src/lib/cli/errors.js'

/** The CliError fn throws; fails the test when it throws something else or nothing. */
export function cliErrorOf(fn: () => unknown): CliError {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(CliError)
    return error as CliError
  }
  throw new Error('expected an error')
}
