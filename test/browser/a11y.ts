// axe-core in the page under test. The dashboard's CSP (script-src 'self') refuses
// an inline <script>, which is what page.addScriptTag({ path }) injects, so the
// library's source goes in through page.evaluate (DevTools evaluation is not
// subject to the page's CSP) and defines window.axe there.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Page } from 'playwright-core';
import { expect } from 'vitest';

const require = createRequire(import.meta.url);
let axeSource: string | undefined;

export interface AxeViolation {
  id: string;
  impact: 'minor' | 'moderate' | 'serious' | 'critical' | null;
  help: string;
  nodes: { target: unknown[]; failureSummary?: string }[];
}

/** The impacts a test refuses. */
export const BLOCKING_IMPACTS = new Set(['serious', 'critical']);

/** Every violation axe finds on the page as it is now (the whole document). */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  axeSource ??= readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(axeSource);
  return page.evaluate(async () => {
    const results = await (window as unknown as { axe: { run(): Promise<{ violations: AxeViolation[] }> } }).axe.run();
    return results.violations.map(({ id, impact, help, nodes }) => ({
      id,
      impact,
      help,
      nodes: nodes.map(({ target, failureSummary }) => ({ target, failureSummary })),
    }));
  });
}

/** One line per violation and one per node, for a failure message. */
export function describeViolations(violations: AxeViolation[]): string {
  if (violations.length === 0) return 'no axe violations';
  return violations
    .map((v) =>
      [
        `[${v.impact}] ${v.id}: ${v.help} (${v.nodes.length} nodes)`,
        ...v.nodes.slice(0, 5).map((n) => `    ${JSON.stringify(n.target)} ${n.failureSummary?.replace(/\s+/g, ' ') ?? ''}`),
      ].join('\n'),
    )
    .join('\n');
}

/** Fails on any serious or critical violation; the message lists all of them, minor ones too. */
export async function expectNoSeriousViolations(page: Page, where: string): Promise<AxeViolation[]> {
  const violations = await axeViolations(page);
  const blocking = violations.filter((v) => BLOCKING_IMPACTS.has(v.impact ?? ''));
  expect(
    blocking.map((v) => `${v.impact} ${v.id}`),
    `axe on ${where}:\n${describeViolations(violations)}`,
  ).toEqual([]);
  // Minor and moderate findings do not fail a test; they are printed so they are not lost.
  if (violations.length > 0) console.info(`axe on ${where}, not blocking:\n${describeViolations(violations)}`);
  return violations;
}
