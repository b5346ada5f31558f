// What one operation costs on Cloudflare's Workers Paid plan, beyond the
// monthly included quota, in USD. The bench's cost model multiplies the
// operations it counted per request by these prices: the one place they live.
//
// Checked 2026-12-02 against
//   https://developers.cloudflare.com/workers/platform/pricing/
//   https://developers.cloudflare.com/durable-objects/platform/pricing/
//   https://developers.cloudflare.com/d1/platform/pricing/
// Left out: Durable Object duration ($12.50 per million GB-s), which is wall
// time an object stays active, set by the traffic's shape rather than by one
// request, and storage per GB-month, which is flat in time (README, "Cost").
export const PRICES = {
  date: '2026-12-02',
  source: 'developers.cloudflare.com: workers/platform/pricing, durable-objects/platform/pricing, d1/platform/pricing',
  usdPerMillion: {
    workerRequests: 0.3,
    workerCpuMs: 0.02,
    durableObjectRequests: 0.15,
    durableObjectRowsRead: 0.001,
    durableObjectRowsWritten: 1.0,
    d1RowsRead: 0.001,
    d1RowsWritten: 1.0,
  },
};

/**
 * USD per million requests for the operations one request costs.
 * @param {{ cpuMs: number | null, doCalls: number, doRowsRead: number, doRowsWritten: number, d1RowsRead: number, d1RowsWritten: number }} perRequest
 */
export function usdPerMillionRequests(perRequest) {
  const p = PRICES.usdPerMillion;
  const total =
    p.workerRequests +
    (perRequest.cpuMs ?? 0) * p.workerCpuMs +
    perRequest.doCalls * p.durableObjectRequests +
    perRequest.doRowsRead * p.durableObjectRowsRead +
    perRequest.doRowsWritten * p.durableObjectRowsWritten +
    perRequest.d1RowsRead * p.d1RowsRead +
    perRequest.d1RowsWritten * p.d1RowsWritten;
  return Math.round(total * 1000) / 1000;
}
