/**
 * Settles like `p`, or rejects with `onTimeout()`'s error when `p` has not settled within `ms`. The timer is
 * cleared either way; `p` keeps running (its eventual rejection is swallowed: the caller has moved on).
 */
export async function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error | Promise<Error>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void Promise.resolve()
        .then(onTimeout)
        .then(reject, reject);
    }, ms);
  });
  p.catch(() => {});
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
