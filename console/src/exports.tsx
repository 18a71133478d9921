import { useState } from "preact/hooks";
import { api, download, type Body } from "./api";
import { Badge, Busy, ErrorNote, Section, useInterval, useLoad, when } from "./ui";

const NATIVE = ["id", "email", "external_id", "username", "first_name", "last_name", "name", "company_id", "created_at", "updated_at", "last_seen_at", "labels", "segments"];
const DEFAULT = new Set(["email", "external_id", "username", "first_name", "last_name", "name", "company_id", "labels"]);
const list = (s: string) => s.split(",").map((x) => x.trim()).filter(Boolean);

export function ExportsScreen() {
  const exportsList = useLoad(() => api("get", "/v1/exports", { query: { limit: 50 } }));
  const running = (exportsList.data?.data ?? []).some((e) => e.status === "queued" || e.status === "processing");
  useInterval(exportsList.reload, 1000, running);
  const [dlError, setDlError] = useState<{ id: string; error: unknown } | null>(null);
  return (
    <>
      <NewExport onCreated={exportsList.reload} />
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
                <th scope="col">Status</th>
                <th scope="col">Rows</th>
                <th scope="col">Created</th>
                <th scope="col">File</th>
              </tr>
            </thead>
            <tbody>
              {exportsList.data.data.map((x) => (
                <tr key={x.id}>
                  <td>{x.kind}</td>
                  <td>
                    <Badge status={x.status} />
                  </td>
                  <td>{x.rowCount ?? "—"}</td>
                  <td>{when(x.createdAt)}</td>
                  <td>
                    {x.status === "done" ? (
                      <button
                        type="button"
                        aria-label={`Download ${x.kind} export of ${when(x.createdAt)}`}
                        onClick={() => download(`/v1/exports/${x.id}/download`, `${x.kind}-${x.id}.csv`).catch((error) => setDlError({ id: x.id, error }))}
                      >
                        Download
                      </button>
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

function NewExport({ onCreated }: { onCreated: () => void }) {
  const [kind, setKind] = useState<"users" | "events">("users");
  const [columns, setColumns] = useState<Set<string>>(new Set(DEFAULT));
  const [attributes, setAttributes] = useState("");
  const [segmentId, setSegmentId] = useState("");
  const [events, setEvents] = useState("");
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [error, setError] = useState<unknown>(null);
  const segments = useLoad(() => api("get", "/v1/segments", { query: { limit: 200 } }));
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    const body: Body<"/v1/exports", "post"> =
      kind === "users"
        ? { kind, columns: [...NATIVE.filter((c) => columns.has(c)), ...list(attributes).map((a) => `attributes.${a}`)], ...(segmentId ? { segmentId } : {}) }
        : {
            kind,
            ...(list(events).length ? { events: list(events) } : {}),
            ...(from ? { from: new Date(`${from}T00:00:00Z`).toISOString() } : {}),
            ...(to ? { to: new Date(`${to}T23:59:59.999Z`).toISOString() } : {}),
          };
    try {
      await api("post", "/v1/exports", { body });
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
                  <input
                    type="checkbox"
                    checked={columns.has(c)}
                    onChange={(e) => {
                      const next = new Set(columns);
                      if (e.currentTarget.checked) next.add(c);
                      else next.delete(c);
                      setColumns(next);
                    }}
                  />{" "}
                  {c}
                </label>
              ))}
            </fieldset>
            <label for="export-attributes">Attributes to add (comma-separated keys)</label>
            <input id="export-attributes" value={attributes} onInput={(e) => setAttributes(e.currentTarget.value)} />
            <label for="export-segment">Limit to segment</label>
            <select id="export-segment" value={segmentId} onChange={(e) => setSegmentId(e.currentTarget.value)}>
              <option value="">everyone</option>
              {(segments.data?.data ?? []).map((s) => (
                <option key={s.id} value={s.id}>
                  {s.name}
                </option>
              ))}
            </select>
            <ErrorNote error={segments.error} />
          </>
        ) : (
          <>
            <label for="export-events">Event types (comma-separated; empty for all)</label>
            <input id="export-events" value={events} onInput={(e) => setEvents(e.currentTarget.value)} />
            <label for="export-from">From date (optional)</label>
            <input id="export-from" type="date" value={from} onInput={(e) => setFrom(e.currentTarget.value)} />
            <label for="export-to">To date (optional)</label>
            <input id="export-to" type="date" value={to} onInput={(e) => setTo(e.currentTarget.value)} />
          </>
        )}
        <ErrorNote error={error} />
        <button type="submit">Start export</button>
      </form>
    </Section>
  );
}
