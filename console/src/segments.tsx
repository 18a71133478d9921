import { useState } from "preact/hooks";
import { api, ApiError, type Segment } from "./api";
import { Builder, emptyGroup, MatchCount, toConditions } from "./conditions";
import { Badge, Busy, ErrorNote, Section, useInterval, useLoad, when } from "./ui";

/** A 409 segment_in_use in words a person can act on, followed by the API's own sentence. */
function explain(err: unknown): unknown {
  if (err instanceof ApiError && err.status === 409 && err.code === "segment_in_use") {
    return new ApiError(409, err.code, `This segment cannot be deleted while another segment's conditions refer to it. Edit or delete that segment first. ${err.message}`);
  }
  return err;
}

export function SegmentsScreen() {
  const list = useLoad(() => api("get", "/v1/segments", { query: { limit: 200 } }));
  const [rowError, setRowError] = useState<{ id: string; error: unknown } | null>(null);
  const busy = (list.data?.data ?? []).some((s) => s.status !== "ready" && s.status !== "failed");
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
  return (
    <>
      <Section title="Segments">
        <ErrorNote error={list.error} />
        {list.loading && !list.data ? <Busy /> : null}
        {list.data && list.data.data.length === 0 ? <p>No segments yet.</p> : null}
        {list.data && list.data.data.length > 0 ? (
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
              {list.data.data.map((s) => (
                <tr key={s.id}>
                  <th scope="row">{s.name}</th>
                  <td>{s.type}</td>
                  <td>
                    <Badge status={s.status} />
                  </td>
                  <td data-members={s.name}>{s.memberCount}</td>
                  <td>{when(s.lastComputedAt)}</td>
                  <td>
                    {s.type === "dynamic" ? (
                      <button type="button" aria-label={`Recompute ${s.name}`} onClick={() => act(s.id, () => api("post", "/v1/segments/{id}/recompute", { path: { id: s.id } }))}>
                        Recompute
                      </button>
                    ) : null}
                    <button type="button" aria-label={`Delete ${s.name}`} onClick={() => act(s.id, () => api("delete", "/v1/segments/{id}", { path: { id: s.id } }))}>
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
      <CreateSegment segments={list.data?.data ?? []} onCreated={list.reload} />
    </>
  );
}

function CreateSegment({ segments, onCreated }: { segments: Segment[]; onCreated: () => void }) {
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [type, setType] = useState<"dynamic" | "static">("dynamic");
  const [tree, setTree] = useState(emptyGroup());
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<string | null>(null);
  const conditions = toConditions(tree);
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    setDone(null);
    try {
      const body = { name, type, ...(description ? { description } : {}), ...(type === "dynamic" ? { conditions: conditions ?? { all: [] } } : {}) };
      const s = await api("post", "/v1/segments", { body });
      setDone(`Segment “${s.name}” created.`);
      setName("");
      setTree(emptyGroup());
      onCreated();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Section title="New segment">
      <form onSubmit={submit}>
        <label for="seg-name">Segment name</label>
        <input id="seg-name" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        <label for="seg-description">Description (optional)</label>
        <input id="seg-description" value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
        <label for="seg-type">Segment type</label>
        <select id="seg-type" value={type} onChange={(e) => setType(e.currentTarget.value as "dynamic")}>
          <option value="dynamic">dynamic (conditions)</option>
          <option value="static">static (a fixed list of people)</option>
        </select>
        {type === "dynamic" ? (
          <>
            <Builder value={tree} onChange={setTree} segments={segments} />
            <MatchCount conditions={conditions} />
          </>
        ) : null}
        <ErrorNote error={error} />
        {done ? <p role="status">{done}</p> : null}
        <button type="submit">Create segment</button>
      </form>
    </Section>
  );
}
