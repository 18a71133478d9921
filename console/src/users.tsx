import { useState } from "preact/hooks";
import { api, type Profile, type User } from "./api";
import { ConditionsEditor, emptyGroup, toConditions } from "./conditions";
import { Busy, ErrorNote, Section, useLoad, when } from "./ui";

const PAGE = 25;

export function UsersScreen() {
  const [tree, setTree] = useState(emptyGroup());
  const [applied, setApplied] = useState<unknown>(null);
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const [selected, setSelected] = useState<string | null>(null);
  const segments = useLoad(() => api("get", "/v1/segments", { query: { limit: 200 } }));
  const cursor = cursors[cursors.length - 1];
  const page = useLoad(
    () =>
      applied
        ? api("post", "/v1/users/search", { body: { conditions: applied, limit: PAGE, ...(cursor ? { cursor } : {}) } })
        : api("get", "/v1/users", { query: { limit: PAGE, cursor } }),
    [JSON.stringify(applied), cursor],
  );
  const conditions = toConditions(tree);
  return (
    <div class="split">
      <div>
        <Section title="Filter">
          <ConditionsEditor value={tree} onChange={setTree} segments={segments.data?.data ?? []} />
          <ErrorNote error={segments.error} />
          <button
            type="button"
            onClick={() => {
              setApplied(conditions);
              setCursors([undefined]);
            }}
          >
            Apply filter
          </button>
        </Section>
        <Section title="People">
          <ErrorNote error={page.error} />
          {page.loading ? <Busy /> : null}
          {page.data ? <UserTable users={page.data.data} onOpen={setSelected} /> : null}
          <div class="actions">
            <button type="button" disabled={cursors.length < 2} onClick={() => setCursors(cursors.slice(0, -1))}>
              Previous page
            </button>
            <button type="button" disabled={!page.data?.nextCursor} onClick={() => page.data?.nextCursor && setCursors([...cursors, page.data.nextCursor])}>
              Next page
            </button>
          </div>
        </Section>
      </div>
      {selected ? <ProfilePanel id={selected} onClose={() => setSelected(null)} /> : null}
    </div>
  );
}

function UserTable({ users, onOpen }: { users: User[]; onOpen: (id: string) => void }) {
  if (users.length === 0) return <p>No one matches.</p>;
  return (
    <table>
      <caption class="sr-only">People</caption>
      <thead>
        <tr>
          <th scope="col">Email</th>
          <th scope="col">External id</th>
          <th scope="col">Name</th>
          <th scope="col">Created</th>
        </tr>
      </thead>
      <tbody>
        {users.map((u) => (
          <tr key={u.id}>
            <td>
              <button type="button" class="link" onClick={() => onOpen(u.id)}>
                {u.email ?? u.externalId ?? u.username ?? u.id}
              </button>
            </td>
            <td>{u.externalId ?? "—"}</td>
            <td>{u.name ?? ([u.firstName, u.lastName].filter(Boolean).join(" ") || "—")}</td>
            <td>{when(u.createdAt)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function ProfilePanel({ id, onClose }: { id: string; onClose: () => void }) {
  const p = useLoad<Profile>(() => api("get", "/v1/users/{id}", { path: { id } }), [id]);
  return (
    <aside class="panel" aria-labelledby="profile-title">
      <h2 id="profile-title">Profile</h2>
      <button type="button" onClick={onClose}>
        Close profile
      </button>
      <ErrorNote error={p.error} />
      {p.loading ? <Busy /> : null}
      {p.data ? (
        <>
          <dl>
            {(["email", "externalId", "username", "firstName", "lastName", "name", "companyId"] as const).map((k) => (
              <div key={k}>
                <dt>{k}</dt>
                <dd>{p.data![k] ?? "—"}</dd>
              </div>
            ))}
            <div>
              <dt>last seen</dt>
              <dd>{when(p.data.lastSeenAt)}</dd>
            </div>
          </dl>
          <h3>Attributes</h3>
          <dl>
            {Object.entries(p.data.attributes).map(([k, v]) => (
              <div key={k}>
                <dt>{k}</dt>
                <dd>{typeof v === "string" ? v : JSON.stringify(v)}</dd>
              </div>
            ))}
          </dl>
          <h3>Labels</h3>
          <p>{p.data.labels.map((l) => l.name).join(", ") || "none"}</p>
          <h3>Segments</h3>
          {p.data.segments.length === 0 ? <p>none</p> : null}
          <ul>
            {p.data.segments.map((s) => (
              <li key={s.id} data-segment={s.name}>
                {s.name} ({s.type}){s.value !== null ? <> · value <strong>{s.value}</strong></> : null} · entered {when(s.enteredAt)}
              </li>
            ))}
          </ul>
          <h3>Recent events</h3>
          {p.data.recentEvents.length === 0 ? <p>none</p> : null}
          <ul>
            {p.data.recentEvents.map((e) => (
              <li key={e.id} data-event={e.event}>
                {e.event} · {when(e.occurredAt)}
                {Object.keys(e.properties).length > 0 ? (
                  <span class="properties">
                    {" "}
                    · {Object.entries(e.properties).map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`).join(", ")}
                  </span>
                ) : null}
              </li>
            ))}
          </ul>
        </>
      ) : null}
    </aside>
  );
}
