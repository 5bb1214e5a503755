/**
 * A value read in the background and shared by every viewer: however many
 * browsers poll the flow page, Kafka and Postgres are asked at most once per
 * `maxAgeMs`, and a slow section never holds up a fast one.
 */
export interface Reading<T> {
  value: T;
  at: number;
}

export class Refreshing<T> {
  private latest: Reading<T> | null = null;
  private inflight: Promise<void> | null = null;

  constructor(
    private readonly load: () => Promise<T>,
    private readonly maxAgeMs: number,
    private readonly now: () => number,
    private readonly onError: (err: unknown) => void,
  ) {}

  /**
   * The latest reading; starts a new one when it is older than maxAgeMs and
   * waits for it at most `waitMs` (null: nothing read yet).
   */
  async get(waitMs: number): Promise<Reading<T> | null> {
    if (!this.inflight && (!this.latest || this.now() - this.latest.at >= this.maxAgeMs)) {
      const started = this.now();
      this.inflight = this.load()
        .then((value) => {
          this.latest = { value, at: started };
        })
        .catch(this.onError)
        .finally(() => {
          this.inflight = null;
        });
    }
    if (this.inflight) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.inflight,
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, waitMs);
        }),
      ]);
      clearTimeout(timer);
    }
    return this.latest;
  }
}
