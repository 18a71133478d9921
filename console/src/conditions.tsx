import { useEffect, useState } from "preact/hooks";
import { api, ApiError, type Segment } from "./api";
import {
  childPaths,
  COUNT_OPS,
  emptyGroup,
  FIELDS,
  LIST_OPS,
  NEW_RULE,
  NO_VALUE_OPS,
  opsFor,
  problemsAt,
  RELATIVE_OPS,
  toConditions,
  TYPED_OPS,
  UNITS,
  type Conditions,
  type Group,
  type Node,
  type Problem,
  type Rule,
  type ValueType,
} from "./condition-tree";
import { ErrorNote } from "./ui";

export { emptyGroup, fromConditions, toConditions, type Group } from "./condition-tree";

const RULE_NAMES: Record<Rule["type"], string> = { field: "Field", attribute: "Attribute", label: "Label", event: "Event count", segment: "Segment", json: "Written" };

let ids = 0;
const nextId = () => `c${++ids}`;

/** The API's problems with a condition tree (422 invalid_conditions), each with the JSON path it names. */
export function problemsOf(err: unknown): Problem[] {
  if (!(err instanceof ApiError) || err.code !== "invalid_conditions") return [];
  const problems = (err.details as { problems?: unknown } | undefined)?.problems;
  if (!Array.isArray(problems)) return [];
  return problems
    .filter((p): p is Problem => typeof p?.path === "string" && typeof p?.reason === "string")
    .map((p) => ({ path: p.path.replace(/^conditions\.?/, ""), reason: p.reason }));
}

/** Nested all/any/not groups of field, attribute, label, event-count and segment conditions; the API's problems beside the rule they name. */
export function Builder({ value: root, onChange, segments, problems = [] }: { value: Group; onChange: (g: Group) => void; segments: Segment[]; problems?: Problem[] }) {
  return (
    <div class="builder">
      <GroupEditor group={root} onChange={onChange} segments={segments} depth={0} path="" problems={problems} />
    </div>
  );
}

function Problems({ list, id }: { list: Problem[]; id: string }) {
  if (list.length === 0) return null;
  return (
    <p class="error rule-problem" id={id}>
      {list.map((p) => p.reason).join("; ")}
    </p>
  );
}

interface GroupProps {
  group: Group;
  onChange: (g: Group) => void;
  segments: Segment[];
  depth: number;
  path: string | null;
  problems: Problem[];
  onRemove?: () => void;
}

function GroupEditor({ group, onChange, segments, depth, onRemove, path, problems }: GroupProps) {
  const [id] = useState(nextId);
  const set = (patch: Partial<Group>) => onChange({ ...group, ...patch });
  const setChild = (i: number, n: Node) => set({ children: group.children.map((c, j) => (j === i ? n : c)) });
  const remove = (i: number) => set({ children: group.children.filter((_, j) => j !== i) });
  const name = depth === 0 ? "people" : `group ${depth}`;
  const paths = childPaths(group, path ?? "");
  return (
    <fieldset class="group">
      <legend>{depth === 0 ? "Conditions" : `Nested group (level ${depth})`}</legend>
      <label for={`${id}-match`}>Match {name} who meet</label>
      <select id={`${id}-match`} value={group.match} onChange={(e) => set({ match: e.currentTarget.value as Group["match"] })}>
        <option value="all">all of these</option>
        <option value="any">any of these</option>
      </select>
      <label class="inline">
        <input type="checkbox" checked={group.negate} onChange={(e) => set({ negate: e.currentTarget.checked })} /> Negate ({depth === 0 ? "people who do not" : "not"})
      </label>
      <Problems list={problemsAt(problems, path, true)} id={`${id}-problems`} />
      <ul>
        {group.children.map((c, i) => (
          <li key={i}>
            {c.type === "group" ? (
              <GroupEditor group={c} depth={depth + 1} segments={segments} path={path === null ? null : paths[i]!} problems={problems} onChange={(n) => setChild(i, n)} onRemove={() => remove(i)} />
            ) : (
              <RuleEditor rule={c} segments={segments} problems={problemsAt(problems, path === null ? null : paths[i]!, false)} onChange={(n) => setChild(i, n)} onRemove={() => remove(i)} />
            )}
          </li>
        ))}
      </ul>
      <label for={`${id}-add`}>Add…</label>
      <select
        id={`${id}-add`}
        value=""
        onChange={(e) => {
          const t = e.currentTarget.value;
          if (t === "group") set({ children: [...group.children, emptyGroup()] });
          else if (t in NEW_RULE) set({ children: [...group.children, NEW_RULE[t as keyof typeof NEW_RULE]()] });
          e.currentTarget.value = "";
        }}
      >
        <option value="">choose a condition</option>
        {(Object.keys(NEW_RULE) as (keyof typeof NEW_RULE)[]).map((t) => (
          <option key={t} value={t}>
            {RULE_NAMES[t]} condition
          </option>
        ))}
        <option value="group">Nested group</option>
      </select>
      {onRemove ? (
        <button type="button" onClick={onRemove}>
          Remove group
        </button>
      ) : null}
    </fieldset>
  );
}

function RuleEditor({ rule, onChange, onRemove, segments, problems }: { rule: Rule; onChange: (r: Rule) => void; onRemove: () => void; segments: Segment[]; problems: Problem[] }) {
  const [id] = useState(nextId);
  const set = (patch: Partial<Rule>) => onChange({ ...rule, ...patch } as Rule);
  const label = RULE_NAMES[rule.type];
  return (
    <div class={problems.length ? "rule invalid" : "rule"} role="group" aria-label={`${label} condition`} aria-describedby={problems.length ? `${id}-problems` : undefined}>
      <span class="rule-kind" aria-hidden="true">
        {label}
      </span>
      {rule.type === "field" ? (
        <select
          aria-label="Field"
          value={rule.field}
          onChange={(e) => {
            const field = e.currentTarget.value;
            // A date field and a text field allow different operators: keep the operator only when it still applies.
            const ops = opsFor({ ...rule, field });
            set({ field, op: ops.includes(rule.op) ? rule.op : ops[0]! });
          }}
        >
          {FIELDS.map((f) => (
            <option key={f}>{f}</option>
          ))}
        </select>
      ) : null}
      {rule.type === "attribute" ? <input aria-label="Attribute key" value={rule.key} onInput={(e) => set({ key: e.currentTarget.value })} /> : null}
      {rule.type === "field" || rule.type === "attribute" ? (
        <>
          <select aria-label="Operator" value={rule.op} onChange={(e) => set({ op: e.currentTarget.value })}>
            {opsFor(rule).map((o) => (
              <option key={o}>{o}</option>
            ))}
          </select>
          {NO_VALUE_OPS.includes(rule.op) ? null : (
            <input
              aria-label={LIST_OPS.includes(rule.op) ? "Values, comma-separated" : rule.op === "between" ? "From value" : RELATIVE_OPS.includes(rule.op) ? "Amount" : "Value"}
              value={rule.value}
              onInput={(e) => set({ value: e.currentTarget.value })}
            />
          )}
          {rule.op === "between" ? <input aria-label="To value" value={rule.value2} onInput={(e) => set({ value2: e.currentTarget.value })} /> : null}
          {RELATIVE_OPS.includes(rule.op) ? (
            <select aria-label="Unit" value={rule.unit} onChange={(e) => set({ unit: e.currentTarget.value })}>
              {UNITS.map((u) => (
                <option key={u}>{u}</option>
              ))}
            </select>
          ) : null}
          {rule.type === "attribute" && TYPED_OPS.includes(rule.op) ? (
            <select aria-label="Value type" value={rule.valueType} onChange={(e) => set({ valueType: e.currentTarget.value as ValueType })}>
              <option value="text">as text</option>
              <option value="number">as number</option>
              <option value="boolean">as true/false</option>
            </select>
          ) : null}
        </>
      ) : null}
      {rule.type === "label" ? (
        <>
          <select aria-label="Label operator" value={rule.op} onChange={(e) => set({ op: e.currentTarget.value as "has" })}>
            <option value="has">has label</option>
            <option value="has_not">has not label</option>
          </select>
          <input aria-label="Label name" value={rule.label} onInput={(e) => set({ label: e.currentTarget.value })} />
        </>
      ) : null}
      {rule.type === "event" ? (
        <>
          <input aria-label="Event name" value={rule.event} onInput={(e) => set({ event: e.currentTarget.value })} />
          <select aria-label="Event operator" value={rule.op} onChange={(e) => set({ op: e.currentTarget.value as "performed" })}>
            <option value="performed">performed</option>
            <option value="not_performed">not performed</option>
          </select>
          <select aria-label="Count comparison" value={rule.countOp} onChange={(e) => set({ countOp: e.currentTarget.value })}>
            {COUNT_OPS.map((o) => (
              <option key={o}>{o}</option>
            ))}
          </select>
          <input aria-label="Times (optional)" inputMode="numeric" value={rule.count} onInput={(e) => set({ count: e.currentTarget.value })} />
          <input aria-label="Within the last (optional)" inputMode="numeric" value={rule.within} onInput={(e) => set({ within: e.currentTarget.value })} />
          <select aria-label="Within unit" value={rule.withinUnit} onChange={(e) => set({ withinUnit: e.currentTarget.value })}>
            {UNITS.map((u) => (
              <option key={u}>{u}</option>
            ))}
          </select>
        </>
      ) : null}
      {rule.type === "segment" ? (
        <>
          <select aria-label="Segment operator" value={rule.op} onChange={(e) => set({ op: e.currentTarget.value as "in" })}>
            <option value="in">in segment</option>
            <option value="not_in">not in segment</option>
          </select>
          <select aria-label="Segment" value={rule.segment} onChange={(e) => set({ segment: e.currentTarget.value })}>
            <option value="">choose a segment</option>
            {segments.map((s) => (
              <option key={s.id} value={s.id}>
                {s.name}
              </option>
            ))}
            {rule.segment && !segments.some((s) => s.id === rule.segment) ? <option value={rule.segment}>segment {rule.segment}</option> : null}
          </select>
        </>
      ) : null}
      {rule.type === "json" ? (
        <label class="inline">
          Condition as JSON (the builder has no control for it)
          <textarea rows={2} value={rule.json} onInput={(e) => set({ json: e.currentTarget.value })} />
        </label>
      ) : null}
      <button type="button" onClick={onRemove} aria-label={`Remove ${label.toLowerCase()} condition`}>
        Remove
      </button>
      <Problems list={problems} id={`${id}-problems`} />
    </div>
  );
}

type PreviewState = { count?: number; sample?: Sample; error?: unknown; busy: boolean };
type Sample = NonNullable<Awaited<ReturnType<typeof preview>>>["sample"];
const preview = (conditions: Conditions | null) => api("post", "/v1/segments/preview", { body: { conditions: conditions ?? { all: [] } } });

/** POST /v1/segments/preview for a tree, debounced: the latest answer, or the API's refusal of the tree. */
function usePreview(conditions: Conditions | null): PreviewState {
  const [state, setState] = useState<PreviewState>({ busy: true });
  const key = JSON.stringify(conditions);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, busy: true }));
    const t = setTimeout(() => {
      preview(conditions).then(
        (r) => live && setState({ count: r.count, sample: r.sample, busy: false }),
        (error) => live && setState({ error, busy: false }),
      );
    }, 300);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [key]);
  return state;
}

function CountLine({ state }: { state: PreviewState }) {
  return (
    <p role="status" aria-live="polite">
      {state.error
        ? "No count: see the message below."
        : state.count === undefined
          ? "Counting…"
          : `${state.count} ${state.count === 1 ? "person matches" : "people match"}${state.busy ? " (updating…)" : ""}`}
    </p>
  );
}

function SampleTable({ sample, count }: { sample: Sample; count: number }) {
  return (
    <table>
      <caption>
        Sample of who matches ({sample.length} of {count})
      </caption>
      <thead>
        <tr>
          <th scope="col">Email</th>
          <th scope="col">External id</th>
          <th scope="col">Name</th>
        </tr>
      </thead>
      <tbody>
        {sample.map((u) => (
          <tr key={u.id}>
            <td>{u.email ?? "—"}</td>
            <td>{u.externalId ?? "—"}</td>
            <td>{u.name ?? ([u.firstName, u.lastName].filter(Boolean).join(" ") || "—")}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/**
 * The builder with its live preview: how many people the tree matches now (and, with `sample`, a sample of them),
 * the API's sentence when it refuses the tree, and each of its problems beside the rule it names.
 */
export function ConditionsEditor({ value, onChange, segments, sample = false }: { value: Group; onChange: (g: Group) => void; segments: Segment[]; sample?: boolean }) {
  const state = usePreview(toConditions(value));
  return (
    <>
      <Builder value={value} onChange={onChange} segments={segments} problems={problemsOf(state.error)} />
      <div class="match-count">
        <CountLine state={state} />
        <ErrorNote error={state.error} />
        {sample && state.sample && state.sample.length > 0 && !state.error ? <SampleTable sample={state.sample} count={state.count ?? state.sample.length} /> : null}
      </div>
    </>
  );
}
