import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "./api";

/** The API's own sentence, shown next to what caused it; role=alert so a screen reader hears it at once. */
export function ErrorNote({ error, id }: { error: unknown; id?: string }) {
  if (!error) return null;
  const e = error instanceof ApiError ? error : null;
  const message = e ? e.message : error instanceof Error ? error.message : String(error);
  return (
    <p class="error" role="alert" id={id}>
      {message}
      {e && e.code !== "network_error" ? <span class="code"> ({e.code})</span> : null}
    </p>
  );
}

/** Shown while a request is on its way, so a slow screen is never blank. */
export function Busy({ label = "Loading…" }: { label?: string }) {
  return (
    <p class="busy" role="status">
      {label}
    </p>
  );
}

export function Badge({ status }: { status: string }) {
  return <span class={`badge badge-${status}`}>{status}</span>;
}

export function Section({ title, children, actions }: { title: string; children: ComponentChildren; actions?: ComponentChildren }) {
  return (
    <section aria-labelledby={`h-${slug(title)}`}>
      <div class="section-head">
        <h2 id={`h-${slug(title)}`}>{title}</h2>
        {actions}
      </div>
      {children}
    </section>
  );
}

export const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, "-");

export const when = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString() : "—");

/** Loads data once (and again when `deps` change or reload() is called): data, error and a loading flag. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[] = []) {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, loading: false }),
      (error) => live && setState((s) => ({ data: s.data, error, loading: false })),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

/** Calls `fn` every `ms` while `active`. */
export function useInterval(fn: () => void, ms: number, active: boolean) {
  const saved = useRef(fn);
  saved.current = fn;
  useEffect(() => {
    if (!active) return;
    const t = setInterval(() => saved.current(), ms);
    return () => clearInterval(t);
  }, [ms, active]);
}
