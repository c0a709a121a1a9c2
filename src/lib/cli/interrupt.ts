/** Ctrl-C (SIGINT) and SIGTERM as an AbortSignal, for long work that must stop cleanly (exit 130, nothing half-kept). */
export interface Interrupt {
  signal: AbortSignal
  /** stops listening; call it in a finally */
  release: () => void
}

/** Listens for SIGINT and SIGTERM until released; either one aborts the signal. */
export function onInterrupt(): Interrupt {
  const controller = new AbortController()
  const abort = () => controller.abort()
  process.on('SIGINT', abort)
  process.on('SIGTERM', abort)
  return {
    signal: controller.signal,
    release: () => {
      process.off('SIGINT', abort)
      process.off('SIGTERM', abort)
    },
  }
}
