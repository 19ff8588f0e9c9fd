/**
 * Thrown by a probe when waiting longer cannot help (the process being waited for has exited):
 * waitFor rethrows it at once instead of polling on to its deadline.
 */
export class GaveUp extends Error {
  override name = 'GaveUp';
}

/** Poll with a deadline instead of sleeping: returns the first truthy value of `probe`. */
export async function waitFor<T>(
  probe: () => T | Promise<T>,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 25;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (let i = 0; i < 1_000_000; i++) {
    try {
      const v = await probe();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      if (err instanceof GaveUp) throw err;
      last = err;
    }
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what ?? 'condition'}${last ? ` (last error: ${String(last)})` : ''}`);
}
