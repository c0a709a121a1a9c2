/**
 * Polls probe until it returns a truthy value, which is returned. On timeout it THROWS, naming what it
 * waited for and the last value seen: a wait never gives up quietly and lets the test go on.
 */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | null | false> | T | undefined | null | false, options: {timeoutMs?: number; intervalMs?: number} = {}): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 30_000
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    last = await probe()
    if (last) return last as T
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what} (last seen: ${JSON.stringify(last)})`)
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 100))
  }
}
