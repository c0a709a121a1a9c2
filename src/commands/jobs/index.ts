import JobsList from './list.js'

/** `singularity jobs` alone: the list. */
export default class Jobs extends JobsList {
  static override summary = 'Every scheduled job (same as `jobs list`).'
  static override examples = [
    {description: 'Every job', command: '<%= config.bin %> jobs'},
    {description: 'Failing jobs as JSON', command: '<%= config.bin %> jobs --failing --json'},
  ]
}
