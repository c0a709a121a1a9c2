/**
 * The jobs features, one module each: list (with drift from the reconciliation plan), resolving a
 * name, running a job now, and its history. This module gathers them for callers.
 */
export {isFailing, listJobs, type JobRow, type JobsListResult, type LastRun, type ListOptions} from './list.js'
export {resolveJob, type ResolvedJob} from './resolve.js'
export {runCronJob, runObanJob, runResolved, type RunOutcome, type RunTarget} from './run.js'
export {jobHistory, type HistoryResult, type HistoryRun} from './history.js'
