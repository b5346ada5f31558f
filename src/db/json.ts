/** D1 stores lists as JSON text; these read them back defensively. */
export function parseJsonList<T = string>(text: string | null | undefined): T[] {
  if (!text) return [];
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) ? (value as T[]) : [];
  } catch {
    return [];
  }
}

export const nowIso = (now: number = Date.now()): string => new Date(now).toISOString();
