/**
 * @module
 * The simulator's machinery: a seeded PRNG, a virtual clock with an event
 * queue, and a network between regions (latency matrix, jitter, loss,
 * partitions). Nothing here knows about leases; sim/model.ts puts the actors
 * on it. Deterministic: one seed gives one run, event for event.
 */

/** Regions as the design note names them (a Durable Object location hint each: enam, sam, weur, apac, oc). */
export const REGIONS = ["NA", "SAM", "EU", "APAC", "OC"] as const;
export type Region = (typeof REGIONS)[number];

/**
 * One-way latency in ms between regions (a Worker in one, a Durable Object in
 * the other). In-region, NA↔EU, NA↔APAC, EU↔APAC and EU↔OC are the design
 * note's (scale-design-2026-12.md §1d, read as one-way as it states; EU↔APAC
 * 170 is pessimistic against London↔Singapore's 160–180 ms round trip); the
 * others are half the round trips of §1a's sources where they give one
 * (Fremont↔Sydney 185 ms) and rounded estimates otherwise.
 */
export const ONE_WAY_MS: Readonly<Record<Region, Readonly<Record<Region, number>>>> = {
  NA: { NA: 3, SAM: 60, EU: 40, APAC: 90, OC: 95 },
  SAM: { NA: 60, SAM: 3, EU: 100, APAC: 150, OC: 160 },
  EU: { NA: 40, SAM: 100, EU: 3, APAC: 170, OC: 175 },
  APAC: { NA: 90, SAM: 150, EU: 170, APAC: 3, OC: 55 },
  OC: { NA: 95, SAM: 160, EU: 175, APAC: 55, OC: 3 },
};

/** mulberry32: 32 bits of state, a full period of 2^32, plenty for a simulation (not for secrets). */
export class Rng {
  private state: number;

  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  /** A uniform number in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }

  /** An exponential delay with this mean (a Poisson process's gaps). */
  exponential(mean: number): number {
    return -Math.log(1 - this.next()) * mean;
  }

  /** An index drawn with these weights (not all zero). */
  weighted(weights: readonly number[]): number {
    let total = 0;
    for (const w of weights) total += w;
    let x = this.next() * total;
    for (let i = 0; i < weights.length; i++) {
      x -= weights[i]!;
      if (x < 0) return i;
    }
    return weights.length - 1;
  }

  /** An independent stream for one concern, so that (say) more loss does not change the arrivals. */
  fork(label: string): Rng {
    let h = (this.seed ^ 0x9e3779b9) >>> 0;
    for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0;
    return new Rng(h);
  }
}

interface ScheduledEvent {
  at: number;
  seq: number;
  run: () => void;
}

/** A binary min-heap of events by time, ties broken by insertion order: the same schedule runs the same way every time. */
export class EventQueue {
  private readonly heap: ScheduledEvent[] = [];
  private seq = 0;

  get size(): number {
    return this.heap.length;
  }

  push(at: number, run: () => void): void {
    const heap = this.heap;
    const event = { at, seq: this.seq++, run };
    let i = heap.push(event) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(event, heap[parent]!)) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = event;
  }

  peekTime(): number | undefined {
    return this.heap[0]?.at;
  }

  pop(): ScheduledEvent | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && before(heap[right]!, heap[left]!) ? right : left;
      if (!before(heap[child]!, last)) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
    return top;
  }
}

function before(a: ScheduledEvent, b: ScheduledEvent): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** The virtual clock: epoch ms, advanced only by running events. `afterEvent` runs after every event (the invariant checks). */
export class Simulator {
  now: number;
  /** Events run so far: the index an invariant failure names. */
  eventIndex = 0;
  private readonly queue = new EventQueue();

  constructor(
    start: number,
    private readonly afterEvent: (eventIndex: number) => void = () => {},
  ) {
    this.now = start;
  }

  at(time: number, run: () => void): void {
    this.queue.push(Math.max(time, this.now), run);
  }

  after(delayMs: number, run: () => void): void {
    this.at(this.now + delayMs, run);
  }

  /** Runs events until the queue is empty or the next one is past `until`. */
  run(until: number): void {
    for (;;) {
      const next = this.queue.peekTime();
      if (next === undefined || next > until) break;
      const event = this.queue.pop()!;
      this.now = event.at;
      event.run();
      this.afterEvent(this.eventIndex++);
    }
  }
}

/** A region cut off from every other region (the home's included) from `from` to `to`, epoch ms. */
export interface Partition {
  region: Region;
  from: number;
  to: number;
}

export interface NetworkFaults {
  /** Each one-way delay is base × (1 + U(0, jitter)) + U(0, 1) ms: messages overtake one another. */
  jitter: number;
  /** Each message is lost with this probability, independently. */
  lossRate: number;
  partitions: readonly Partition[];
  /** Each message is held up by an extra U(0, spikeMaxMs) with this probability: answers arrive after their timeouts. */
  spikeRate?: number;
  spikeMaxMs?: number;
  /** Each message is delivered twice (independent delays) with this probability. */
  duplicateRate?: number;
}

/** Messages between regions, with the latency matrix and the faults. A message is a callback run on arrival. */
export class Network {
  sent = 0;
  lost = 0;

  constructor(
    private readonly sim: Simulator,
    private readonly rng: Rng,
    readonly faults: NetworkFaults,
  ) {}

  /** The most a one-way trip can take with this jitter (spikes aside): what bounds are stated against. */
  maxOneWayMs(from: Region, to: Region): number {
    return ONE_WAY_MS[from][to] * (1 + this.faults.jitter) + 1;
  }

  /**
   * Sends a message; `deliver` runs on arrival unless it is lost, or a
   * partition cuts the link when it leaves or when it would arrive.
   * `reliable`: an admin call, retried by its client until it gets through
   * (and subject to jitter only).
   */
  send(from: Region, to: Region, deliver: () => void, reliable = false): void {
    const copies = !reliable && this.rng.chance(this.faults.duplicateRate ?? 0) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      this.sent++;
      let delay = ONE_WAY_MS[from][to] * (1 + this.rng.next() * this.faults.jitter) + this.rng.next();
      if (!reliable && this.rng.chance(this.faults.spikeRate ?? 0)) delay += this.rng.next() * (this.faults.spikeMaxMs ?? 0);
      const lost = !reliable && (this.rng.chance(this.faults.lossRate) || this.cut(from, to, this.sim.now) || this.cut(from, to, this.sim.now + delay));
      if (lost) this.lost++;
      else this.sim.after(delay, deliver);
    }
  }

  private cut(from: Region, to: Region, at: number): boolean {
    if (from === to) return false;
    for (const p of this.faults.partitions) if ((p.region === from || p.region === to) && at >= p.from && at < p.to) return true;
    return false;
  }
}

/** The nearest-rank percentile of sorted values (0 when empty). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}
