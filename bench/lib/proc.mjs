// What a Miniflare's workerd process uses, read from /proc (Linux only): its
// resident memory and its CPU time, so work per request can be counted.
import { readdirSync, readFileSync } from 'node:fs';

/** Pids of workerd processes that are children of this Node process. */
export function workerdPids() {
  if (process.platform !== 'linux') return [];
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        const status = readFileSync(`/proc/${pid}/status`, 'utf8');
        return /^Name:\s+workerd$/m.test(status) && new RegExp(`^PPid:\\s+${process.pid}$`, 'm').test(status);
      } catch {
        return false; // the process ended while we looked
      }
    })
    .map(Number);
}

/** VmRSS of `pid` in MiB, or null when unknown. @param {number | undefined} pid */
export function rssMiB(pid) {
  if (pid === undefined) return null;
  try {
    const kib = Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
    return Number.isFinite(kib) ? Math.round((kib / 1024) * 10) / 10 : null;
  } catch {
    return null;
  }
}

/** Samples `pid`'s RSS every `intervalMs` until stopped; returns the peak and the last sample. @param {number} pid */
export function sampleRss(pid, intervalMs = 500) {
  let peak = rssMiB(pid);
  let last = peak;
  const timer = setInterval(() => {
    last = rssMiB(pid);
    if (last !== null && (peak === null || last > peak)) peak = last;
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      return { peakMiB: peak, endMiB: rssMiB(pid) ?? last };
    },
  };
}

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

/** CPU seconds (user + system) `pid` has used so far, or null when unknown. @param {number | undefined} pid */
export function cpuSeconds(pid) {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th of them.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
  } catch {
    return null;
  }
}
