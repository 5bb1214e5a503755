import { setTimeout as sleep } from 'node:timers/promises';
import { RawMllpClient, ackField } from './raw-mllp-client.js';

/** What the senders of a fault test saw, over all their connections. */
export interface SenderStats {
  /** Frames written: first tries and resends. */
  frames: number;
  aa: number;
  /** AE or AR (the adapter's "not stored, resend"). */
  errorAcks: number;
  /** No ACK within the sender's timeout, or the connection closed first. */
  noAnswer: number;
  resent: number;
  /** Longest time from writing a frame to its ACK, over the ACKs received. */
  maxAnswerMs: number;
  /** Control ids answered AA. */
  acked: Set<string>;
  /** performance.now() of the latest AA. */
  lastAaAt: number;
  /** The ERR segment of the latest error ACK (test data only), to say why in a run's log. */
  lastError: string;
}

export function senderStats(): SenderStats {
  return {
    frames: 0,
    aa: 0,
    errorAcks: 0,
    noAnswer: 0,
    resent: 0,
    maxAnswerMs: 0,
    acked: new Set(),
    lastAaAt: 0,
    lastError: '',
  };
}

export type Answer = 'AA' | 'AE' | 'AR' | 'none';

/**
 * One MLLP connection of an original-mode sender (the way interface engines
 * behave): one message at a time; on an error ACK, a timeout or a closed
 * connection the same message is resent (after reconnecting) until AA.
 */
export class ResendingSender {
  private conn: RawMllpClient | null = null;

  constructor(
    private readonly port: () => number,
    private readonly stats: SenderStats,
    private readonly o: { ackTimeoutMs: number; retryDelayMs?: number; giveUpAfterMs?: number },
  ) {}

  /** Writes the message once; what came back (an unanswered connection is dropped). */
  async once(id: string, text: string): Promise<{ answer: Answer; ms: number }> {
    const c = await this.connection();
    const t0 = performance.now();
    this.stats.frames++;
    try {
      await c.send(text);
      const ack = await c.nextAck(this.o.ackTimeoutMs);
      const ms = performance.now() - t0;
      // An ACK for another message would be a late answer: the connection is out of step.
      if (ackField(ack, 'MSA', 2) !== id) throw new Error('ACK for another message');
      this.stats.maxAnswerMs = Math.max(this.stats.maxAnswerMs, ms);
      const code = ackField(ack, 'MSA', 1);
      if (code === 'AA') {
        this.stats.aa++;
        this.stats.acked.add(id);
        this.stats.lastAaAt = performance.now();
        return { answer: 'AA', ms };
      }
      this.stats.errorAcks++;
      this.stats.lastError =
        ack
          .split('\r')
          .find((seg) => seg.startsWith('ERR|'))
          ?.slice(0, 200) ?? '';
      return { answer: code === 'AE' ? 'AE' : 'AR', ms };
    } catch {
      this.stats.noAnswer++;
      this.drop();
      return { answer: 'none', ms: performance.now() - t0 };
    }
  }

  /** Sends until AA; rejects after giveUpAfterMs (default 5 min) without one. */
  async deliver(id: string, text: string): Promise<void> {
    const deadline = performance.now() + (this.o.giveUpAfterMs ?? 300_000);
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) this.stats.resent++;
      if ((await this.once(id, text)).answer === 'AA') return;
      if (performance.now() > deadline) throw new Error(`no AA for ${id} after ${attempt + 1} tries`);
      await sleep(this.o.retryDelayMs ?? 200);
    }
  }

  close(): void {
    this.drop();
  }

  private drop(): void {
    this.conn?.close();
    this.conn = null;
  }

  private async connection(): Promise<RawMllpClient> {
    const deadline = performance.now() + (this.o.giveUpAfterMs ?? 300_000);
    while (!this.conn) {
      try {
        const c = await RawMllpClient.connect(this.port());
        // Closed by the other side while idle: the next message opens a new one.
        c.socket.once('close', () => {
          if (this.conn === c) this.conn = null;
        });
        this.conn = c;
      } catch (err) {
        if (performance.now() > deadline) throw err;
        await sleep(100);
      }
    }
    return this.conn;
  }
}
