/**
 * A work-around for a @cloudflare/vitest-pool-workers bug (0.15.1, still in
 * 0.23.0; cloudflare/workers-sdk#15092, fixed by #15106): the wrappers it puts
 * around the Worker's default export and the RateLimiter class set
 * `Class.prototype = new Proxy(Class.prototype, …)` inside the constructor,
 * so every construction (each exports.default.fetch, each Durable Object
 * instance) wraps the previous proxy once more, and every property lookup on
 * a later instance walks the whole chain. In a file that makes a few hundred
 * calls and objects, calls grew from ~65 ms to 6–8 s (workerd at 100% in
 * JSProxy::GetOwnPropertyDescriptor): the bad-input catalogue took 12–30
 * minutes, and takes under a minute with this guard.
 *
 * The guard: a new Proxy over a prototype that already is one of those
 * wrapper proxies returns that proxy instead, which is what the upstream fix
 * does (one proxy per wrapper class; its trap only uses the receiver and the
 * class's own getUnknownPrototypeKey, so it behaves the same). Every other
 * Proxy is made as before, and once the pool is fixed the check never matches.
 */
const INSTALLED = Symbol.for("keygate.test.poolProxyGuard");

export function installPoolProxyGuard(): void {
  const global = globalThis as typeof globalThis & { [INSTALLED]?: true };
  if (global[INSTALLED]) return; // setup files may run more than once per isolate
  const NativeProxy = globalThis.Proxy;
  const wrapperPrototypes = new WeakSet<object>();
  const isWrapperPrototypeTrap = (handler: unknown): boolean => {
    const get = (handler as ProxyHandler<object> | undefined)?.get;
    return typeof get === "function" && String(get).includes("getUnknownPrototypeKey");
  };
  globalThis.Proxy = new NativeProxy(NativeProxy, {
    construct(target, args: [object, ProxyHandler<object>]) {
      if (!isWrapperPrototypeTrap(args[1])) return Reflect.construct(target, args);
      if (wrapperPrototypes.has(args[0])) return args[0];
      const proxy = Reflect.construct(target, args) as object;
      wrapperPrototypes.add(proxy);
      return proxy;
    },
  });
  global[INSTALLED] = true;
}
