/** The HTTP status of one admin listener request, within `ms` (0: nothing answered). */
export async function adminStatus(port: number, path: string, init: RequestInit = {}, ms = 2000): Promise<number> {
  try {
    return (await fetch(`http://127.0.0.1:${port}${path}`, { ...init, signal: AbortSignal.timeout(ms) })).status;
  } catch {
    return 0;
  }
}
