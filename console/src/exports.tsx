import { useState } from "preact/hooks";
import { api, download, type Body, type ExportJob, type Segment } from "./api";
import { ConditionsEditor, emptyGroup, toConditions, type Group } from "./conditions";
import { Badge, Busy, ErrorNote, Section, useInterval, useLoad, when } from "./ui";

const NATIVE = ["id", "email", "external_id", "username", "first_name", "last_name", "name", "company_id", "created_at", "updated_at", "last_seen_at", "labels", "segments"];
const DEFAULT = new Set(["email", "external_id", "username", "first_name", "last_name", "name", "company_id", "labels"]);
const list = (s: string) => [...new Set(s.split(",").map((x) => x.trim()).filter(Boolean))];
/** The day after a yyyy-mm-dd date: the API's `to` is exclusive, the form's "to" date is the last day included. */
const dayAfter = (date: string) => new Date(Date.parse(`${date}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
const day = (iso: string | null) => (iso ? iso.slice(0, 10) : null);

/** What an export holds, in words: its filters and the number of columns. */
function contents(x: ExportJob, segments: Segment[]): string {
  const f = x.filters;
  if (x.kind === "users") {
    const who = f.segmentId ? `segment “${segments.find((s) => s.id === f.segmentId)?.name ?? f.segmentId}”` : f.conditions ? "people matching conditions" : "everyone";
    return `${who} · ${x.columns.length} columns`;
  }
  const types = f.events?.length ? f.events.join(", ") : "all event types";
  const to = f.to ? day(new Date(Date.parse(f.to) - 1).toISOString()) : null;
  const range = f.from || f.to ? `${day(f.from) ?? "the start"} to ${to ?? "now"}` : "any time";
  return `${types} · ${range}`;
}

export function ExportsScreen() {
  const exportsList = useLoad(() => api("get", "/v1/exports", { query: { limit: 50 } }));
  const segments = useLoad(() => api("get", "/v1/segments", { query: { limit: 200 } }));
  const running = (exportsList.data?.data ?? []).some((e) => e.status === "queued" || e.status === "processing");
  useInterval(exportsList.reload, 1000, running);
  const [dlError, setDlError] = useState<{ id: string; error: unknown } | null>(null);
  return (
    <>
      <NewExport onCreated={exportsList.reload} segments={segments.data?.data ?? []} segmentsError={segments.error} segmentsLoading={segments.loading} />
      <Section title="Exports">
        <ErrorNote error={exportsList.error} />
        {exportsList.loading && !exportsList.data ? <Busy /> : null}
        {exportsList.data && exportsList.data.data.length === 0 ? <p>No exports yet.</p> : null}
        {exportsList.data && exportsList.data.data.length > 0 ? (
          <table>
            <caption class="sr-only">Exports, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Kind</th>
                <th scope="col">Contents</th>
                <th scope="col">Status</th>
                <th scope="col">Rows</th>
                <th scope="col">Created</th>
                <th scope="col">File</th>
              </tr>
            </thead>
            <tbody>
              {exportsList.data.data.map((x) => (
                <tr key={x.id} data-export={x.id}>
                  <td>{x.kind}</td>
                  <td>{contents(x, segments.data?.data ?? [])}</td>
                  <td>
                    <Badge status={x.status} />
                    {x.failureReason ? <span class="error"> {x.failureReason}</span> : null}
                  </td>
                  <td>{x.rowCount ?? "—"}</td>
                  <td>{when(x.createdAt)}</td>
                  <td>
                    {x.status === "done" ? (
                      <button
                        type="button"
                        aria-label={`Download ${x.kind} export of ${when(x.createdAt)}`}
                        onClick={() => {
                          setDlError(null);
                          download("/v1/exports/{id}/download", { id: x.id }, `${x.kind}-${x.id}.csv${x.gzip ? ".gz" : ""}`).catch((error) => setDlError({ id: x.id, error }));
                        }}
                      >
                        Download
                      </button>
                    ) : x.status === "expired" ? (
                      "expired"
                    ) : (
                      "—"
                    )}
                    {dlError?.id === x.id ? <ErrorNote error={dlError.error} /> : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
      </Section>
    </>
  );
}

type Limit = "everyone" | "segment" | "conditions";

function NewExport({ onCreated, segments, segmentsError, segmentsLoading }: { onCreated: () => void; segments: Segment[]; segmentsError: unknown; segmentsLoading: boolean }) {
  const [kind, setKind] = useState<"users" | "events">("users");
  const [columns, setColumns] = useState<Set<string>>(new Set(DEFAULT));
  const [attributes, setAttributes] = useState<Set<string>>(new Set());
  const [limit, setLimit] = useState<Limit>("everyone");
  const [segmentId, setSegmentId] = useState("");
  const [tree, setTree] = useState<Group>(emptyGroup());
  const [someEvents, setSomeEvents] = useState(false);
  const [events, setEvents] = useState("");
  const [ranged, setRanged] = useState(false);
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<string | null>(null);
  const known = useLoad(() => api("get", "/v1/attributes", { query: { limit: 1000 } }));
  const conditions = toConditions(tree);
  const toggle = (set: Set<string>, update: (s: Set<string>) => void, key: string, on: boolean) => {
    const next = new Set(set);
    if (on) next.add(key);
    else next.delete(key);
    update(next);
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    setDone(null);
    const body: Body<"/v1/exports", "post"> =
      kind === "users"
        ? {
            kind,
            columns: [...NATIVE.filter((c) => columns.has(c)), ...[...attributes].map((a) => `attributes.${a}`)],
            ...(limit === "segment" ? { segmentId } : {}),
            ...(limit === "conditions" ? { conditions: conditions ?? { all: [] } } : {}),
          }
        : {
            kind,
            ...(someEvents ? { events: list(events) } : {}),
            ...(ranged && from ? { from } : {}),
            ...(ranged && to ? { to: dayAfter(to) } : {}),
          };
    try {
      const x = await api("post", "/v1/exports", { body });
      setDone(`Export queued: ${contents(x, segments)}. It appears in the list below.`);
      onCreated();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Section title="New export">
      <form onSubmit={submit}>
        <fieldset>
          <legend>What to export</legend>
          <label class="inline">
            <input type="radio" name="export-kind" checked={kind === "users"} onChange={() => setKind("users")} /> People
          </label>
          <label class="inline">
            <input type="radio" name="export-kind" checked={kind === "events"} onChange={() => setKind("events")} /> Events
          </label>
        </fieldset>
        {kind === "users" ? (
          <>
            <fieldset>
              <legend>Columns</legend>
              {NATIVE.map((c) => (
                <label class="inline" key={c}>
                  <input type="checkbox" checked={columns.has(c)} onChange={(e) => toggle(columns, setColumns, c, e.currentTarget.checked)} /> {c}
                </label>
              ))}
            </fieldset>
            <fieldset>
              <legend>Attributes</legend>
              <ErrorNote error={known.error} />
              {known.loading && !known.data ? <Busy label="Loading attributes…" /> : null}
              {known.data && known.data.data.length === 0 ? <p>No attributes yet: an import or an identify call adds them.</p> : null}
              {(known.data?.data ?? []).map((a) => (
                <label class="inline" key={a.key}>
                  <input type="checkbox" checked={attributes.has(a.key)} onChange={(e) => toggle(attributes, setAttributes, a.key, e.currentTarget.checked)} /> {a.key}
                </label>
              ))}
            </fieldset>
            <fieldset>
              <legend>Which people</legend>
              <label class="inline">
                <input type="radio" name="export-limit" checked={limit === "everyone"} onChange={() => setLimit("everyone")} /> Everyone
              </label>
              <label class="inline">
                <input type="radio" name="export-limit" checked={limit === "segment"} onChange={() => setLimit("segment")} /> Members of a segment
              </label>
              <label class="inline">
                <input type="radio" name="export-limit" checked={limit === "conditions"} onChange={() => setLimit("conditions")} /> People matching conditions
              </label>
            </fieldset>
            {limit === "segment" ? (
              <>
                <label for="export-segment">Segment</label>
                <select id="export-segment" required value={segmentId} onChange={(e) => setSegmentId(e.currentTarget.value)}>
                  <option value="">{segmentsLoading && segments.length === 0 ? "loading segments…" : "choose a segment"}</option>
                  {segments.map((s) => (
                    <option key={s.id} value={s.id}>
                      {s.name}
                    </option>
                  ))}
                </select>
                <ErrorNote error={segmentsError} />
              </>
            ) : null}
            {limit === "conditions" ? (
              <>
                <ConditionsEditor value={tree} onChange={setTree} segments={segments} />
              </>
            ) : null}
          </>
        ) : (
          <>
            <fieldset>
              <legend>Event types</legend>
              <label class="inline">
                <input type="radio" name="export-events" checked={!someEvents} onChange={() => setSomeEvents(false)} /> All event types
              </label>
              <label class="inline">
                <input type="radio" name="export-events" checked={someEvents} onChange={() => setSomeEvents(true)} /> Only these types
              </label>
            </fieldset>
            {someEvents ? (
              <>
                <label for="export-events">Event names (comma-separated)</label>
                <input id="export-events" required value={events} onInput={(e) => setEvents(e.currentTarget.value)} />
              </>
            ) : null}
            <fieldset>
              <legend>When</legend>
              <label class="inline">
                <input type="radio" name="export-when" checked={!ranged} onChange={() => setRanged(false)} /> Any time
              </label>
              <label class="inline">
                <input type="radio" name="export-when" checked={ranged} onChange={() => setRanged(true)} /> Between dates
              </label>
            </fieldset>
            {ranged ? (
              <>
                <label for="export-from">From date (UTC, included)</label>
                <input id="export-from" type="date" value={from} onInput={(e) => setFrom(e.currentTarget.value)} />
                <label for="export-to">To date (UTC, included)</label>
                <input id="export-to" type="date" value={to} onInput={(e) => setTo(e.currentTarget.value)} />
              </>
            ) : null}
          </>
        )}
        <ErrorNote error={error} />
        {done ? <p role="status">{done}</p> : null}
        <button type="submit">Start export</button>
      </form>
    </Section>
  );
}
