import { useState } from "preact/hooks";
import { api, ApiError, type Answer, type Body, type Segment } from "./api";
import { ConditionsEditor, emptyGroup, fromConditions, toConditions, type Group } from "./conditions";
import { Badge, Busy, ErrorNote, Section, useInterval, useLoad, when } from "./ui";

type PersonRef = Body<"/v1/segments/{id}/members", "post">["users"][number];
type Member = Answer<"/v1/segments/{id}/members", "get">["data"][number];
const MEMBERS_PAGE = 25;

/** A 409 segment_in_use in words a person can act on (naming the segments that refer to it), then the API's own sentence. */
export function explain(err: unknown): unknown {
  if (err instanceof ApiError && err.status === 409 && err.code === "segment_in_use") {
    const usedBy = (err.details as { usedBy?: { name?: string }[] } | undefined)?.usedBy ?? [];
    const names = usedBy.map((u) => `“${u.name}”`).join(", ");
    const who = usedBy.length === 1 ? `the segment ${names} has` : usedBy.length > 1 ? `the segments ${names} have` : "another segment has";
    return new ApiError(
      409,
      err.code,
      `This segment cannot be deleted while another segment's conditions refer to it: ${who} an “in segment” condition on it. Edit or delete ${usedBy.length > 1 ? "those" : "that"} first. ${err.message}`,
    );
  }
  return err;
}

const who = (p: { email: string | null; externalId: string | null; username: string | null; id: string }) => p.email ?? p.externalId ?? p.username ?? `person ${p.id}`;

export function SegmentsScreen() {
  const list = useLoad(() => api("get", "/v1/segments", { query: { limit: 200 } }));
  const [rowError, setRowError] = useState<{ id: string; error: unknown } | null>(null);
  const [editing, setEditing] = useState<Segment | null>(null);
  const [membersOf, setMembersOf] = useState<string | null>(null);
  const segments = list.data?.data ?? [];
  const busy = segments.some((s) => s.status === "computing");
  useInterval(list.reload, 1000, busy);
  const act = async (id: string, fn: () => Promise<unknown>) => {
    setRowError(null);
    try {
      await fn();
      list.reload();
    } catch (err) {
      setRowError({ id, error: explain(err) });
    }
  };
  const shownMembers = segments.find((s) => s.id === membersOf) ?? null;
  return (
    <>
      <Section title="Segments">
        <ErrorNote error={list.error} />
        {list.loading && !list.data ? <Busy /> : null}
        {list.data && segments.length === 0 ? <p>No segments yet.</p> : null}
        {segments.length > 0 ? (
          <table>
            <caption class="sr-only">Segments</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Type</th>
                <th scope="col">Status</th>
                <th scope="col">Members</th>
                <th scope="col">Last computed</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {segments.map((s) => (
                <tr key={s.id}>
                  <th scope="row">{s.name}</th>
                  <td>{s.type}</td>
                  <td>
                    <Badge status={s.status} />
                    {s.failureReason ? <span class="error"> {s.failureReason}</span> : null}
                  </td>
                  <td data-members={s.name}>{s.memberCount}</td>
                  <td>{when(s.lastComputedAt)}</td>
                  <td>
                    <button type="button" aria-label={`Members of ${s.name}`} aria-pressed={membersOf === s.id} onClick={() => setMembersOf(membersOf === s.id ? null : s.id)}>
                      Members
                    </button>
                    {s.type === "dynamic" ? (
                      <>
                        <button type="button" aria-label={`Edit ${s.name}`} onClick={() => setEditing(s)}>
                          Edit
                        </button>
                        <button type="button" aria-label={`Recompute ${s.name}`} onClick={() => act(s.id, () => api("post", "/v1/segments/{id}/recompute", { path: { id: s.id } }))}>
                          Recompute
                        </button>
                      </>
                    ) : null}
                    <button
                      type="button"
                      aria-label={`Delete ${s.name}`}
                      onClick={() =>
                        act(s.id, async () => {
                          await api("delete", "/v1/segments/{id}", { path: { id: s.id } });
                          if (membersOf === s.id) setMembersOf(null);
                          if (editing?.id === s.id) setEditing(null);
                        })
                      }
                    >
                      Delete
                    </button>
                    {rowError?.id === s.id ? <ErrorNote error={rowError.error} /> : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
      </Section>
      {shownMembers ? <MembersPanel key={shownMembers.id} segment={shownMembers} onChanged={list.reload} onClose={() => setMembersOf(null)} /> : null}
      {editing ? (
        <SegmentForm
          key={editing.id}
          existing={editing}
          segments={segments}
          onSaved={() => {
            setEditing(null);
            list.reload();
          }}
          onCancel={() => setEditing(null)}
        />
      ) : (
        <SegmentForm key="new" segments={segments} onSaved={list.reload} />
      )}
    </>
  );
}

/** Create a segment, or edit a dynamic one's name, description and conditions, with the live count and a sample. */
function SegmentForm({ existing, segments, onSaved, onCancel }: { existing?: Segment; segments: Segment[]; onSaved: () => void; onCancel?: () => void }) {
  const [name, setName] = useState(existing?.name ?? "");
  const [description, setDescription] = useState(existing?.description ?? "");
  const [type, setType] = useState<"dynamic" | "static">(existing?.type ?? "dynamic");
  const [tree, setTree] = useState<Group>(() => (existing ? fromConditions(existing.conditions) : emptyGroup()));
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const conditions = toConditions(tree);
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    setDone(null);
    setSaving(true);
    try {
      if (existing) {
        const s = await api("patch", "/v1/segments/{id}", { path: { id: existing.id }, body: { name, description: description || null, conditions: conditions ?? { all: [] } } });
        setDone(`Segment “${s.name}” saved.`);
      } else {
        const s = await api("post", "/v1/segments", { body: { name, type, ...(description ? { description } : {}), ...(type === "dynamic" ? { conditions: conditions ?? { all: [] } } : {}) } });
        setDone(`Segment “${s.name}” created.`);
        setName("");
        setDescription("");
        setTree(emptyGroup());
      }
      onSaved();
    } catch (err) {
      setError(err);
    } finally {
      setSaving(false);
    }
  };
  const prefix = existing ? "edit-seg" : "seg";
  return (
    <Section title={existing ? `Edit segment “${existing.name}”` : "New segment"}>
      <form onSubmit={submit}>
        <label for={`${prefix}-name`}>Segment name</label>
        <input id={`${prefix}-name`} required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        <label for={`${prefix}-description`}>Description (optional)</label>
        <input id={`${prefix}-description`} value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
        {existing ? null : (
          <>
            <label for="seg-type">Segment type</label>
            <select id="seg-type" value={type} onChange={(e) => setType(e.currentTarget.value as "dynamic")}>
              <option value="dynamic">dynamic (conditions)</option>
              <option value="static">static (a fixed list of people)</option>
            </select>
          </>
        )}
        {type === "dynamic" ? (
          <>
            <ConditionsEditor value={tree} onChange={setTree} segments={segments.filter((s) => s.id !== existing?.id)} sample />
          </>
        ) : (
          <p>Add people to a static segment from its “Members” once it is created, or with an import's segment column.</p>
        )}
        <ErrorNote error={error} />
        {done ? <p role="status">{done}</p> : null}
        <button type="submit" disabled={saving}>
          {existing ? (saving ? "Saving…" : "Save changes") : saving ? "Creating…" : "Create segment"}
        </button>
        {onCancel ? (
          <button type="button" onClick={onCancel}>
            Cancel editing
          </button>
        ) : null}
      </form>
    </Section>
  );
}

const REF_KINDS = { email: "email", externalId: "external id", id: "person id" } as const;
type RefKind = keyof typeof REF_KINDS;
const toRef = (kind: RefKind, v: string): PersonRef => (kind === "email" ? { email: v } : kind === "externalId" ? { externalId: v } : { id: v });
const refText = (r: PersonRef) => ("email" in r ? r.email : "externalId" in r ? r.externalId : r.id);

/** A segment's members, page by page; a static segment's people can be added and removed here. */
function MembersPanel({ segment, onChanged, onClose }: { segment: Segment; onChanged: () => void; onClose: () => void }) {
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const cursor = cursors[cursors.length - 1];
  const page = useLoad(() => api("get", "/v1/segments/{id}/members", { path: { id: segment.id }, query: { limit: MEMBERS_PAGE, cursor } }), [segment.id, cursor]);
  const [rowError, setRowError] = useState<{ id: string; error: unknown } | null>(null);
  const editable = segment.type === "static";
  const remove = async (m: Member) => {
    setRowError(null);
    try {
      await api("delete", "/v1/segments/{id}/members", { path: { id: segment.id }, body: { users: [{ id: m.id }] } });
      page.reload();
      onChanged();
    } catch (error) {
      setRowError({ id: m.id, error });
    }
  };
  return (
    <Section
      title={`Members of “${segment.name}”`}
      actions={
        <button type="button" onClick={onClose}>
          Close members
        </button>
      }
    >
      {editable ? null : <p>A dynamic segment's members follow its conditions: edit the conditions to change who is in it.</p>}
      <ErrorNote error={page.error} />
      {page.loading ? <Busy label="Loading members…" /> : null}
      {page.data && page.data.data.length === 0 && cursors.length === 1 ? <p>No members yet.</p> : null}
      {page.data && page.data.data.length > 0 ? (
        <table>
          <caption class="sr-only">Members of {segment.name}</caption>
          <thead>
            <tr>
              <th scope="col">Person</th>
              <th scope="col">Name</th>
              <th scope="col">Value</th>
              <th scope="col">Entered</th>
              {editable ? <th scope="col">Actions</th> : null}
            </tr>
          </thead>
          <tbody>
            {page.data.data.map((m) => (
              <tr key={m.id}>
                <th scope="row">{who(m)}</th>
                <td>{m.name ?? ([m.firstName, m.lastName].filter(Boolean).join(" ") || "—")}</td>
                <td>{m.value ?? "—"}</td>
                <td>{when(m.enteredAt)}</td>
                {editable ? (
                  <td>
                    <button type="button" aria-label={`Remove ${who(m)} from ${segment.name}`} onClick={() => remove(m)}>
                      Remove
                    </button>
                    {rowError?.id === m.id ? <ErrorNote error={rowError.error} /> : null}
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <div class="actions">
        <button type="button" disabled={cursors.length < 2} onClick={() => setCursors(cursors.slice(0, -1))}>
          Previous members
        </button>
        <button type="button" disabled={!page.data?.nextCursor} onClick={() => page.data?.nextCursor && setCursors([...cursors, page.data.nextCursor])}>
          Next members
        </button>
      </div>
      {editable ? (
        <AddMembers
          segment={segment}
          onAdded={() => {
            setCursors([undefined]);
            page.reload();
            onChanged();
          }}
        />
      ) : null}
    </Section>
  );
}

function AddMembers({ segment, onAdded }: { segment: Segment; onAdded: () => void }) {
  const [kind, setKind] = useState<RefKind>("email");
  const [text, setText] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [result, setResult] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    setResult(null);
    const values = [...new Set(text.split(/[\n,]/).map((s) => s.trim()).filter(Boolean))];
    setBusy(true);
    try {
      const r = await api("post", "/v1/segments/{id}/members", { path: { id: segment.id }, body: { users: values.map((v) => toRef(kind, v)) } });
      const missing = r.notFound.map(refText);
      setResult(`Added ${r.added} ${r.added === 1 ? "person" : "people"}.${missing.length ? ` Not found: ${missing.join(", ")}.` : ""}`);
      setText(missing.join("\n"));
      onAdded();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={submit}>
      <h3>Add people</h3>
      <label for="add-members-kind">Identify people by</label>
      <select id="add-members-kind" value={kind} onChange={(e) => setKind(e.currentTarget.value as RefKind)}>
        {(Object.keys(REF_KINDS) as RefKind[]).map((k) => (
          <option key={k} value={k}>
            {REF_KINDS[k]}
          </option>
        ))}
      </select>
      <label for="add-members">People to add (one per line or comma-separated)</label>
      <textarea id="add-members" rows={4} required value={text} onInput={(e) => setText(e.currentTarget.value)} />
      <ErrorNote error={error} />
      {result ? <p role="status">{result}</p> : null}
      <button type="submit" disabled={busy || !text.trim()}>
        {busy ? "Adding…" : `Add to ${segment.name}`}
      </button>
    </form>
  );
}
