import type {Lsn} from './lsn.js'

/**
 * The tail's output, and which WAL position may be confirmed because of it: a position is "safe" only
 * once every line before it has been written (the write callback ran). Lines gather and are written
 * in large pieces; when the output's buffer is full the input is paused (the server then waits, over
 * TCP) instead of our memory growing.
 */
export class ConfirmingOutput {
  private pending = ''
  /** the position that may be confirmed once `pending` is written */
  private pendingAck: Lsn = 0
  private outstanding = 0
  private flushed: Lsn = 0
  private paused = false
  private closed = false
  private readonly idleWaiters: (() => void)[] = []

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly hooks: {
      /** the safe position advanced (see safeLsn) */
      advanced(): void
      pauseInput(): void
      resumeInput(): void
      /** called once, just before the first line is written */
      beforeFirstWrite?(): void
    },
  ) {}

  private written = false

  /** The last position whose lines are all written. */
  get safeLsn(): Lsn {
    return this.flushed
  }

  /** Characters waiting to be written. */
  get waiting(): number {
    return this.pending.length
  }

  /** Queues one line (without its newline). */
  add(line: string): void {
    this.pending += line + '\n'
  }

  /** The output failed or was closed: nothing more is written. */
  close(): void {
    this.closed = true
    this.pending = ''
  }

  get isClosed(): boolean {
    return this.closed
  }

  /** Everything up to lsn may be confirmed once the lines queued so far are written. */
  markSafe(lsn: Lsn): void {
    if (lsn > this.pendingAck) this.pendingAck = lsn
    if (this.pending === '' && this.outstanding === 0 && lsn > this.flushed) this.advance(lsn)
  }

  /** Writes what is queued. */
  flush(): void {
    if (this.pending === '') {
      if (this.outstanding === 0 && this.pendingAck > this.flushed) this.advance(this.pendingAck)
      return
    }
    if (this.closed) {
      this.pending = ''
      return
    }
    if (!this.written) {
      this.written = true
      this.hooks.beforeFirstWrite?.()
    }
    const ack = this.pendingAck
    const chunk = this.pending
    this.pending = ''
    this.outstanding++
    const ok = this.out.write(chunk, (error?: Error | null) => {
      this.outstanding--
      if (!error) {
        // nothing unwritten left: a position marked meanwhile (keepalive, filtered commit) is safe too
        const safe = this.outstanding === 0 && this.pending === '' && this.pendingAck > ack ? this.pendingAck : ack
        if (safe > this.flushed) this.advance(safe)
      }
      if (this.outstanding === 0) for (const wake of this.idleWaiters.splice(0)) wake()
    })
    if (!ok && !this.paused) {
      this.paused = true
      this.hooks.pauseInput()
      this.out.once('drain', () => this.resumeInput())
    }
  }

  /** Resolves once every write has completed, or after ms. */
  async whenWritten(ms: number): Promise<void> {
    if (this.outstanding === 0 || this.closed) return
    await Promise.race([new Promise<void>((resolve) => this.idleWaiters.push(resolve)), new Promise<void>((resolve) => setTimeout(resolve, ms).unref())])
  }

  /** Reads the input again if the output had paused it. */
  resumeInput(): void {
    if (!this.paused) return
    this.paused = false
    this.hooks.resumeInput()
  }

  private advance(lsn: Lsn): void {
    this.flushed = lsn
    this.hooks.advanced()
  }
}
