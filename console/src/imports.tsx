import type { Ref } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { attributeKey, isTargetKey } from "../../src/domain/target-keys";
import { api, ApiError, download, followEvents, type Answer, type Body, type ImportJob } from "./api";
import { Badge, Busy, ErrorNote, Section, useInterval, useLoad, when } from "./ui";

type Kind = NonNullable<Body<"/v1/imports", "post">["kind"]>;
type Identifier = "email" | "external_id" | "username";
const KINDS: Kind[] = ["contacts", "members", "events"];
const IDENTIFIERS: Identifier[] = ["email", "external_id", "username"];
const COUNT_NAMES = ["created", "updated", "unchanged", "skipped", "failed"] as const;
/** Statuses after which an import no longer changes by itself. */
const SETTLED = new Set(["draft", "validated", "done", "failed", "cancelled", "undone"]);

/** The targets each kind accepts (API.md "Mapping targets"; the API answers 422 for any other). */
const IDENTITY_TARGETS = ["email", "external_id", "username"];
const TARGETS: Record<Kind, string[]> = {
  contacts: [...IDENTITY_TARGETS, "first_name", "last_name", "name", "company_id", "labels", "label_ids", "segment", "segment_value"],
  members: ["email", "first_name", "last_name", "password", "active", "role"],
  events: [...IDENTITY_TARGETS, "event", "occurred_at"],
};
/** Team members log in with their email: it is their only identifier. */
const IDENTIFIERS_BY_KIND: Record<Kind, Identifier[]> = { contacts: IDENTIFIERS, members: ["email"], events: IDENTIFIERS };

/** The keyed target a kind takes: contacts store attributes, events properties, members neither. */
const KEYED: Record<Kind, "attribute" | "property" | null> = { contacts: "attribute", members: null, events: "property" };
/** The select's value for "a new attribute (or property) whose key I type". Not a target: never sent. */
const NEW_KEY = "new:";
const KEY_RULE = "Use 1 to 64 letters, digits or underscores, e.g. plan_type.";

/**
 * The targets a column may take: the kind's fields; for contacts each attribute the workspace already has; the key
 * the server would derive from the header (attributeKey, shared with src/domain, so "Plan Type" → "plan_type", never
 * a key the API refuses); the suggestion; ignore. "New attribute…" (a typed key) is offered beside them.
 */
function targetsFor(kind: Kind, header: string, suggested: string | undefined, current: string | undefined, existing: readonly string[]): string[] {
  const list = [...TARGETS[kind]];
  const keyed = KEYED[kind];
  if (keyed) {
    const derived = attributeKey(header);
    for (const key of [...(keyed === "attribute" ? existing : []), ...(isTargetKey(derived) ? [derived] : [])]) if (!list.includes(`${keyed}:${key}`)) list.push(`${keyed}:${key}`);
  }
  for (const t of [suggested, current]) if (t && t !== "ignore" && !list.includes(t)) list.push(t);
  return [...list, "ignore"];
}

/** What an option says: an attribute target tells whether the workspace has that attribute already. */
function targetLabel(target: string, existing: readonly string[]): string {
  if (!target.startsWith("attribute:")) return target;
  return `${target} (${existing.includes(target.slice("attribute:".length)) ? "existing" : "new"})`;
}

export function ImportsScreen() {
  const [open, setOpen] = useState<ImportJob | "new" | null>(null);
  const [openError, setOpenError] = useState<unknown>(null);
  const history = useLoad(() => api("get", "/v1/imports", { query: { limit: 50 } }), [open]);
  const show = async (id: string) => {
    setOpenError(null);
    try {
      setOpen(await api("get", "/v1/imports/{id}", { path: { id } }));
    } catch (err) {
      setOpenError(err);
    }
  };
  if (open) return <ImportFlow initial={open === "new" ? null : open} onClose={() => setOpen(null)} />;
  return (
    <Section
      title="Import history"
      actions={
        <button type="button" onClick={() => setOpen("new")}>
          New import
        </button>
      }
    >
      <ErrorNote error={history.error} />
      <ErrorNote error={openError} />
      {history.loading && !history.data ? <Busy /> : null}
      {history.data && history.data.data.length === 0 ? <p>No imports yet. Start with “New import”.</p> : null}
      {history.data && history.data.data.length > 0 ? (
        <table>
          <caption class="sr-only">Imports, newest first</caption>
          <thead>
            <tr>
              <th scope="col">File</th>
              <th scope="col">Kind</th>
              <th scope="col">Status</th>
              <th scope="col">Rows</th>
              <th scope="col">Created</th>
              <th scope="col">Updated</th>
              <th scope="col">Failed</th>
              <th scope="col">Started</th>
            </tr>
          </thead>
          <tbody>
            {history.data.data.map((imp) => (
              <tr key={imp.id}>
                <td>
                  <button type="button" class="link" onClick={() => show(imp.id)}>
                    {imp.filename ?? "pasted CSV"}
                  </button>
                </td>
                <td>{imp.kind}</td>
                <td>
                  <Badge status={imp.status} />
                </td>
                <td>{imp.counts.total}</td>
                <td>{imp.counts.created}</td>
                <td>{imp.counts.updated}</td>
                <td>{imp.counts.failed}</td>
                <td>{when(imp.startedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </Section>
  );
}

/** The import options the flow offers (API.md "Options"); attribute types are set on the attributes themselves. */
interface Options {
  mode: "upsert" | "create_only" | "update_only";
  labels: "add" | "replace";
  segmentName: string;
  createMissingPeople: boolean;
  timezone: string;
}

function optionsFrom(o: Record<string, unknown> | null): Options {
  const segment = o?.createSegment as { name?: unknown } | undefined;
  return {
    mode: o?.mode === "create_only" || o?.mode === "update_only" ? o.mode : "upsert",
    labels: o?.labels === "replace" ? "replace" : "add",
    segmentName: typeof segment?.name === "string" ? segment.name : "",
    createMissingPeople: o?.createMissingPeople === true,
    timezone: typeof o?.timezone === "string" ? o.timezone : "UTC",
  };
}

/** The options a kind takes: the API refuses the others (members join no segment; only events create missing people). */
function optionsBody(kind: Kind, o: Options): Record<string, unknown> {
  const segment = o.segmentName.trim() ? { createSegment: { name: o.segmentName.trim() } } : {};
  if (kind === "members") return { mode: o.mode };
  if (kind === "events") return { createMissingPeople: o.createMissingPeople, timezone: o.timezone.trim() || "UTC", ...segment };
  return { mode: o.mode, labels: o.labels, ...segment };
}

function ImportOptions({ kind, value, onChange, problemAt }: { kind: Kind; value: Options; onChange: (o: Options) => void; problemAt: (field: string, id: string) => unknown }) {
  const set = (patch: Partial<Options>) => onChange({ ...value, ...patch });
  return (
    <fieldset class="options">
      <legend>Options</legend>
      {kind !== "events" ? (
        <>
          <label for="import-mode">Which rows to write</label>
          <select id="import-mode" value={value.mode} onChange={(e) => set({ mode: e.currentTarget.value as Options["mode"] })}>
            <option value="upsert">create new {kind === "members" ? "members" : "people"} and update known ones</option>
            <option value="create_only">only create new {kind === "members" ? "members" : "people"}</option>
            <option value="update_only">only update known {kind === "members" ? "members" : "people"}</option>
          </select>
          {problemAt("options.mode", "option-problem-mode")}
        </>
      ) : null}
      {kind === "contacts" ? (
        <>
          <label for="import-labels">A labels column</label>
          <select id="import-labels" value={value.labels} onChange={(e) => set({ labels: e.currentTarget.value as Options["labels"] })}>
            <option value="add">adds to each person's labels</option>
            <option value="replace">replaces each person's labels</option>
          </select>
        </>
      ) : null}
      {kind === "events" ? (
        <>
          <label class="inline">
            <input type="checkbox" checked={value.createMissingPeople} onChange={(e) => set({ createMissingPeople: e.currentTarget.checked })} /> Create people who are not known yet
          </label>
          <label for="import-timezone">Time zone of times written without an offset</label>
          <input id="import-timezone" value={value.timezone} onInput={(e) => set({ timezone: e.currentTarget.value })} />
          {problemAt("options.timezone", "option-problem-timezone")}
        </>
      ) : null}
      {kind !== "members" ? (
        <>
          <label for="import-segment">Put everyone this import touches in a new static segment named (optional)</label>
          <input id="import-segment" value={value.segmentName} onInput={(e) => set({ segmentName: e.currentTarget.value })} />
          {problemAt("options.createSegment.name", "option-problem-segment")}
        </>
      ) : null}
    </fieldset>
  );
}

/** The per-field problems of a refused mapping (422 invalid_mapping or secret_column). */
function mappingProblems(err: unknown): { field: string; reason: string }[] {
  if (!(err instanceof ApiError) || err.status !== 422) return [];
  const problems = (err.details as { problems?: unknown } | undefined)?.problems;
  return Array.isArray(problems) ? problems.filter((p) => typeof p?.field === "string" && typeof p?.reason === "string") : [];
}

/** Upload or paste → draft → Identify → map → Validate → Start → progress → summary, in one panel. */
function ImportFlow({ initial, onClose }: { initial: ImportJob | null; onClose: () => void }) {
  const [imp, setImp] = useState<ImportJob | null>(initial);
  const [identifier, setIdentifier] = useState<Identifier>(initial?.identifier ?? "email");
  const [mapping, setMapping] = useState<Record<string, string>>(initial ? { ...(initial.suggestedMapping ?? {}), ...(initial.mapping ?? {}) } : {});
  const [dirty, setDirty] = useState(!initial?.mapping);
  const [options, setOptions] = useState<Options>(optionsFrom(initial?.options ?? null));
  const [error, setError] = useState<{ at: string; error: unknown } | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  // Columns mapped to a new attribute (or property) whose key the person types: column → the key as typed.
  const [newKeys, setNewKeys] = useState<Record<string, string>>({});
  // Own keys only: a column named "constructor" must not read Object.prototype's.
  const newKeyOf = (h: string) => (Object.hasOwn(newKeys, h) ? newKeys[h] : undefined);
  // The workspace's attributes, offered as targets of a contacts import.
  const attributes = useLoad(() => (imp?.kind === "contacts" ? api("get", "/v1/attributes", { query: { limit: 1000 } }) : Promise.resolve(null)), [imp?.kind]);
  const existing = attributes.data?.data.map((a) => a.key) ?? [];

  // After Upload, Validate and Start the control that was pressed goes away or is disabled: focus moves to the new
  // step (the Identifier, or the outcome's heading), so a keyboard or screen reader user goes on from there.
  const [focusTo, setFocusTo] = useState<"identifier" | "outcome" | null>(null);
  const identifierRef = useRef<HTMLSelectElement>(null);
  const outcomeRef = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    const el = focusTo === "identifier" ? identifierRef.current : focusTo === "outcome" ? outcomeRef.current : null;
    if (!el) return;
    el.focus();
    if (document.activeElement === el) setFocusTo(null);
  });

  const refresh = async () => {
    if (!imp) return;
    try {
      setImp(await api("get", "/v1/imports/{id}", { path: { id: imp.id } }));
    } catch (err) {
      setError({ at: "progress", error: err });
    }
  };
  // While it runs, the import's progress stream (GET /v1/imports/:id/progress) drives the screen; if the stream
  // cannot be followed, the screen falls back to asking for the import every half second.
  const running = Boolean(imp && !SETTLED.has(imp.status));
  const [streamFailed, setStreamFailed] = useState(false);
  useEffect(() => {
    if (!imp || !running) return;
    const ctl = new AbortController();
    followEvents(
      "/v1/imports/{id}/progress",
      { id: imp.id },
      (event, data) => {
        if (event === "import") setImp(data as ImportJob);
        else if (event === "progress") {
          setImp((prev) => (prev ? { ...prev, status: prev.status === "queued" ? "processing" : prev.status, progress: data as ImportJob["progress"] } : prev));
        }
      },
      ctl.signal,
    )
      // A stream that ended or failed while the import still runs (a restarted server): ask instead.
      .catch(() => {})
      .finally(() => {
        if (!ctl.signal.aborted) setStreamFailed(true);
      });
    return () => ctl.abort();
  }, [imp?.id, running]);
  useInterval(refresh, 500, running && streamFailed);

  const act = async (at: string, fn: () => Promise<void>) => {
    setBusy(at);
    setError(null);
    try {
      await fn();
    } catch (err) {
      setError({ at, error: err });
    } finally {
      setBusy(null);
    }
  };
  const saveMapping = async (id: string) => {
    const bad = Object.entries(newKeys).filter(([, key]) => !isTargetKey(key));
    if (bad.length) throw new Error(`The new key for column ${bad.map(([h]) => `“${h}”`).join(", ")} is not valid. ${KEY_RULE}`);
    if (!dirty) return;
    setImp(await api("put", "/v1/imports/{id}/mapping", { path: { id }, body: { identifier, mapping, options: optionsBody(imp?.kind ?? "contacts", options) } }));
    setDirty(false);
  };
  const cancellable = Boolean(imp && ["queued", "validating", "processing"].includes(imp.status));
  const errAt = (at: string) => (error?.at === at ? <ErrorNote error={error.error} /> : null);
  // A refused mapping (422) lists its problems by field: "identifier", "mapping.<column>", "options.<name>".
  const problems = error?.at === "mapping" ? mappingProblems(error.error) : [];
  const problemAt = (field: string, id: string) => {
    const here = problems.filter((p) => p.field === field);
    return here.length ? (
      <p class="error field-problem" id={id}>
        {here.map((p) => p.reason).join(" ")}
      </p>
    ) : null;
  };
  const SHOWN_OPTIONS = ["options.mode", "options.timezone", "options.createSegment.name"];
  const elsewhere = problems.filter(
    (p) => p.field !== "identifier" && !SHOWN_OPTIONS.includes(p.field) && !(p.field.startsWith("mapping.") && imp?.headers.includes(p.field.slice("mapping.".length))),
  );

  return (
    <Section
      title={imp ? `Import ${imp.filename ?? "of pasted CSV"}` : "New import"}
      actions={
        <button type="button" onClick={onClose}>
          Back to history
        </button>
      }
    >
      {!imp ? (
        <Upload
          busy={busy === "upload"}
          error={errAt("upload")}
          onUpload={(body) =>
            act("upload", async () => {
              const created = await api("post", "/v1/imports", { body });
              setImp(created);
              setNewKeys({});
              setFocusTo("identifier");
              setMapping({ ...(created.suggestedMapping ?? {}) });
              setOptions(optionsFrom(created.options));
              setDirty(true);
            })
          }
        />
      ) : (
        <>
          <Draft imp={imp} />
          <fieldset disabled={!["draft", "validated", "failed"].includes(imp.status) || busy !== null}>
            <legend>Identify and map</legend>
            <label for="identifier">Identifier</label>
            <select
              id="identifier"
              ref={identifierRef}
              aria-invalid={problems.some((p) => p.field === "identifier") || undefined}
              aria-describedby={problems.some((p) => p.field === "identifier") ? "identifier-problem" : undefined}
              value={identifier}
              onChange={(e) => {
                setIdentifier(e.currentTarget.value as Identifier);
                setDirty(true);
              }}
            >
              {IDENTIFIERS_BY_KIND[imp.kind].map((i) => (
                <option key={i} value={i}>
                  {i}
                </option>
              ))}
            </select>
            {problemAt("identifier", "identifier-problem")}
            <table class="mapping">
              <caption>Where each column goes</caption>
              <thead>
                <tr>
                  <th scope="col">Column</th>
                  <th scope="col">Sample</th>
                  <th scope="col">Target</th>
                </tr>
              </thead>
              <tbody>
                {imp.headers.map((h, i) => (
                  <tr key={h}>
                    <th scope="row">{h}</th>
                    <td>{imp.sample[0]?.[i] ?? ""}</td>
                    <td>
                      <TargetPicker
                        kind={imp.kind}
                        header={h}
                        index={i}
                        targets={targetsFor(imp.kind, h, imp.suggestedMapping?.[h], newKeyOf(h) === undefined ? mapping[h] : undefined, existing)}
                        existing={existing}
                        value={mapping[h] ?? "ignore"}
                        newKey={newKeyOf(h)}
                        refused={problems.some((p) => p.field === `mapping.${h}`)}
                        onChange={(target, newKey) => {
                          setMapping({ ...mapping, [h]: target });
                          const { [h]: _, ...others } = newKeys;
                          setNewKeys(newKey === undefined ? others : { ...others, [h]: newKey });
                          setDirty(true);
                        }}
                      />
                      {problemAt(`mapping.${h}`, `column-problem-${i}`)}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            <ImportOptions
              kind={imp.kind}
              value={options}
              onChange={(o) => {
                setOptions(o);
                setDirty(true);
              }}
              problemAt={problemAt}
            />
            {errAt("mapping")}
            {elsewhere.length ? (
              <ul class="error">
                {elsewhere.map((p, i) => (
                  <li key={i}>
                    {p.field}: {p.reason}
                  </li>
                ))}
              </ul>
            ) : null}
            <div class="actions">
              <button
                type="button"
                onClick={() =>
                  act("mapping", async () => {
                    await saveMapping(imp.id);
                    setImp(await api("post", "/v1/imports/{id}/validate", { path: { id: imp.id } }));
                    setFocusTo("outcome");
                  })
                }
              >
                Validate
              </button>
              <button
                type="button"
                onClick={() =>
                  act("mapping", async () => {
                    await saveMapping(imp.id);
                    setImp(await api("post", "/v1/imports/{id}/start", { path: { id: imp.id } }));
                    setFocusTo("outcome");
                  })
                }
              >
                Start import
              </button>
            </div>
          </fieldset>
          <Outcome imp={imp} headingRef={outcomeRef} />
          {errAt("progress")}
          {cancellable && imp.cancelRequested ? <p role="status">Cancel requested: the import stops after the batch it is writing now.</p> : null}
          {cancellable && !imp.cancelRequested ? (
            <button type="button" disabled={busy === "cancel"} onClick={() => act("cancel", async () => setImp(await api("post", "/v1/imports/{id}/cancel", { path: { id: imp.id } })))}>
              {busy === "cancel" ? "Cancelling…" : "Cancel import"}
            </button>
          ) : null}
          {errAt("cancel")}
          {imp.errors.length > 0 ? (
            <>
              <button type="button" onClick={() => act("errors", () => download("/v1/imports/{id}/errors", { id: imp.id }, `import-${imp.id}-errors.csv`))}>
                Download error report (CSV)
              </button>
              {errAt("errors")}
            </>
          ) : null}
        </>
      )}
    </Section>
  );
}

/**
 * A column's target: a select of the targets the kind takes, and "New attribute…" (or "New property…") with a text box
 * for the key, checked against the server's own key rule as it is typed.
 */
function TargetPicker(props: {
  kind: Kind;
  header: string;
  index: number;
  targets: string[];
  existing: readonly string[];
  value: string;
  newKey: string | undefined;
  refused: boolean;
  onChange: (target: string, newKey?: string) => void;
}) {
  const { kind, header: h, index: i, targets, existing, value, newKey, refused, onChange } = props;
  const keyed = KEYED[kind];
  const keyBad = newKey !== undefined && !isTargetKey(newKey);
  return (
    <>
      <select
        aria-label={`Target for column ${h}`}
        aria-invalid={refused || undefined}
        aria-describedby={refused ? `column-problem-${i}` : undefined}
        value={newKey !== undefined ? NEW_KEY : value}
        onChange={(e) => {
          const v = e.currentTarget.value;
          if (v === NEW_KEY && keyed) {
            const key = attributeKey(h);
            onChange(`${keyed}:${key}`, key);
          } else onChange(v);
        }}
      >
        {targets.map((t) => (
          <option key={t} value={t}>
            {targetLabel(t, existing)}
          </option>
        ))}
        {keyed ? <option value={NEW_KEY}>{keyed === "attribute" ? "New attribute…" : "New property…"}</option> : null}
      </select>
      {newKey !== undefined && keyed ? (
        <>
          <label for={`new-key-${i}`} class="new-key-label">
            New {keyed} key for {h}
          </label>
          <input
            id={`new-key-${i}`}
            class="new-key"
            value={newKey}
            spellcheck={false}
            autocomplete="off"
            aria-invalid={keyBad || undefined}
            aria-describedby={keyBad ? `new-key-problem-${i}` : undefined}
            onInput={(e) => onChange(`${keyed}:${e.currentTarget.value}`, e.currentTarget.value)}
          />
          {keyBad ? (
            <p class="error field-problem" id={`new-key-problem-${i}`}>
              “{newKey}” is not a valid {keyed} key. {KEY_RULE}
            </p>
          ) : null}
        </>
      ) : null}
    </>
  );
}

function Upload({ onUpload, busy, error }: { onUpload: (body: FormData | Body<"/v1/imports", "post">) => void; busy: boolean; error: unknown }) {
  const [kind, setKind] = useState<Kind>("contacts");
  const [file, setFile] = useState<File | null>(null);
  const [paste, setPaste] = useState("");
  const [dragging, setDragging] = useState(false);
  const fileInput = useRef<HTMLInputElement>(null);
  // A file dropped on the fieldset is the file: the labelled input shows it too, so both ways end the same.
  const drop = (e: DragEvent) => {
    e.preventDefault();
    setDragging(false);
    const files = e.dataTransfer?.files;
    const dropped = files?.[0];
    if (!files || !dropped) return;
    setFile(dropped);
    if (fileInput.current) fileInput.current.files = files;
  };
  const submit = (e: Event) => {
    e.preventDefault();
    if (file) {
      const form = new FormData();
      form.append("kind", kind);
      form.append("file", file, file.name);
      onUpload(form);
    } else onUpload({ kind, csv: paste });
  };
  return (
    <form onSubmit={submit}>
      <label for="kind">Import kind</label>
      <select id="kind" value={kind} onChange={(e) => setKind(e.currentTarget.value as Kind)}>
        {KINDS.map((k) => (
          <option key={k} value={k}>
            {k === "members" ? "team members" : k}
          </option>
        ))}
      </select>
      <fieldset
        class={dragging ? "dropzone dragging" : "dropzone"}
        onDragEnter={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragOver={(e) => {
          e.preventDefault();
          if (e.dataTransfer) e.dataTransfer.dropEffect = "copy";
          setDragging(true);
        }}
        onDragLeave={(e) => {
          if (!e.currentTarget.contains(e.relatedTarget as Node | null)) setDragging(false);
        }}
        onDrop={drop}
      >
        <legend>Upload a file</legend>
        <label for="csv-file">CSV file</label>
        <input
          id="csv-file"
          ref={fileInput}
          type="file"
          accept=".csv,text/csv,text/plain"
          aria-describedby="csv-drop-hint"
          onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)}
        />
        <p id="csv-drop-hint" class="hint">
          or drop a CSV file here
        </p>
        {file ? (
          <p role="status">
            Selected: {file.name} ({file.size.toLocaleString()} bytes)
          </p>
        ) : null}
      </fieldset>
      <label for="csv-paste">Paste CSV</label>
      <textarea id="csv-paste" rows={8} value={paste} onInput={(e) => setPaste(e.currentTarget.value)} placeholder="email,first_name&#10;ada@example.com,Ada" />
      {error}
      <button type="submit" disabled={busy || (!file && !paste.trim())}>
        {busy ? "Uploading…" : "Upload"}
      </button>
    </form>
  );
}

function Draft({ imp }: { imp: ImportJob }) {
  return (
    <div class="draft">
      <p>
        Status: <Badge status={imp.status} /> · encoding <strong>{imp.encoding}</strong> · delimiter <strong>{JSON.stringify(imp.delimiter)}</strong> ·{" "}
        {imp.headers.length} columns
      </p>
      <table>
        <caption>Sample rows</caption>
        <thead>
          <tr>
            {imp.headers.map((h) => (
              <th scope="col" key={h}>
                {h}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {imp.sample.slice(0, 5).map((row, r) => (
            <tr key={r}>
              {imp.headers.map((h, i) => (
                <td key={h}>{row[i] ?? ""}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

type Progress = Answer<"/v1/imports/{id}", "get">["counts"];

/** Live progress while it runs; the counts by name, the first errors and the status word once it settles. */
function Outcome({ imp, headingRef }: { imp: ImportJob; headingRef: Ref<HTMLHeadingElement> }) {
  const c: Progress = imp.counts;
  const running = ["queued", "processing", "validating"].includes(imp.status);
  if (imp.status === "draft") return null;
  return (
    <div class="outcome" aria-live="polite">
      <h3 tabIndex={-1} ref={headingRef}>
        {imp.status === "validated" ? "Dry run" : "Result"}: <Badge status={imp.status} />
      </h3>
      {running ? (
        <p>
          <label for="import-progress">Rows processed</label>{" "}
          <progress id="import-progress" max={100} value={imp.progress?.percent ?? 0} aria-describedby="import-progress-text" />{" "}
          <span id="import-progress-text">
            {imp.progress ? `${imp.progress.percent}% · ${Math.round(imp.progress.rowsPerSecond)} rows/s` : `${c.processed} rows`}
            {imp.progress?.etaSeconds != null ? ` · about ${Math.ceil(imp.progress.etaSeconds)} s left` : ""}
          </span>
        </p>
      ) : null}
      {running ? (
        // The stream carries how far the file is read, not the counts: they come with the import when it ends.
        <p>The counts by outcome appear when the import ends.</p>
      ) : (
        <dl class="counts">
          <div>
            <dt>total</dt>
            <dd>{c.total}</dd>
          </div>
          {COUNT_NAMES.map((n) => (
            <div key={n}>
              <dt>{n}</dt>
              <dd data-count={n}>{c[n]}</dd>
            </div>
          ))}
        </dl>
      )}
      {imp.status === "cancelled" ? <p>Cancelled: the rows written before the cancel stay, as the counts say; the rest of the file was not imported.</p> : null}
      {imp.failureReason ? <p class="error">{imp.failureReason}</p> : null}
      {imp.errors.length > 0 ? (
        <table>
          <caption>First errors</caption>
          <thead>
            <tr>
              <th scope="col">Row</th>
              <th scope="col">Column</th>
              <th scope="col">Value</th>
              <th scope="col">Problem</th>
            </tr>
          </thead>
          <tbody>
            {imp.errors.slice(0, 10).map((e, i) => (
              <tr key={i}>
                <td>{e.row}</td>
                <td>{e.column}</td>
                <td>{String(e.value ?? "")}</td>
                <td>{e.message}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </div>
  );
}
