import { z } from "zod";
import type { trackEvents } from "../../domain/events/track.js";
import type { identifyPerson } from "../../domain/people/identify.js";
import type { getProfile } from "../../domain/people/list.js";
import type { PersonView } from "../../domain/people/view.js";
import type { SameKeys } from "./common.js";

/** Response shapes of people ("users") as personView and the people services build them; they serialise and document them. */

/** How a request names one person of the workspace (events, static segment members). */
export const personRefSchema = z.union([
  z.object({ id: z.string().min(1).max(40) }).strict(),
  z.object({ email: z.string().min(1).max(320) }).strict(),
  z.object({ externalId: z.string().min(1).max(1000) }).strict(),
]);

export const personSchema = z.object({
  id: z.string().describe("numeric id as a string"),
  email: z.string().nullable(),
  externalId: z.string().nullable(),
  username: z.string().nullable(),
  firstName: z.string().nullable(),
  lastName: z.string().nullable(),
  name: z.string().nullable(),
  companyId: z.string().nullable(),
  attributes: z.record(z.string(), z.unknown()),
  createdAt: z.string().describe("ISO-8601 UTC"),
  updatedAt: z.string().describe("ISO-8601 UTC"),
  lastSeenAt: z.string().nullable().describe("ISO-8601 UTC; the latest tracked event not in the future"),
});

export const profileSchema = personSchema.extend({
  labels: z.array(z.object({ id: z.string(), name: z.string() })),
  segments: z.array(
    z.object({
      id: z.string(),
      name: z.string(),
      type: z.enum(["dynamic", "static"]),
      value: z.string().nullable().describe("membership value, if the segment records one"),
      enteredAt: z.string().describe("ISO-8601 UTC"),
    }),
  ),
  recentEvents: z
    .array(z.object({ id: z.string(), event: z.string(), occurredAt: z.string().describe("ISO-8601 UTC"), properties: z.record(z.string(), z.unknown()) }))
    .describe("the latest 20, newest first"),
});

export const identifyResultSchema = personSchema.extend({
  created: z.boolean().describe("true when this call created the person (status 201)"),
  segments: z.object({
    entered: z.array(z.string()).describe("ids of the dynamic segments the person entered"),
    left: z.array(z.string()).describe("ids of the dynamic segments the person left"),
  }),
});

const membershipChangeSchema = z.object({ segmentId: z.string(), personId: z.string() });
export const trackResultSchema = z.object({
  accepted: z.number().int().describe("events recorded"),
  rejected: z
    .array(z.object({ index: z.number().int().describe("position in `events`"), code: z.string(), message: z.string() }))
    .describe("events naming no user of the workspace; not recorded"),
  segments: z.object({ entered: z.array(membershipChangeSchema), left: z.array(membershipChangeSchema) }).describe("real-time dynamic segment changes"),
});

// The services build these objects; these checks keep the documented field names in step with them.
type Identified = Awaited<ReturnType<typeof identifyPerson>>;
const _person: SameKeys<z.output<typeof personSchema>, PersonView> = true;
const _profile: SameKeys<z.output<typeof profileSchema>, Awaited<ReturnType<typeof getProfile>>> = true;
const _identify: SameKeys<z.output<typeof identifyResultSchema>, Identified["user"] & Pick<Identified, "created" | "segments">> = true;
const _track: SameKeys<z.output<typeof trackResultSchema>, Awaited<ReturnType<typeof trackEvents>>> = true;
