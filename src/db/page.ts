/**
 * Keyset pagination, shared by the management lists. A page is one index
 * range: the rows after the last one shown, in the list's total order (which
 * ends in a unique column), never OFFSET. So a page reads about `limit` rows
 * however long the table is, and rows inserted before the position neither
 * repeat nor push rows off the later pages.
 */

/** One page of a list, and the sort key of its last row when another page follows (else null). */
export interface Page<T, K> {
  rows: T[];
  nextAfter: K | null;
}

/** A statement as its text and values, so tests can EXPLAIN QUERY PLAN exactly what a list runs. */
export interface SqlQuery {
  sql: string;
  params: (string | number | null)[];
}

/** One WHERE term with its values. */
export interface Condition {
  sql: string;
  params: (string | number | null)[];
}

/**
 * `SELECT <columns> FROM <from> WHERE <conditions> ORDER BY <orderBy> LIMIT limit + 1`:
 * the extra row tells whether there is a next page. Absent filters leave their
 * terms out (rather than `? IS NULL OR …`), so the planner can use an index.
 */
export function pageQuery(from: string, conditions: Condition[], orderBy: string, limit: number, columns = "*"): SqlQuery {
  const where = conditions.length > 0 ? ` WHERE ${conditions.map((condition) => condition.sql).join(" AND ")}` : "";
  return {
    sql: `SELECT ${columns} FROM ${from}${where} ORDER BY ${orderBy} LIMIT ?`,
    params: [...conditions.flatMap((condition) => condition.params), limit + 1],
  };
}

/** Runs a pageQuery: the first `limit` rows, and the sort key (`keyOf`) of the last one when a row follows it. */
export async function readPage<Row, T, K>(
  db: D1Database,
  query: SqlQuery,
  limit: number,
  toRecord: (row: Row) => T,
  keyOf: (row: Row) => K,
): Promise<Page<T, K>> {
  const { results } = await db
    .prepare(query.sql)
    .bind(...query.params)
    .all<Row>();
  const rows = results.slice(0, limit);
  const last = rows.at(-1);
  return { rows: rows.map(toRecord), nextAfter: results.length > limit && last !== undefined ? keyOf(last) : null };
}
