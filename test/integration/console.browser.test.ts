import type { Locator, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { consolePlugin } from "../../src/api/plugins/console.js";
import type { Client } from "../helpers/api.js";
import { expectAccessible as audit, downloadedText, openConsole, type ConsoleSession } from "../helpers/console.js";
import { useTestContext } from "../helpers/context.js";
import { holdAtProcessed } from "../helpers/faults.js";

// Sign-in, the import flow of every kind (keyboard, file, members, events, cancel), users and signing out. Segments
// and exports: console-data.browser.test.ts. Batches of 100 rows, so the import cancelled below has many of them.
const t = useTestContext({ IMPORT_BATCH_SIZE: "100" });
let session: ConsoleSession;
let client: Client;
let base: string;
let page: Page;

// 30 people (more than one page of 25), one row with a bad email; Ada joins the static segment "Beta testers" with
// the membership value 42 (the Cohort columns, mapped by keyboard to segment and segment_value).
const CSV = [
  "Email,First Name,Plan,Cohort,Cohort Score",
  ...Array.from({ length: 30 }, (_, i) => `person${String(i).padStart(2, "0")}@example.com,P${i},${i % 2 ? "pro" : "free"},,`),
  "not-an-email,Broken,free,,",
  "ada@example.com,Ada,pro,Beta testers,42",
].join("\n");

beforeAll(async () => {
  session = await openConsole(t.ctx);
  ({ client, base, page } = session);
});
afterAll(async () => {
  await session?.close();
});
afterEach(() => {
  expect(session.errors, "uncaught exceptions in the console").toEqual([]);
});

const expectAccessible = (name: string) => audit(page, name);

const isFocused = (target: Locator) => target.evaluate((el: any) => el === el.ownerDocument.activeElement, undefined, { timeout: 5_000 });

/**
 * Keyboard only: presses Tab (Shift+Tab with `back`) until `target` (a locator by role or label, so by accessible
 * name) has the focus; fails after `bound` presses, so a control Tab never reaches fails the test.
 */
async function tabTo(target: Locator, { back = false, bound = 60 } = {}): Promise<void> {
  for (let i = 0; i <= bound; i++) {
    if (await isFocused(target)) return;
    await page.keyboard.press(back ? "Shift+Tab" : "Tab");
  }
  const focused = await page.evaluate(() => {
    const el = (globalThis as any).document.activeElement;
    return el ? `${el.tagName} ${el.id} ${el.getAttribute("aria-label") ?? el.textContent}` : "nothing";
  });
  throw new Error(`${bound} presses of ${back ? "Shift+Tab" : "Tab"} did not reach ${target}; the focus is on ${focused}`);
}

/** New import → kind → pasted CSV → Upload: the draft. */
async function pasteDraft(kind: "contacts" | "members" | "events", csv: string) {
  await page.getByRole("link", { name: "Imports" }).click();
  if (await page.getByRole("button", { name: "Back to history" }).isVisible()) await page.getByRole("button", { name: "Back to history" }).click();
  await page.getByRole("button", { name: "New import" }).click();
  await page.getByLabel("Import kind").selectOption(kind);
  await page.getByLabel("Paste CSV").fill(csv);
  await page.getByRole("button", { name: "Upload" }).click();
  await page.getByLabel("Identifier").waitFor();
}

describe("web console in Chromium", () => {
  it("answers at / a clear message when the console is not built", async () => {
    const bare = (await import("fastify")).default();
    await bare.register(consolePlugin, { dir: "/nonexistent" });
    const res = await bare.inject({ method: "GET", url: "/" });
    expect(res.statusCode).toBe(503);
    expect(res.body).toContain("npm run build");
    await bare.close();
  });

  it("signs in with the API key, showing the API's sentence for a wrong key", async () => {
    await page.goto(base);
    await page.getByLabel("API key").fill("rst_not_a_key");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.getByRole("alert").innerText()).toMatch(/\w+ \w+/);
    await expectAccessible("sign-in");
    await page.getByLabel("API key").fill(client.apiKey);
    await page.getByLabel("API key").press("Enter");
    await page.getByRole("button", { name: "New import" }).waitFor();
    expect(await page.getByText("Loading the console…").count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as any).sessionStorage.getItem("roster.apiKey"))).toBe(client.apiKey);
    expect(await page.evaluate(() => (globalThis as any).localStorage.length)).toBe(0);
  });

  it("imports pasted CSV with the keyboard alone: draft, Identifier, mapping, Validate, Start import, the summary and its error report", async () => {
    // Tab, Shift+Tab, Enter, Space, typing and arrows only: no clicks, no focus() or selectOption().
    await tabTo(page.getByRole("button", { name: "New import" }));
    await page.keyboard.press("Enter");
    await page.getByLabel("Paste CSV").waitFor();
    await page.getByText("or drop a CSV file here").waitFor();
    await expectAccessible("imports-new");
    await tabTo(page.getByLabel("Paste CSV"));
    await page.keyboard.insertText(CSV);
    await tabTo(page.getByRole("button", { name: "Upload" }));
    await page.keyboard.press("Enter");
    await page.getByLabel("Identifier").waitFor();
    // The Upload button is gone: the focus lands on the new step's first control.
    await expect.poll(() => isFocused(page.getByLabel("Identifier"))).toBe(true);
    expect(await page.locator(".draft p").first().innerText()).toMatch(/· encoding utf-8 · delimiter "," · 5 columns$/);
    expect(await page.getByLabel("Identifier").inputValue()).toBe("email");
    expect(await page.getByLabel("Target for column First Name").inputValue()).toBe("first_name");
    // "Plan" becomes the attribute key the server derives from it.
    expect(await page.getByLabel("Target for column Plan").inputValue()).toBe("attribute:plan");
    // Typing picks an option of a closed select; the arrows step through them.
    await tabTo(page.getByLabel("Target for column Cohort", { exact: true }));
    await page.keyboard.type("segment");
    await tabTo(page.getByLabel("Target for column Cohort Score"));
    await page.keyboard.type("segment");
    await page.keyboard.press("ArrowDown");
    expect(await page.getByLabel("Target for column Cohort", { exact: true }).inputValue()).toBe("segment");
    expect(await page.getByLabel("Target for column Cohort Score").inputValue()).toBe("segment_value");
    await expectAccessible("imports-draft");

    await tabTo(page.getByRole("button", { name: "Validate" }));
    await page.keyboard.press("Enter");
    await page.locator(".outcome .badge", { hasText: "validated" }).waitFor({ timeout: 30_000 });
    // Validate is disabled while the dry run goes: the focus is on the outcome's heading.
    expect(await isFocused(page.locator(".outcome h3"))).toBe(true);
    expect(await page.locator('[data-count="failed"]').innerText()).toBe("1");
    await page.locator(".outcome").getByRole("cell", { name: "not-an-email" }).first().waitFor();
    await tabTo(page.getByRole("button", { name: "Download error report (CSV)" }));
    const dryRun = await downloadedText(page, () => page.keyboard.press("Enter"));
    expect(dryRun.name).toMatch(/errors\.csv$/);
    // The report's own columns, then the row as it was in the file (to fix and upload again).
    expect(dryRun.text.split(/\r?\n/)[0]).toBe("row,column,value,code,message,Email,First Name,Plan,Cohort,Cohort Score");
    await expectAccessible("imports-validated");

    await tabTo(page.getByRole("button", { name: "Start import" }), { back: true });
    await page.keyboard.press("Space");
    await page.locator(".outcome .badge", { hasText: "done" }).waitFor({ timeout: 30_000 });
    expect(await isFocused(page.locator(".outcome h3"))).toBe(true);
    const summary = await page.locator(".counts").innerText();
    for (const name of ["created", "updated", "unchanged", "skipped", "failed"]) expect(summary).toContain(name);
    expect(await page.locator('[data-count="created"]').innerText()).toBe("31");
    expect(await page.locator('[data-count="failed"]').innerText()).toBe("1");
    // The running import was followed through its progress stream (Server-Sent Events), not by polling.
    expect(t.ctx.logs.join("")).toMatch(/"url":"\/v1\/imports\/[0-9a-f-]{36}\/progress"/);
    await expectAccessible("imports-done");
    // The error report of the finished import, downloaded from its summary: the bad row, in the API's words.
    await tabTo(page.getByRole("button", { name: "Download error report (CSV)" }));
    const report = await downloadedText(page, () => page.keyboard.press("Enter"));
    const { parse } = await import("csv-parse/sync");
    const errors = parse(report.text, { columns: true }) as Record<string, string>[];
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ row: "31", value: "not-an-email" });
    expect(errors[0]!.message).toMatch(/email/i);

    await tabTo(page.getByRole("button", { name: "Back to history" }), { back: true });
    await page.keyboard.press("Enter");
    const row = page.getByRole("row").filter({ hasText: "done" }).first();
    await row.waitFor();
    // "Started" is when the run started, not when the draft was made.
    const started = (await client.request("GET", "/v1/imports?limit=1")).json.data[0].startedAt;
    expect(started).not.toBeNull();
    expect(await row.getByRole("cell").last().innerText()).toBe(await page.evaluate((iso) => new Date(iso).toLocaleString(), started));
    await expectAccessible("imports-history");
  });

  it("takes a dropped file; maps a column to a new attribute whose key is typed, then to an existing attribute", async () => {
    const csv = "email,Plan Type\nperson01@example.com,gold\nperson02@example.com,silver\n";
    await page.getByRole("button", { name: "New import" }).click();
    // A real drop event carrying a File, on the upload form's file fieldset.
    const dataTransfer = await page.evaluateHandle((text) => {
      const g = globalThis as any;
      const dt = new g.DataTransfer();
      dt.items.add(new g.File([text], "plans.csv", { type: "text/csv" }));
      return dt;
    }, csv);
    const zone = page.getByRole("group", { name: "Upload a file" });
    await zone.dispatchEvent("dragenter", { dataTransfer });
    await zone.dispatchEvent("dragover", { dataTransfer });
    await zone.dispatchEvent("drop", { dataTransfer });
    await page.getByRole("status").filter({ hasText: "Selected: plans.csv" }).waitFor();
    // The labelled input holds the dropped file too.
    expect(await page.getByLabel("CSV file").evaluate((el: any) => el.files[0]?.name)).toBe("plans.csv");
    await page.getByRole("button", { name: "Upload" }).click();
    await page.getByRole("heading", { name: "Import plans.csv" }).waitFor();
    expect(await page.locator(".draft").getByRole("cell", { name: "gold" }).count()).toBe(1);

    const target = page.getByLabel("Target for column Plan Type");
    // The key the server derives from the header, and the workspace's own attributes; never "attribute:Plan Type".
    expect(await target.inputValue()).toBe("attribute:plan_type");
    // The workspace's attributes load beside the draft.
    await target.locator("option", { hasText: "attribute:plan (existing)" }).waitFor({ state: "attached" });
    const options = await target.locator("option").allInnerTexts();
    expect(options).toEqual(expect.arrayContaining(["attribute:plan_type (new)", "attribute:plan (existing)", "New attribute…"]));
    expect(options.some((o) => o.includes("Plan Type"))).toBe(false);

    await target.selectOption({ label: "New attribute…" });
    const key = page.getByLabel("New attribute key for Plan Type");
    expect(await key.inputValue()).toBe("plan_type");
    await key.fill("Plan Tier");
    expect(await key.getAttribute("aria-invalid")).toBe("true");
    expect(await page.locator("#new-key-problem-1").innerText()).toBe("“Plan Tier” is not a valid attribute key. Use 1 to 64 letters, digits or underscores, e.g. plan_type.");
    await page.getByRole("button", { name: "Start import" }).click();
    await page.getByRole("alert").filter({ hasText: "The new key for column “Plan Type” is not valid." }).waitFor();
    expect((await client.request("GET", "/v1/imports?limit=1")).json.data[0].status).toBe("draft");
    await expectAccessible("imports-new-attribute-key");
    await key.fill("plan_tier");
    expect(await key.getAttribute("aria-invalid")).toBeNull();
    await page.getByRole("button", { name: "Start import" }).click();
    await page.locator(".outcome .badge", { hasText: "done" }).waitFor({ timeout: 30_000 });
    expect(await page.locator('[data-count="updated"]').innerText()).toBe("2");
    const person = async (email: string) => (await client.request("POST", "/v1/users/search", { payload: { conditions: { field: "email", op: "eq", value: email } } })).json.data[0];
    expect((await person("person01@example.com")).attributes).toMatchObject({ plan: "pro", plan_tier: "gold" });

    // The same column into an attribute the workspace already has.
    await pasteDraft("contacts", csv);
    await page.getByLabel("Target for column Plan Type").selectOption("attribute:plan");
    await page.getByRole("button", { name: "Start import" }).click();
    await page.locator(".outcome .badge", { hasText: "done" }).waitFor({ timeout: 30_000 });
    expect((await person("person02@example.com")).attributes).toMatchObject({ plan: "silver", plan_tier: "silver" });
    expect(Object.keys((await person("person02@example.com")).attributes)).not.toContain("plan_type");
    await page.getByRole("button", { name: "Back to history" }).click();
  });

  it("uploads a CSV file through the same flow", async () => {
    await page.getByRole("button", { name: "New import" }).click();
    await page.getByLabel("CSV file").setInputFiles({ name: "more.csv", mimeType: "text/csv", buffer: Buffer.from("email,first_name\nzed@example.com,Zed\n") });
    await page.getByRole("button", { name: "Upload" }).click();
    await page.getByRole("heading", { name: "Import more.csv" }).waitFor();
    // A mapping the API refuses: its reason stands beside the column it is about, and nothing starts.
    await page.getByLabel("Target for column first_name").selectOption("email");
    await page.getByRole("button", { name: "Start import" }).click();
    await page.getByRole("alert").filter({ hasText: "The mapping has 1 problem." }).waitFor();
    const column = page.getByRole("row", { name: /^first_name/ });
    expect(await column.locator(".field-problem").innerText()).toBe('"email" is already mapped from column "email".');
    expect(await page.getByLabel("Target for column first_name").getAttribute("aria-invalid")).toBe("true");
    await expectAccessible("imports-mapping-refused");
    await page.getByLabel("Target for column first_name").selectOption("first_name");
    await page.getByRole("button", { name: "Start import" }).click();
    await page.locator(".outcome .badge", { hasText: "done" }).waitFor({ timeout: 30_000 });
    expect(await page.locator('[data-count="created"]').innerText()).toBe("1");
    await page.getByRole("button", { name: "Back to history" }).click();
  });

  it("imports team members through the same flow: email is their only identifier, passwords never shown", async () => {
    const password = "Correct-Horse-41";
    await pasteDraft("members", ["Email,First Name,Last Name,Password,Role", `ana@example.com,Ana,Lima,${password},admin`, "bo@example.com,Bo,Berg,,agent"].join("\n"));
    expect(await page.getByLabel("Identifier").locator("option").allInnerTexts()).toEqual(["email"]);
    expect(await page.getByLabel("Target for column Password").inputValue()).toBe("password");
    expect(await page.getByLabel("Target for column Role").inputValue()).toBe("role");
    // Targets a members import refuses are not offered.
    expect(await page.getByLabel("Target for column Role").locator("option").allInnerTexts()).not.toContain("labels");
    expect(await page.content()).not.toContain(password);
    await expectAccessible("imports-members-draft");
    await page.getByRole("button", { name: "Start import" }).click();
    await page.locator(".outcome .badge", { hasText: "done" }).waitFor({ timeout: 30_000 });
    expect(await page.locator('[data-count="created"]').innerText()).toBe("2");
    const members = (await client.request("GET", "/v1/members")).json.data.map((m: any) => [m.email, m.role]);
    expect(members.sort()).toEqual([["ana@example.com", "admin"], ["bo@example.com", "agent"]]);
    expect(await page.content()).not.toContain(password);
    await page.getByRole("button", { name: "Back to history" }).click();
  });

  it("imports events through the same flow: event, time, a property; an unknown person is a row error until the option creates them", async () => {
    await pasteDraft(
      "events",
      ["email,event,occurred_at,plan", "person01@example.com,Signed Up,2026-01-05T10:00:00Z,pro", "person02@example.com,Clicked Upgrade,2026-01-06T11:00:00Z,free", "ghost@example.com,Signed Up,2026-01-07T12:00:00Z,pro"].join("\n"),
    );
    expect(await page.getByLabel("Target for column event").inputValue()).toBe("event");
    expect(await page.getByLabel("Target for column occurred_at").inputValue()).toBe("occurred_at");
    expect(await page.getByLabel("Target for column plan").inputValue()).toBe("property:plan");
    // A property key may be typed as an attribute key is; no attribute targets for events.
    const eventTargets = await page.getByLabel("Target for column plan").locator("option").allInnerTexts();
    expect(eventTargets).toContain("New property…");
    expect(eventTargets.some((o) => o.startsWith("attribute:"))).toBe(false);
    // The dry run names the unknown person in the API's own words, on its row.
    await page.getByRole("button", { name: "Validate" }).click();
    await page.locator(".outcome .badge", { hasText: "validated" }).waitFor({ timeout: 30_000 });
    expect(await page.locator('[data-count="created"]').innerText()).toBe("2");
    expect(await page.locator('[data-count="failed"]').innerText()).toBe("1");
    const error = page.locator(".outcome").getByRole("row").filter({ hasText: "ghost@example.com" });
    expect(await error.innerText()).toMatch(/No person has this email/);
    // The option that sentence points to is in the form: the real run creates the person.
    await page.getByLabel("Create people who are not known yet").check();
    await page.getByLabel("Put everyone this import touches in a new static segment named (optional)").fill("Event people");
    await expectAccessible("imports-events-validated");
    await page.getByRole("button", { name: "Start import" }).click();
    await page.locator(".outcome .badge", { hasText: "done" }).waitFor({ timeout: 30_000 });
    expect(await page.locator('[data-count="created"]').innerText()).toBe("3");
    expect(await page.locator('[data-count="failed"]').innerText()).toBe("0");
    await expectAccessible("imports-events-done");
    const person = async (email: string) => (await client.request("POST", "/v1/users/search", { payload: { conditions: { field: "email", op: "eq", value: email } } })).json.data[0];
    const events = (await client.request("GET", `/v1/users/${(await person("person01@example.com")).id}`)).json.recentEvents;
    const imported = events.filter((e: any) => e.event === "Signed Up" || e.event === "Clicked Upgrade");
    expect(imported.map((e: any) => [e.event, e.occurredAt, e.properties])).toEqual([["Signed Up", "2026-01-05T10:00:00.000Z", { plan: "pro" }]]);
    expect(await person("ghost@example.com")).toBeDefined();
    const segment = (await client.request("GET", "/v1/segments")).json.data.find((s: any) => s.name === "Event people");
    expect(segment).toMatchObject({ type: "static", memberCount: 3 });
    await page.getByRole("button", { name: "Back to history" }).click();
  });

  it("shows a running import's live progress (bar, percent, rows/s, time left), then cancels it: it ends cancelled, keeps the rows already written and says so", async () => {
    const rows = Array.from({ length: 3000 }, (_, i) => `cancel${i}@example.org,C${i}`);
    await page.getByRole("button", { name: "New import" }).click();
    await page.getByLabel("CSV file").setInputFiles({ name: "big.csv", mimeType: "text/csv", buffer: Buffer.from(["email,first_name", ...rows].join("\n")) });
    await page.getByRole("button", { name: "Upload" }).click();
    await page.getByRole("heading", { name: "Import big.csv" }).waitFor();
    await page.getByRole("button", { name: "Start import" }).click();
    await expect.poll(async () => (await client.request("GET", "/v1/imports?limit=1")).json.data[0].status).toMatch(/queued|processing/);
    const id: string = (await client.request("GET", "/v1/imports?limit=1")).json.data[0].id;
    // Caught between two batches (each starts by locking the import's row): it is running, and stays so until released.
    const held = await holdAtProcessed(t.ctx, id, 100);
    try {
      await page.locator("#import-progress").waitFor();
      await page.locator(".outcome .badge", { hasText: "processing" }).waitFor();
      // The stream's figures once a batch has committed: "3.4% · 1234 rows/s · about 5 s left".
      const text = page.locator("#import-progress-text");
      await expect.poll(() => text.innerText(), { timeout: 15_000 }).toMatch(/^\d+(\.\d)?% · \d+ rows\/s · about \d+ s left$/);
      const [, percent, rate] = /^([\d.]+)% · (\d+) rows\/s · about \d+ s left$/.exec(await text.innerText())!;
      expect(Number(percent)).toBeGreaterThan(0);
      expect(Number(percent)).toBeLessThan(100);
      expect(Number(rate)).toBeGreaterThan(0);
      expect(Number(await page.locator("#import-progress").evaluate((el: any) => el.value))).toBe(Number(percent));
      expect(await page.getByRole("progressbar", { name: "Rows processed" }).count()).toBe(1);
      await expectAccessible("imports-running");
      await page.getByRole("button", { name: "Cancel import" }).click();
      await page.getByRole("button", { name: "Cancelling…" }).waitFor();
    } finally {
      await new Promise((r) => setTimeout(r, 200)); // the cancel request queues behind the held row
      await held.release();
    }
    await page.locator(".outcome .badge", { hasText: "cancelled" }).waitFor({ timeout: 30_000 });
    await page.getByText(/^Cancelled: the rows written before the cancel stay/).waitFor();
    expect(await page.getByRole("button", { name: "Cancel import" }).count()).toBe(0);
    const done = (await client.request("GET", `/v1/imports/${id}`)).json;
    expect(done.status).toBe("cancelled");
    expect(done.counts.created).toBeGreaterThanOrEqual(100);
    expect(done.counts.created).toBeLessThan(3000);
    expect(await page.locator('[data-count="created"]').innerText()).toBe(String(done.counts.created));
    await expectAccessible("imports-cancelled");
    await page.getByRole("button", { name: "Back to history" }).click();
    await page.getByRole("row").filter({ hasText: "cancelled" }).first().waitFor();
  });

  it("lists people by keyset pages, counts a filter live and opens a profile", async () => {
    // An event with properties for Ada, to read back in her profile.
    const ada = (await client.request("POST", "/v1/users/search", { payload: { conditions: { field: "email", op: "eq", value: "ada@example.com" } } })).json.data[0];
    const posted = await client.request("POST", "/v1/events", { payload: { events: [{ user: { email: "ada@example.com" }, event: "Clicked Upgrade", occurredAt: "2026-02-03T04:05:06Z", properties: { source: "newsletter", seats: 3 } }] } });
    expect(posted.status).toBeLessThan(300);
    await page.getByRole("link", { name: "Users" }).click();
    await page.getByRole("button", { name: "Next page" }).waitFor();
    await page.getByRole("table").getByRole("button").first().waitFor();
    await expectAccessible("users-list");
    const first = await page.getByRole("table").getByRole("button").first().innerText();
    await page.getByRole("button", { name: "Next page" }).click();
    await expect.poll(async () => page.getByRole("table").getByRole("button").first().innerText().catch(() => first)).not.toBe(first);

    await page.getByLabel("Add…").selectOption("field");
    await page.getByLabel("Value").fill("ada@");
    await expect.poll(() => page.locator(".match-count [role=status]").innerText()).toBe("1 person matches");
    await page.getByLabel("Add…").first().selectOption("group");
    await page.getByRole("button", { name: "Apply filter" }).click();
    await page.getByRole("button", { name: "ada@example.com" }).click();
    await page.getByRole("heading", { name: "Profile" }).waitFor();
    await page.locator(".panel").getByText("pro", { exact: true }).waitFor();
    // The static segment her import row put her in, with the membership value of her row, and the event's properties.
    const membership = page.locator(".panel [data-segment='Beta testers']");
    expect(await membership.innerText()).toMatch(/^Beta testers \(static\) · value 42 · entered \S/);
    const profile = (await client.request("GET", `/v1/users/${ada.id}`)).json;
    expect(profile.segments).toEqual([expect.objectContaining({ name: "Beta testers", type: "static", value: "42" })]);
    const event = page.locator(".panel [data-event='Clicked Upgrade']");
    // (PostgreSQL's jsonb keeps the properties in its own key order.)
    expect(await event.innerText()).toMatch(/^Clicked Upgrade · .+ · (seats: 3, source: newsletter|source: newsletter, seats: 3)$/);
    await expectAccessible("users");
  });

  it("links to the queue dashboard and the API docs, and signing out forgets the key", async () => {
    expect(await page.getByRole("link", { name: "Queue dashboard" }).getAttribute("href")).toBe("/admin/queues");
    expect(await page.getByRole("link", { name: "API docs" }).getAttribute("href")).toBe("/docs");
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("API key").waitFor();
    expect(await page.evaluate(() => (globalThis as any).sessionStorage.getItem("roster.apiKey"))).toBeNull();
    await page.reload();
    await page.getByLabel("API key").waitFor();
  });
});
