// Baseline (b): the cheapest possible proxy Worker. It forwards every request
// to the origin unchanged and returns the answer: what any Worker in front of
// an origin costs, before any authentication.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    return fetch(new URL(url.pathname + url.search, env.ORIGIN_URL), request);
  },
};
