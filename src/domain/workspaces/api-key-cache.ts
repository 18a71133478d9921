import postgres from "postgres";
import type { Logger } from "../../lib/logger.js";

/**
 * The channel the api_keys trigger notifies (migration 0016_api_key_notify) on every update or delete of a key, with
 * the hex of the key's hash as payload ("*" after a truncate); committed changes only, so a revocation that rolls back
 * evicts nothing it should not.
 */
export const API_KEY_CHANNEL = "roster_api_keys";

export interface CachedApiKey {
  workspaceId: string;
  keyId: string;
}

export interface ApiKeyCacheOptions {
  /** How long an entry is trusted at most (0 turns the cache off): the bound for a listening connection that died silently. */
  ttlMs: number;
  maxEntries?: number;
  /** The LISTEN connection's application_name, so it can be told apart in pg_stat_activity. */
  applicationName?: string;
  log?: Logger;
}

const DEFAULT_MAX_ENTRIES = 10_000;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

/**
 * Which workspace each recently seen API key belongs to, so an authenticated request needs no database round trip.
 *
 * Revocation stays immediate. A trigger on api_keys notifies every change, whichever path made it (the admin API, SQL
 * by hand), and each API process listens on its own connection; the notification evicts the key. Entries are used only
 * while that connection is up: when it drops, everything is forgotten and every request reads the database again until
 * LISTEN is back. A lookup's result is kept only when no notification arrived while it ran (`token`), so a revocation
 * racing the lookup cannot leave a stale entry. Only valid keys are kept (a new key works at once, an unknown one is
 * looked up every time). ttlMs bounds the one case no event reports: a connection that died without a word.
 *
 * The listener starts on the first lookup, so processes that never authenticate (the workers) never open it.
 */
export class ApiKeyCache {
  private readonly entries = new Map<string, { key: CachedApiKey; expiresAt: number }>();
  private readonly maxEntries: number;
  private sql: postgres.Sql | null = null;
  /** Bumped by every notification and every (re)connection: a lookup started under an older one is not kept. */
  private generation = 0;
  private listening = false;
  private closed = false;
  private retryMs = RETRY_MIN_MS;
  private retryTimer: NodeJS.Timeout | null = null;
  private connecting: Promise<void> | null = null;

  constructor(
    private readonly databaseUrl: string,
    private readonly opts: ApiKeyCacheOptions,
  ) {
    this.maxEntries = opts.maxEntries ?? DEFAULT_MAX_ENTRIES;
  }

  get enabled(): boolean {
    return this.opts.ttlMs > 0 && !this.closed;
  }

  /** True while notifications reach this process, i.e. while entries are used (tests wait on it). */
  get isListening(): boolean {
    return this.listening;
  }

  /** The workspace of a key by the hex of its hash, if cached and trusted now. */
  get(hashHex: string): CachedApiKey | undefined {
    if (!this.listening) return undefined;
    const entry = this.entries.get(hashHex);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.entries.delete(hashHex);
      return undefined;
    }
    return entry.key;
  }

  /** Taken before a database lookup; hand it back to `set` with the result. Starts the listener on first use. */
  token(): number {
    if (this.enabled && !this.sql) this.start();
    return this.generation;
  }

  /** Keeps a valid key found by a lookup, unless anything changed since its `token` (or notifications are not arriving). */
  set(hashHex: string, key: CachedApiKey, token: number): void {
    if (!this.listening || token !== this.generation || !this.enabled) return;
    if (this.entries.size >= this.maxEntries && !this.entries.has(hashHex)) {
      // The oldest entry goes (a Map iterates in insertion order).
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(hashHex, { key, expiresAt: Date.now() + this.opts.ttlMs });
  }

  /** Forgets a key at once in this process (a revocation made here); other processes hear of it from the trigger. */
  evict(hashHex: string): void {
    this.generation++;
    this.entries.delete(hashHex);
  }

  /** Resolves once notifications are arriving (tests; the API does not wait for it). */
  async ready(): Promise<void> {
    if (!this.enabled) return;
    if (!this.sql) this.start();
    while (!this.listening && !this.closed) await (this.connecting ?? new Promise((r) => setTimeout(r, 20)));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.forgetAll();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const sql = this.sql;
    this.sql = null;
    if (sql) await sql.end({ timeout: 1 }).catch(() => {});
  }

  private start(): void {
    // postgres.js's own sql.listen() re-listens after a drop but does not say that it dropped, which is the one thing
    // this cache must know: the connection is ours, with postgres.js's (untyped) onnotify and its onclose.
    const options: postgres.Options<Record<string, never>> & { onnotify: (channel: string, payload: string) => void } = {
      max: 1,
      // The one connection stays open: closing it when idle would only make the cache forget everything.
      idle_timeout: 0,
      max_lifetime: null,
      connect_timeout: 10,
      // LISTEN reads no arrays; and a connection closed while it fetches array types is an unhandled rejection in
      // postgres.js 3.4.9.
      fetch_types: false,
      onnotice: () => {},
      onnotify: (channel, payload) => {
        if (channel === API_KEY_CHANNEL) this.notified(payload);
      },
      onclose: () => this.dropped(),
      connection: { application_name: this.opts.applicationName ?? "roster-api-keys" },
    };
    this.sql = postgres(this.databaseUrl, options);
    this.listen();
  }

  private listen(): void {
    const sql = this.sql;
    if (!sql || this.closed || this.connecting) return;
    this.connecting = sql
      .unsafe(`listen ${API_KEY_CHANNEL}`)
      .then(
        () => {
          if (this.closed || sql !== this.sql) return;
          // Whatever a lookup started before now might have missed is not kept (token).
          this.forgetAll();
          this.listening = true;
          this.retryMs = RETRY_MIN_MS;
        },
        (err: unknown) => {
          this.opts.log?.debug({ err: err instanceof Error ? err.message : String(err) }, "api key cache: LISTEN failed; looking keys up meanwhile");
          this.retryLater();
        },
      )
      .finally(() => {
        this.connecting = null;
      });
  }

  private notified(payload: string): void {
    if (payload === "*") this.forgetAll();
    else this.evict(payload);
  }

  private dropped(): void {
    this.listening = false;
    this.forgetAll();
    if (!this.closed) this.retryLater();
  }

  private retryLater(): void {
    if (this.closed || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.listen();
    }, this.retryMs);
    this.retryTimer.unref();
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }

  private forgetAll(): void {
    this.generation++;
    this.entries.clear();
  }
}
