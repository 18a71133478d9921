import type { Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { importAndWait, type Client } from "../helpers/api.js";
import { downloadedText, expectAccessible as audit, openConsole, signIn, type ConsoleSession } from "../helpers/console.js";
import { useTestContext } from "../helpers/context.js";

// The segments and exports screens in Chromium, on data the API seeds (the import flow has its own file:
// console.browser.test.ts).
const t = useTestContext();
let session: ConsoleSession;
let client: Client;
let page: Page;

// 30 people, person00…person29; odd ones are on the pro plan, and Ada too: 16 pro.
const CSV = ["Email,First Name,Plan", ...Array.from({ length: 30 }, (_, i) => `person${String(i).padStart(2, "0")}@example.com,P${i},${i % 2 ? "pro" : "free"}`), "ada@example.com,Ada,pro"].join("\n");
const EVENTS = [
  { user: { email: "person01@example.com" }, event: "Signed Up", occurredAt: "2026-01-05T10:00:00Z", properties: { plan: "pro" } },
  { user: { email: "person02@example.com" }, event: "Signed Up", occurredAt: "2026-01-31T23:30:00Z" },
  { user: { email: "person03@example.com" }, event: "Signed Up", occurredAt: "2026-02-01T00:00:00Z" },
  { user: { email: "person04@example.com" }, event: "Signed Up", occurredAt: "2025-12-31T23:59:59Z" },
  { user: { email: "person05@example.com" }, event: "Clicked Upgrade", occurredAt: "2026-01-10T09:00:00Z" },
];

beforeAll(async () => {
  session = await openConsole(t.ctx);
  ({ client, page } = session);
  const imported = await importAndWait(client, CSV, { mapping: { Plan: "attribute:Plan" } });
  expect(imported.counts.created).toBe(31);
  expect((await client.request("POST", "/v1/events", { payload: { events: EVENTS } })).status).toBeLessThan(300);
  await signIn(page, session.base, client.apiKey);
});
afterAll(async () => {
  await session?.close();
});
afterEach(() => {
  expect(session.errors, "uncaught exceptions in the console").toEqual([]);
});

const expectAccessible = (name: string) => audit(page, name);
const segmentRow = (name: string) => page.getByRole("row").filter({ has: page.getByRole("rowheader", { name, exact: true }) });
const segmentByName = async (name: string) => (await client.request("GET", "/v1/segments")).json.data.find((s: any) => s.name === name);
const matchCount = () => page.locator(".match-count [role=status]").innerText();

describe("segments in Chromium", () => {
  it("creates a dynamic segment with a live count and sample, and lists its member count", async () => {
    await page.getByRole("link", { name: "Segments" }).click();
    await page.getByText("No segments yet.").waitFor();
    await page.getByLabel("Segment name").fill("Pro plan");
    await page.getByLabel("Add…").selectOption("attribute");
    await page.getByLabel("Attribute key").fill("Plan");
    await page.getByLabel("Value", { exact: true }).fill("pro");
    await expect.poll(matchCount).toBe("16 people match");
    const sample = page.getByRole("table", { name: /Sample of who matches/ });
    await sample.getByRole("cell", { name: "ada@example.com" }).waitFor();
    expect(await sample.getByRole("cell", { name: "person00@example.com" }).count()).toBe(0);
    await expectAccessible("segments-new-preview");
    await page.getByRole("button", { name: "Create segment" }).click();
    await page.getByRole("status").filter({ hasText: "Segment “Pro plan” created." }).waitFor();
    await segmentRow("Pro plan").getByText("ready").waitFor({ timeout: 30_000 });
    await expect.poll(() => segmentRow("Pro plan").locator("[data-members]").innerText(), { timeout: 30_000 }).toBe("16");
  });

  it("edits a dynamic segment: the builder reads its conditions back, previews the change, saves it", async () => {
    await page.getByRole("button", { name: "Edit Pro plan" }).click();
    const form = page.getByRole("region", { name: "Edit segment “Pro plan”" });
    expect(await form.getByLabel("Segment name").inputValue()).toBe("Pro plan");
    expect(await form.getByLabel("Attribute key").inputValue()).toBe("Plan");
    expect(await form.getByLabel("Value", { exact: true }).inputValue()).toBe("pro");
    await expect.poll(matchCount).toBe("16 people match");
    await form.getByLabel("Add…").selectOption("field");
    await form.getByLabel("Operator").last().selectOption("starts_with");
    await form.getByLabel("Value", { exact: true }).last().fill("person");
    await expect.poll(matchCount).toBe("15 people match");
    await form.getByRole("table", { name: /Sample of who matches/ }).getByRole("cell", { name: "person01@example.com" }).waitFor();
    expect(await form.getByRole("cell", { name: "ada@example.com" }).count()).toBe(0);
    await form.getByLabel("Description (optional)").fill("Paying people from the import");
    await expectAccessible("segments-edit-preview");
    await form.getByRole("button", { name: "Save changes" }).click();
    await form.waitFor({ state: "detached" });
    await expect.poll(() => segmentRow("Pro plan").locator("[data-members]").innerText(), { timeout: 30_000 }).toBe("15");
    const saved = await segmentByName("Pro plan");
    expect(saved).toMatchObject({
      description: "Paying people from the import",
      conditions: { all: [{ field: "attributes.Plan", op: "eq", value: "pro" }, { field: "email", op: "starts_with", value: "person" }] },
    });
  });

  it("refuses to delete a segment another one uses, and says which one in words", async () => {
    const pro = await segmentByName("Pro plan");
    const dependent = await client.request("POST", "/v1/segments", { payload: { name: "Pro and Ada", type: "dynamic", conditions: { all: [{ segment: pro.id, op: "in" }] } } });
    expect(dependent.status).toBe(201);
    await page.getByRole("button", { name: "Recompute Pro plan" }).click();
    await segmentRow("Pro and Ada").waitFor();
    await page.getByRole("button", { name: "Delete Pro plan" }).click();
    const alert = segmentRow("Pro plan").getByRole("alert");
    await alert.waitFor();
    expect(await alert.innerText()).toMatch(/^This segment cannot be deleted while another segment's conditions refer to it: the segment “Pro and Ada” has an “in segment” condition on it\. Edit or delete that first\. The segment is used by "Pro and Ada"/);
    await expectAccessible("segments-409");
    await page.getByRole("button", { name: "Delete Pro and Ada" }).click();
    await segmentRow("Pro and Ada").waitFor({ state: "detached" });
  });

  it("creates a static segment, adds and removes its members, then deletes it", async () => {
    await page.getByLabel("Segment name").fill("VIP");
    await page.getByLabel("Segment type").selectOption("static");
    await page.getByRole("button", { name: "Create segment" }).click();
    await segmentRow("VIP").waitFor();
    await page.getByRole("button", { name: "Members of VIP" }).click();
    const panel = page.getByRole("region", { name: "Members of “VIP”" });
    await panel.getByText("No members yet.").waitFor();
    await panel.getByLabel("People to add (one per line or comma-separated)").fill("ada@example.com, nobody@example.com\nperson00@example.com");
    await panel.getByRole("button", { name: "Add to VIP" }).click();
    await panel.getByRole("status").filter({ hasText: "Added 2 people. Not found: nobody@example.com." }).waitFor();
    // What was not found stays in the box, to correct.
    expect(await panel.getByLabel("People to add (one per line or comma-separated)").inputValue()).toBe("nobody@example.com");
    await panel.getByRole("rowheader", { name: "ada@example.com" }).waitFor();
    await expect.poll(() => segmentRow("VIP").locator("[data-members]").innerText()).toBe("2");
    await expectAccessible("segments-static-members");

    await panel.getByRole("button", { name: "Remove ada@example.com from VIP" }).click();
    await panel.getByRole("rowheader", { name: "ada@example.com" }).waitFor({ state: "detached" });
    await panel.getByRole("rowheader", { name: "person00@example.com" }).waitFor();
    await expect.poll(() => segmentRow("VIP").locator("[data-members]").innerText()).toBe("1");
    const vip = await segmentByName("VIP");
    const members = (await client.request("GET", `/v1/segments/${vip.id}/members`)).json.data.map((m: any) => m.email);
    expect(members).toEqual(["person00@example.com"]);

    // A dynamic segment's members are listed, not edited by hand.
    await page.getByRole("button", { name: "Members of Pro plan" }).click();
    const dynamic = page.getByRole("region", { name: "Members of “Pro plan”" });
    await dynamic.getByRole("rowheader", { name: "person01@example.com" }).waitFor();
    await expectAccessible("segments-dynamic-members");
    expect(await dynamic.getByRole("button", { name: /^Remove / }).count()).toBe(0);
    expect(await dynamic.getByLabel("People to add (one per line or comma-separated)").count()).toBe(0);
    await dynamic.getByRole("button", { name: "Close members" }).click();

    await page.getByRole("button", { name: "Delete VIP" }).click();
    await segmentRow("VIP").waitFor({ state: "detached" });
    expect(await segmentByName("VIP")).toBeUndefined();
  });

  it("a slow request shows that it is loading, a failed one the API's sentence, never a blank panel", async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    await page.route("**/v1/segments/*/members?*", async (route) => {
      await released;
      await route.fulfill({ status: 503, contentType: "application/json", body: JSON.stringify({ error: { code: "unavailable", message: "The members are unavailable right now; try again in a minute." }, requestId: "r1" }) });
    });
    try {
      await page.getByRole("button", { name: "Members of Pro plan" }).click();
      const panel = page.getByRole("region", { name: "Members of “Pro plan”" });
      await panel.getByRole("status").filter({ hasText: "Loading members…" }).waitFor();
      release();
      const alert = panel.getByRole("alert");
      await alert.waitFor();
      expect(await alert.innerText()).toBe("The members are unavailable right now; try again in a minute. (unavailable)");
      await expectAccessible("segments-members-failed");
      await panel.getByRole("button", { name: "Close members" }).click();
    } finally {
      await page.unroute("**/v1/segments/*/members?*");
    }
  });
});

describe("exports in Chromium", () => {
  const exportRow = (contents: string) => page.getByRole("row").filter({ hasText: contents }).first();
  const lines = (text: string) => text.trim().split(/\r?\n/);

  it("exports a segment's people with chosen attributes and downloads the file", async () => {
    await page.getByRole("link", { name: "Exports" }).click();
    await page.getByText("No exports yet.").waitFor();
    await page.getByRole("group", { name: "Attributes" }).getByLabel("Plan").waitFor();
    await expectAccessible("exports-users-form");
    await page.getByRole("group", { name: "Attributes" }).getByLabel("Plan").check();
    await page.getByLabel("Members of a segment").check();
    await page.getByLabel("Segment", { exact: true }).selectOption({ label: "Pro plan" });
    await page.getByRole("button", { name: "Start export" }).click();
    const row = exportRow("segment “Pro plan”");
    await row.getByText("done").waitFor({ timeout: 30_000 });
    const { text } = await downloadedText(page, () => row.getByRole("button", { name: /^Download users export/ }).click());
    const [header, ...people] = lines(text);
    expect(header).toBe("email,external_id,username,first_name,last_name,name,company_id,labels,attributes.Plan");
    expect(people).toHaveLength(15);
    expect(people.every((p) => p.startsWith("person") && p.endsWith(",pro"))).toBe(true);
    expect(await row.getByRole("cell").nth(3).innerText()).toBe("15");
  });

  it("exports the people matching conditions built in the form; the API's sentence when it refuses them", async () => {
    await page.getByLabel("People matching conditions").check();
    await page.getByLabel("Add…").selectOption("attribute");
    // No key yet: the API refuses the conditions, and says why next to them and next to the button.
    await page.getByRole("alert").first().waitFor();
    expect(await page.getByRole("alert").first().innerText()).toMatch(/^The conditions are invalid \(all\.0\.field: .*attributes\./);
    // …and the reason stands beside the rule it names.
    const rule = page.getByRole("group", { name: "Attribute condition" });
    expect(await rule.locator(".rule-problem").innerText()).toMatch(/^is not a known field/);
    await page.getByRole("button", { name: "Start export" }).click();
    await expect.poll(() => page.getByRole("alert").count()).toBe(2);
    const refusal = await page.getByRole("alert").last().innerText();
    expect(refusal).toMatch(/\(invalid_conditions\)$/);
    await expectAccessible("exports-refused");

    await page.getByLabel("Attribute key").fill("Plan");
    await page.getByLabel("Value", { exact: true }).fill("free");
    await page.getByLabel("Add…").first().selectOption("field");
    await page.getByLabel("Field", { exact: true }).selectOption("email");
    await page.getByLabel("Operator").last().selectOption("in");
    await page.getByLabel("Values, comma-separated").fill("person00@example.com, person02@example.com, person03@example.com");
    await expect.poll(matchCount).toBe("2 people match");
    await page.getByRole("button", { name: "Start export" }).click();
    const row = exportRow("people matching conditions");
    await row.getByText("done").waitFor({ timeout: 30_000 });
    const { text } = await downloadedText(page, () => row.getByRole("button", { name: /^Download users export/ }).click());
    expect(lines(text).slice(1).map((l) => l.split(",")[0])).toEqual(["person00@example.com", "person02@example.com"]);
  });

  it("exports events of chosen types in a date range, lists what each export holds, and downloads it", async () => {
    await page.getByLabel("Events", { exact: true }).check();
    await page.getByLabel("Only these types").check();
    await page.getByLabel("Event names (comma-separated)").fill("Signed Up");
    await page.getByLabel("Between dates").check();
    await page.getByLabel("From date (UTC, included)").fill("2026-01-01");
    await page.getByLabel("To date (UTC, included)").fill("2026-01-31");
    await expectAccessible("exports-events-form");
    await page.getByRole("button", { name: "Start export" }).click();
    const row = exportRow("Signed Up · 2026-01-01 to 2026-01-31");
    await row.getByText("done").waitFor({ timeout: 30_000 });
    const { text } = await downloadedText(page, () => row.getByRole("button", { name: /^Download events export/ }).click());
    const [header, ...events] = lines(text);
    expect(header).toBe("occurred_at,event,user_id,external_id,email,properties");
    // 2026-01-31 is included to its last minute; 2026-02-01 and 2025-12-31 are not; Clicked Upgrade is not a chosen type.
    expect(events.map((e) => [e.split(",")[0], e.split(",")[4]])).toEqual([
      ["2026-01-05T10:00:00.000Z", "person01@example.com"],
      ["2026-01-31T23:30:00.000Z", "person02@example.com"],
    ]);

    await page.getByLabel("All event types").check();
    await page.getByLabel("Any time").check();
    await page.getByRole("button", { name: "Start export" }).click();
    const all = exportRow("all event types · any time");
    await all.getByText("done").waitFor({ timeout: 30_000 });
    // Every event: the ones posted here and those the import wrote about each person it created.
    const latest = (await client.request("GET", "/v1/exports?limit=1")).json.data[0];
    expect(latest.filters).toEqual({ segmentId: null, conditions: null, events: null, from: null, to: null });
    expect(latest.rowCount).toBeGreaterThan(EVENTS.length);
    expect(await all.getByRole("cell").nth(3).innerText()).toBe(String(latest.rowCount));
    await expectAccessible("exports-list");
  });
});
