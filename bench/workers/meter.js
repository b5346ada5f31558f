// The bench's operation counter, wrapped around a Worker for its cost pass
// only (never in the timed rounds, never in keygate itself). It counts the
// platform's own numbers: each SqlStorageCursor's rowsRead/rowsWritten in the
// Durable Objects, each D1 result's meta.rows_read/rows_written, every method
// called on a Durable Object stub (one billed request each) and every alarm
// run. The Worker and its objects share one isolate in Miniflare, so one
// tally sees both.

/** Counted since the last read. */
let tally = fresh();
/** Cursors of SQL run in the objects: rowsRead/rowsWritten are final once consumed, so they are summed when read. */
let cursors = [];

function fresh() {
  return { doCalls: 0, doRowsRead: 0, doRowsWritten: 0, d1Queries: 0, d1RowsRead: 0, d1RowsWritten: 0 };
}

/** The tally so far, and a fresh one from now on. */
export function takeTally() {
  for (const cursor of cursors) {
    tally.doRowsRead += cursor.rowsRead;
    tally.doRowsWritten += cursor.rowsWritten;
  }
  const taken = tally;
  tally = fresh();
  cursors = [];
  return taken;
}

/** A view of `target` whose methods run on the target itself, with `override` taking the given properties. */
function view(target, override) {
  return new Proxy(target, {
    get(object, property) {
      if (Object.hasOwn(override, property)) return override[property];
      const value = Reflect.get(object, property, object);
      return typeof value === 'function' ? value.bind(object) : value;
    },
  });
}

/**
 * Counts the SQL cursors of a Durable Object's storage from now on. The state
 * itself must be passed on unwrapped (the base class checks its type), so its
 * one SqlStorage gets an own exec that records each cursor.
 */
export function meterStorage(ctx) {
  const sql = ctx.storage.sql;
  const exec = sql.exec;
  Object.defineProperty(sql, 'exec', {
    value(query, ...bindings) {
      const cursor = exec.call(sql, query, ...bindings);
      cursors.push(cursor);
      return cursor;
    },
  });
  if (ctx.storage.sql.exec !== sql.exec) throw new Error('ctx.storage.sql is not one object: its cursors cannot be counted');
}

/** Counts one alarm run: the platform bills it as a request to the object. */
export function countAlarm() {
  tally.doCalls += 1;
}

/** A stub whose every method call counts as one object call (one RPC session, one billed request). */
function meteredStub(stub) {
  return new Proxy(stub, {
    get(object, property) {
      const value = Reflect.get(object, property);
      if (typeof value !== 'function' || property === 'then') return value;
      // Called as a method: an RPC method's own .apply or .call would be taken for a remote method's name.
      return (...args) => {
        tally.doCalls += 1;
        return object[property](...args);
      };
    },
  });
}

function meteredNamespace(namespace) {
  return view(namespace, {
    get: (id, options) => meteredStub(namespace.get(id, options)),
    getByName: (name, options) => meteredStub(namespace.getByName(name, options)),
  });
}

function countD1(result) {
  tally.d1Queries += 1;
  tally.d1RowsRead += result.meta?.rows_read ?? 0;
  tally.d1RowsWritten += result.meta?.rows_written ?? 0;
  return result;
}

/** A prepared statement whose runs are counted; first() and raw() go through all() for its meta. */
function meteredStatement(statement) {
  const metered = view(statement, {
    real: statement,
    bind: (...values) => meteredStatement(statement.bind(...values)),
    run: async () => countD1(await statement.run()),
    all: async () => countD1(await statement.all()),
    async first(column) {
      const row = countD1(await statement.all()).results[0] ?? null;
      return column === undefined || row === null ? row : (row[column] ?? null);
    },
    async raw(options) {
      const { results } = countD1(await statement.all());
      const rows = results.map((row) => Object.values(row));
      return options?.columnNames ? [Object.keys(results[0] ?? {}), ...rows] : rows;
    },
  });
  return metered;
}

function meteredD1(db) {
  return view(db, {
    prepare: (query) => meteredStatement(db.prepare(query)),
    batch: async (statements) => (await db.batch(statements.map((s) => s.real ?? s))).map(countD1),
  });
}

/** `env` with its Durable Object namespaces and D1 databases counted. */
export function meteredEnv(env) {
  const metered = {};
  for (const [name, binding] of Object.entries(env)) {
    if (binding && typeof binding.getByName === 'function' && typeof binding.idFromName === 'function') metered[name] = meteredNamespace(binding);
    else if (binding && typeof binding.prepare === 'function' && typeof binding.batch === 'function') metered[name] = meteredD1(binding);
    else metered[name] = binding;
  }
  return metered;
}
