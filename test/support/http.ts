/** Helpers shared by the tests that talk to real server processes over HTTP. */

/** A member as `GET /v1/members` lists it. */
export interface ApiMember {
  readonly id: number;
  readonly name: string;
  readonly peerUrl: string;
  readonly role: 'voter' | 'learner';
}

/** The fields of API responses the tests look at (every endpoint's, all optional). */
export interface ApiBody {
  readonly error?: { readonly code: string; readonly message: string; readonly retryable?: boolean };
  readonly revision?: number;
  readonly value?: string;
  readonly version?: number;
  readonly count?: number;
  readonly deleted?: number;
  readonly succeeded?: boolean;
  readonly responses?: readonly { readonly get: { readonly kvs: readonly { readonly value: string }[] } }[];
  readonly role?: string;
  readonly applied?: number;
  readonly leader?: { readonly id?: number; readonly name: string } | null;
  readonly kvs?: readonly { readonly key: string; readonly value: string }[];
  readonly members?: readonly ApiMember[];
  readonly member?: ApiMember;
  readonly clusterId?: string | number;
}

/** Polls `probe` every 25 ms until it yields a value; fails after `timeoutMs`. Probe errors propagate. */
export async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => T | undefined | Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Like {@link until}, but a probe that throws counts as "not yet" (nodes coming and going). */
export function untilQuiet<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  return until(what, timeoutMs, () => probe().catch(() => undefined));
}

/** One JSON request, aborted after `timeoutMs`; network errors propagate. */
export async function requestJson(
  url: string,
  init: RequestInit = {},
  timeoutMs = 3000,
): Promise<{ status: number; body: ApiBody }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, body: (await res.json()) as ApiBody };
}

/** Like {@link requestJson}, but a request that failed outright (refused, reset, timed out) answers status 0. */
export async function requestJsonOrUnreachable(
  url: string,
  init: RequestInit = {},
  timeoutMs = 3000,
): Promise<{ status: number; body: ApiBody }> {
  try {
    return await requestJson(url, init, timeoutMs);
  } catch (error) {
    return { status: 0, body: { error: { code: 'UNREACHABLE', message: (error as Error).message } } };
  }
}
